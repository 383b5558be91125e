"""How training logs a model in MLflow (serving finds the bundle through ``recsys.bundle``).

``mlflow.pyfunc.log_model(name="model", artifacts={"bundle": dir})`` stores the bundle at
``recsys.bundle.MLFLOW_BUNDLE_SUBPATH`` below the model's root;
``mlflow.artifacts.download_artifacts("models:/home-xsell@champion")`` returns that root.
"""

MODEL_NAME_IN_RUN = "model"  # runs:/<run_id>/model
BUNDLE_ARTIFACT = "bundle"  # key in ``artifacts=``
