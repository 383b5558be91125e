"""The model bundle: one folder holding everything serving needs, as plain files.

Layout: ``manifest.json`` (schema_version, code_version, created_at, run_id, feature set, config
hash, config, components, metrics), ``catalog.parquet``, ``taxonomy.json``, ``users.json`` and one
sub-folder per component (``style/``, ``generators/<name>/``, ``features/``, ``ranker/``).
No pickle anywhere. A bundle of another schema version, or with a file missing or corrupt, is
refused with a ``BundleError`` naming the file.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recsys import __version__
from recsys.data.catalog import Catalog, validate_catalog
from recsys.data.errors import DataContractError
from recsys.data.taxonomy import StyleTaxonomy

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
# Inside a logged MLflow pyfunc model (``log_model(name="model", artifacts={"bundle": dir})``)
# the bundle folder sits at this sub-path of the downloaded model directory.
MLFLOW_BUNDLE_SUBPATH = "artifacts/bundle"
CATALOG = "catalog.parquet"
TAXONOMY = "taxonomy.json"
REQUIRED_KEYS = ("schema_version", "code_version", "created_at", "feature_set", "config_hash", "config", "components")


class BundleError(RuntimeError):
    """A bundle that cannot be loaded; the message names the file and what is wrong."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"model bundle {self.path}: {problem}")


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (``0.1.0+abc1234``)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=2,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` last, with the SHA-256 of every other file (``files``) so a
    loader can refuse a bundle altered after saving (``recsys.bundle_check``)."""
    from recsys.bundle_check import FILES_KEY, checksums

    manifest = {**manifest, FILES_KEY: checksums(directory, exclude=(MANIFEST,))}
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """Read and check ``manifest.json``; a newer/older schema or a missing key is refused."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(directory, "not a directory")
    path = directory / MANIFEST
    if not path.exists():
        raise BundleError(path, "file missing (is this a model bundle?)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(path, "expected a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            path, f"schema_version {version!r} is not supported by this code (expects {SCHEMA_VERSION})"
        )
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(path, f"missing key(s) {', '.join(missing)}")
    return manifest


def require(directory: Path, relative: str) -> Path:
    """Path of a file the bundle must contain; ``BundleError`` naming it when absent."""
    path = Path(directory) / relative
    if not path.exists():
        raise BundleError(path, "file missing")
    return path


def save_catalog(directory: Path, catalog: Catalog) -> None:
    directory = Path(directory)
    catalog.save(directory / CATALOG)
    (directory / TAXONOMY).write_text(json.dumps(catalog.taxonomy.to_dict(), indent=1))


def load_catalog(directory: Path) -> Catalog:
    tax_path = require(directory, TAXONOMY)
    try:
        taxonomy = StyleTaxonomy.from_dict(json.loads(tax_path.read_text()), str(tax_path))
    except (json.JSONDecodeError, UnicodeDecodeError, DataContractError) as exc:
        raise BundleError(tax_path, f"corrupt: {exc}") from exc
    cat_path = require(directory, CATALOG)
    try:
        raw = pd.read_parquet(cat_path)
        return validate_catalog(raw, str(cat_path), taxonomy)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a corrupt file
        raise BundleError(cat_path, f"corrupt: {exc}") from exc


def load_component(path: Path, loader: Any) -> Any:
    """Run ``loader(path)``; any failure becomes a ``BundleError`` naming the component."""
    if not Path(path).exists():
        raise BundleError(path, "component missing")
    try:
        return loader(path)
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - a component's own error says what broke
        raise BundleError(path, f"cannot be loaded: {type(exc).__name__}: {exc}") from exc


def find_bundle(folder: Path) -> Path:
    """The bundle inside ``folder``: itself, ``artifacts/bundle`` of a downloaded MLflow model,
    or the one folder below holding a manifest. ``BundleError`` when none or several."""
    folder = Path(folder)
    for candidate in (folder, folder / MLFLOW_BUNDLE_SUBPATH):
        if (candidate / MANIFEST).is_file():
            return candidate
    found = sorted(p.parent for p in folder.rglob(MANIFEST))
    if len(found) == 1:
        return found[0]
    if not found:
        raise BundleError(folder, f"no model bundle ({MANIFEST}) in this folder")
    raise BundleError(folder, f"several bundles ({', '.join(map(str, found))}); point at one of them")
