"""Where the served model comes from: a bundle folder, or the MLflow registry.

``Settings.model_uri`` may name a plain bundle directory (tests, air-gapped machines), a
``runs:/<run>/<path>`` or ``models:/<name>/<version>`` URI; unset, serving follows
``models:/<model_name>@<model_alias>``. ``resolve`` is cheap (one registry call or one file
read) and returns a fingerprint that changes when the model behind the pointer changes, so the
poller downloads only on promotion. Downloads land in ``<data_dir>/serving-models/`` and are
renamed into place atomically (several worker processes may fetch the same version).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recsys import bundle as bundle_layout
from recsys.bundle import MANIFEST
from recsys.settings import Settings

log = logging.getLogger(__name__)


class ModelSourceError(RuntimeError):
    """The configured model cannot be resolved or fetched (message says which and why)."""


@dataclass(frozen=True)
class ModelPointer:
    """What the configured URI points at right now."""

    uri: str  # as configured, e.g. models:/home-xsell@champion
    resolved: str  # concrete, e.g. models:/home-xsell/3 or /abs/path/bundle
    fingerprint: str  # changes iff the model changes
    registry_version: str | None = None
    run_id: str | None = None
    model_name: str | None = None


def find_bundle(folder: Path) -> Path:
    """The bundle inside ``folder`` (``recsys.bundle.find_bundle``), as a ``ModelSourceError``."""
    try:
        return bundle_layout.find_bundle(folder)
    except bundle_layout.BundleError as exc:
        raise ModelSourceError(str(exc)) from exc


class ModelSource:
    """Resolves and fetches the configured model. Thread-safe enough for one poller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = settings.model_uri or f"models:/{settings.model_name}@{settings.model_alias}"
        self.cache_dir = Path(settings.data_dir) / "serving-models"

    @property
    def is_registry(self) -> bool:
        return self.uri.startswith(("models:/", "runs:/"))

    def _client(self):  # noqa: ANN202 - mlflow.MlflowClient
        from mlflow import MlflowClient

        tracking, registry = self.settings.mlflow_uris()
        return MlflowClient(tracking_uri=tracking, registry_uri=registry)

    def resolve(self) -> ModelPointer:
        """Where the URI points now. Raises ``ModelSourceError`` with the reason."""
        if self.uri.startswith("models:/"):
            return self._resolve_registry()
        if self.uri.startswith("runs:/"):
            run_id = self.uri[len("runs:/") :].split("/", 1)[0]
            return ModelPointer(self.uri, self.uri, self.uri, run_id=run_id)
        path = Path(self.uri.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ModelSourceError(f"model path {path} does not exist (RECSYS_MODEL_URI)")
        bundle = find_bundle(path)
        real = bundle.resolve()
        digest = hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()[:16]
        return ModelPointer(self.uri, str(real), f"{real}:{digest}")

    def _resolve_registry(self) -> ModelPointer:
        rest = self.uri[len("models:/") :]
        try:
            client = self._client()
            if "@" in rest:
                name, alias = rest.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, _, version = rest.partition("/")
                mv = client.get_model_version(name, version)
        except Exception as exc:  # noqa: BLE001 - any registry failure means "not resolvable"
            raise ModelSourceError(f"cannot resolve {self.uri}: {exc}") from exc
        resolved = f"models:/{mv.name}/{mv.version}"
        return ModelPointer(
            self.uri, resolved, f"{resolved}:{mv.run_id}", str(mv.version), mv.run_id, mv.name
        )

    def fetch(self, pointer: ModelPointer) -> Path:
        """A local bundle folder for ``pointer`` (downloaded once per registry version)."""
        if not pointer.resolved.startswith(("models:/", "runs:/")):
            return find_bundle(Path(pointer.resolved))
        key = hashlib.sha256(pointer.fingerprint.encode()).hexdigest()[:16]
        target = self.cache_dir / key
        if target.is_dir():
            return find_bundle(target)
        import mlflow.artifacts

        tracking, registry = self.settings.mlflow_uris()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache_dir))
        try:
            mlflow.set_registry_uri(registry)
            mlflow.artifacts.download_artifacts(
                artifact_uri=pointer.resolved, dst_path=str(tmp), tracking_uri=tracking
            )
            find_bundle(tmp)  # fail before publishing a folder without a bundle
            try:
                os.rename(tmp, target)
            except OSError:  # another worker published it first
                shutil.rmtree(tmp, ignore_errors=True)
        except ModelSourceError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except Exception as exc:  # noqa: BLE001
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelSourceError(f"cannot download {pointer.resolved}: {exc}") from exc
        log.info("downloaded %s into %s", pointer.resolved, target)
        return find_bundle(target)
