"""Training and model lifecycle: the fitting pipeline, offline evaluation, MLflow runs,
the model registry with its promotion gate, the pyfunc wrapper and batch scoring."""
