"""MLflow "models from code" entry point: MLflow executes this file when it loads a logged
recommender (``mlflow.pyfunc.load_model``). Do not import it from library code."""

from mlflow.models import set_model

from training.pyfunc import RecommenderPyfunc

set_model(RecommenderPyfunc())
