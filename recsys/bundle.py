"""The model bundle: one folder holding everything serving needs, as plain files.

Written and read by ``save_bundle`` / ``load_bundle`` (the only owner of the layout).
Layout: ``manifest.json`` (schema_version, code_version, created_at, run_id, feature set, config
hash, config, components, metrics), ``catalog.parquet``, ``taxonomy.json``, ``users.json`` and one
sub-folder per component (``style/``, ``generators/<name>/``, ``features/``, ``ranker/``).
No pickle anywhere. A bundle of another schema version, or with a file missing or corrupt, is
refused with a ``BundleError`` naming the file.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys import __version__
from recsys.data.catalog import Catalog, validate_catalog
from recsys.data.errors import DataContractError
from recsys.data.taxonomy import StyleTaxonomy

if TYPE_CHECKING:
    from recsys.ranking.features import FeatureAssembler
    from recsys.recommendation import AccessoryRules
    from recsys.recommender import Recommender

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
# Inside a logged MLflow pyfunc model (``log_model(name="model", artifacts={"bundle": dir})``)
# the bundle folder sits at this sub-path of the downloaded model directory.
MLFLOW_BUNDLE_SUBPATH = "artifacts/bundle"
CATALOG = "catalog.parquet"
TAXONOMY = "taxonomy.json"
REQUIRED_KEYS = (
    "schema_version",
    "code_version",
    "created_at",
    "feature_set",
    "config_hash",
    "config",
    "components",
)


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
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def model_version(config_hash: str, created: str | None = None) -> str:
    """A model's version label: creation time and config hash (``20261202T064200-a3201c5a``)."""
    created = created or now_iso()
    return f"{created[:19].replace('-', '').replace(':', '')}-{config_hash[:8]}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` last, with the SHA-256 of every other file (``files``) so a
    loader can refuse a bundle altered after saving (``recsys.bundle_check``)."""
    from recsys.bundle_check import FILES_KEY, checksums

    manifest = {**manifest, FILES_KEY: checksums(directory, exclude=(MANIFEST,))}
    (Path(directory) / MANIFEST).write_text(
        json.dumps(manifest, indent=1, sort_keys=True, default=str)
    )


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
            path,
            f"schema_version {version!r} is not supported by this code (expects {SCHEMA_VERSION})",
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
    raise BundleError(
        folder, f"several bundles ({', '.join(map(str, found))}); point at one of them"
    )


# --- a fitted Recommender <-> a bundle folder ------------------------------------------------

MINED_RULES = "mined_rules.json"


def save_bundle(
    rec: Recommender,
    directory: Path | str,
    *,
    run_id: str | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write ``rec`` as a bundle into ``directory`` and return it. The manifest records the
    recommender's own manifest updated with this save (version, run id, metrics)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_catalog(directory, rec.catalog)
    components: list[dict[str, Any]] = []
    for spec, g in zip(rec.config.generators, rec.generators, strict=True):
        sub = Path("generators") / spec.name
        g.save(directory / sub)
        components.append({"name": spec.name, "kind": spec.kind, "path": str(sub)})
    if rec.style_model is not None:
        rec.style_model.save(directory / "style")
        components.append({"name": "style_model", "kind": "style", "path": "style"})
    if rec.features is not None:
        rec.features.save(directory / "features")
        components.append({"name": "features", "kind": "features", "path": "features"})
    if rec.ranker is not None:
        rec.ranker.save(directory / "ranker")
        components.append({"name": "ranker", "kind": "ranker", "path": "ranker"})
    if rec.mined_suggestions is not None:
        from recsys.rules.mining import save_suggestions

        save_suggestions(list(rec.mined_suggestions), directory / MINED_RULES)
        components.append({"name": "mined_rules", "kind": "rules", "path": MINED_RULES})
    (directory / "users.json").write_text(json.dumps(rec.user_index.to_list()))
    np.savez_compressed(directory / "user_affinity.npz", affinity=rec.user_affinity)
    created = now_iso()
    manifest = dict(rec.manifest)
    config = rec.config
    manifest.update(
        {
            "schema_version": SCHEMA_VERSION,
            "code_version": code_version(),
            "created_at": created,
            "run_id": run_id if run_id is not None else manifest.get("run_id"),
            "version": manifest.get("version") or model_version(config.hash, created),
            "feature_set": {
                "name": config.feature_set,
                "version": getattr(rec.features, "version", None),
                "features": list(getattr(rec.features, "feature_names", ())),
            },
            "config_hash": config.hash,
            "config": config.to_dict(),
            "components": components,
            "reference_ts": rec.reference_ts,
            "metrics": metrics if metrics is not None else manifest.get("metrics"),
        }
    )
    write_manifest(directory, manifest)
    return directory


def load_bundle(
    directory: Path | str,
    feature_loader: Callable[[Path], FeatureAssembler] | None = None,
    default_rules: AccessoryRules | None = None,
) -> Recommender:
    """Read a bundle. Without ``feature_loader`` (the feature store supplies it) the ranker
    cannot run and answers come from the merged candidate order."""
    from recsys.config import config_from_dict
    from recsys.ids import IdIndex
    from recsys.ranking.ranker import LightGBMRanker
    from recsys.recommender import Recommender

    directory = Path(directory)
    manifest = read_manifest(directory)
    try:
        config = config_from_dict(manifest["config"])
    except ValueError as exc:
        raise BundleError(directory / MANIFEST, f"config: {exc}") from exc
    catalog = load_catalog(directory)
    by_name = {c["name"]: c for c in manifest["components"]}
    generators = []
    for spec in config.generators:
        comp = by_name.get(spec.name)
        if comp is None:
            raise BundleError(directory / MANIFEST, f"component {spec.name!r} not listed")
        try:
            klass = spec.generator_class()
        except (ImportError, AttributeError) as exc:
            raise BundleError(
                directory / comp["path"], f"generator class unavailable: {exc}"
            ) from exc
        g = load_component(directory / comp["path"], klass.load)
        g.name = spec.name
        generators.append(g)
    style_model = None
    if "style_model" in by_name:
        from recsys.style.item_model import ItemStyleModel

        style_model = load_component(directory / "style", ItemStyleModel.load)
    features = None
    if "features" in by_name and feature_loader is not None:
        features = load_component(directory / "features", feature_loader)
    ranker = None
    if "ranker" in by_name:
        ranker = load_component(directory / "ranker", LightGBMRanker.load)
    users_path = require(directory, "users.json")
    try:
        users = IdIndex(json.loads(users_path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise BundleError(users_path, f"corrupt: {exc}") from exc
    aff_path = require(directory, "user_affinity.npz")
    try:
        with np.load(aff_path, allow_pickle=False) as z:
            affinity = z["affinity"]
    except Exception as exc:  # noqa: BLE001
        raise BundleError(aff_path, f"corrupt: {exc}") from exc
    suggestions = None
    if "mined_rules" in by_name:
        from recsys.rules.mining import load_suggestions

        suggestions = load_component(directory / MINED_RULES, load_suggestions)
    if default_rules is None and suggestions:
        from recsys.rules.mining import suggestion_rules

        item_styles = (
            None if style_model is None else np.asarray(style_model.item_styles_, np.float32)
        )
        default_rules = suggestion_rules(suggestions, catalog, item_styles)
    return Recommender(
        catalog,
        config,
        generators,
        features=features,
        ranker=ranker,
        style_model=style_model,
        user_index=users,
        user_affinity=affinity,
        reference_ts=manifest.get("reference_ts"),
        default_rules=default_rules,
        manifest=manifest,
        mined_suggestions=suggestions,
    )
