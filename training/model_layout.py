"""Where the bundle sits inside a logged MLflow model (serving resolves the same path).

``mlflow.pyfunc.log_model(name="model", artifacts={"bundle": dir})`` stores the bundle at
``artifacts/bundle`` below the model's root; ``mlflow.artifacts.download_artifacts(
"models:/home-xsell@champion")`` returns that root, so the bundle is ``<root>/artifacts/bundle``.
"""

MODEL_NAME_IN_RUN = "model"  # runs:/<run_id>/model
BUNDLE_ARTIFACT = "bundle"  # key in ``artifacts=``
BUNDLE_SUBPATH = "artifacts/bundle"  # bundle folder inside a downloaded model directory
MANIFEST = "manifest.json"
