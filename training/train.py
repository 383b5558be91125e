"""``recsys train``: validate, fit, evaluate, and record it all as ONE MLflow run, then register
the bundle as a new version of the registered model (and maybe promote it).

Order of work: the config and the data are validated before anything else (an unknown
generator/feature/style or a broken file fails in a second, not after a fit). Then
``training.fit.fit_recommender`` runs the stages with progress bars; the run gets the resolved
config as params; data fingerprint, code version, seed and evaluation window as tags; metrics
(each baseline's next to the model's, stage seconds, peak memory); the evaluation report,
feature importance and data profile as artifacts; and the bundle as a pyfunc model.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from recsys import __version__
from recsys.bundle import code_version
from recsys.data import Catalog, DataContractError, Interactions, load_catalog, load_interactions
from recsys.settings import Settings
from training import registry
from training.data_profile import profile_data, profile_markdown
from training.model_layout import BUNDLE_ARTIFACT, MODEL_NAME_IN_RUN
from training.provenance import data_fingerprint, dataset_slug, git_commit, run_name
from training.resources import peak_memory_mb

if TYPE_CHECKING:
    import pandas as pd

    from recsys.config import PipelineConfig
    from recsys.engine.aggregates import AggregationEngine
    from recsys.rules.engine import RuleEngine
    from training.fit import FitResult

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "home-xsell"
MIN_PURCHASE_ORDERS = 20
# Installed versions of these are pinned into the logged model's requirements (listing them
# avoids MLflow's slow requirement inference, which re-loads the model in a subprocess).
MODEL_REQUIREMENTS = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "implicit",
    "faiss-cpu",
    "lightgbm",
    "pyyaml",
    "pydantic",
    "pydantic-settings",
    "mlflow",
)


@dataclass(frozen=True)
class TrainInputs:
    """Validated inputs of one training."""

    config: PipelineConfig
    config_source: str
    catalog: Catalog
    interactions: Interactions
    catalog_path: Path
    interactions_path: Path
    load_seconds: float = 0.0
    ground_truth: pd.DataFrame | None = None  # sample world answers (style, forgotten accessories)
    item_truth: pd.DataFrame | None = None  # sku, true_styles (sample world)
    ground_truth_path: Path | None = None
    dropped_unknown_sku_events: int = 0


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    experiment_id: str
    model_name: str
    model_name_source: str
    version: str
    metrics: dict[str, float]
    stage_seconds: dict[str, float]
    peak_memory_mb: float
    eval_window: str
    promotion: registry.GateDecision | None = None
    champion_version: str | None = None
    artifacts: list[str] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def load_config(path: str | Path | None) -> tuple[PipelineConfig, str]:
    """Parse and validate a pipeline config (the default one when ``path`` is None), checking
    feature names against the feature store. Raises ``recsys.config.ConfigError``."""
    from feature_store import load_pipeline_config

    if path is None:
        from recsys.config import DEFAULT_CONFIG_PATH

        path = DEFAULT_CONFIG_PATH
    return load_pipeline_config(Path(path)), str(path)


def registered_model_name(
    catalog_path: str | Path, is_sample_world: bool, settings: Settings, explicit: str | None = None
) -> tuple[str, str]:
    """(registered model name, where it came from). ``explicit`` (--name) wins, then
    RECSYS_MODEL_NAME; otherwise it is derived from the data so that each dataset has its own
    versions, champion and evaluation windows: the sample world (a folder written by
    ``recsys sample-data``, recognised by its ground truth) keeps the name the demo serves
    (``Settings.model_name``), any other data gets ``<that name>-<dataset>`` with the dataset
    named after the catalog's folder (``training.provenance.dataset_slug``)."""
    if explicit:
        return explicit, "--name"
    if "model_name" in settings.model_fields_set:
        return settings.model_name, "RECSYS_MODEL_NAME"
    if is_sample_world:
        return settings.model_name, "sample world: the name the demo serves"
    return (
        f"{settings.model_name}-{dataset_slug(catalog_path)}",
        "derived from the catalog's folder",
    )


def check_trainable(interactions: Interactions, source: str) -> None:
    """Data that passes the contract but cannot train a model fails here, with the reason."""
    purchases = interactions.purchases()
    if purchases.empty:
        raise DataContractError(source, "no purchase events: training needs purchases (orders)")
    n_orders = purchases["order_id"].nunique()
    if n_orders < MIN_PURCHASE_ORDERS:
        raise DataContractError(
            source,
            f"only {n_orders} purchase orders; training needs at least {MIN_PURCHASE_ORDERS} "
            "(split by time into training and evaluation windows)",
        )
    if purchases["ts"].min() == purchases["ts"].max():
        raise DataContractError(
            source, "all purchases have the same timestamp; a time-based split is impossible"
        )


def load_inputs(
    catalog: str | Path,
    interactions: str | Path,
    config: str | Path | None = None,
    ground_truth: str | Path | None = None,
    unknown_skus: str = "error",
) -> TrainInputs:
    """Validate config first (cheap), then the catalog and the interactions against it.

    ``ground_truth`` (the sample world's ``ground_truth.parquet``; found next to the
    interactions when not given) adds style coherence and accessory recall to the evaluation;
    an ``item_styles.parquet`` beside it gives the items' true styles. ``unknown_skus="drop"``
    drops events of SKUs missing from the catalog (counted) instead of failing on the first."""
    import pandas as pd

    started = time.perf_counter()
    cfg, cfg_source = load_config(config)
    cat = load_catalog(catalog)
    if unknown_skus not in ("error", "drop"):
        raise ValueError(f"unknown_skus must be 'error' or 'drop', got {unknown_skus!r}")
    dropped = 0
    if unknown_skus == "drop":
        events = load_interactions(interactions)
        known = events.frame["sku"].isin(cat.ids.to_list())
        dropped = int((~known).sum())
        if dropped:
            events = Interactions(events.frame[known].reset_index(drop=True))
    else:
        events = load_interactions(interactions, catalog=cat)
    check_trainable(events, str(interactions))
    gt_path = (
        Path(ground_truth) if ground_truth else Path(interactions).with_name("ground_truth.parquet")
    )
    gt = item_truth = None
    if ground_truth and not gt_path.is_file():
        raise DataContractError(str(gt_path), "file not found")
    if gt_path.is_file():
        gt = pd.read_parquet(gt_path)
        missing = {"order_id", "order_style", "forgotten_skus"} - set(gt.columns)
        if missing:
            raise DataContractError(str(gt_path), f"missing column(s) {', '.join(sorted(missing))}")
        styles_path = gt_path.with_name("item_styles.parquet")
        item_truth = pd.read_parquet(styles_path) if styles_path.is_file() else None
    return TrainInputs(
        cfg,
        cfg_source,
        cat,
        events,
        Path(catalog),
        Path(interactions),
        load_seconds=time.perf_counter() - started,
        ground_truth=gt,
        item_truth=item_truth,
        ground_truth_path=gt_path if gt is not None else None,
        dropped_unknown_sku_events=dropped,
    )


def default_rules_for(catalog: Catalog) -> RuleEngine | None:
    """The default merchandiser rules compiled for ``catalog`` (to score accessory recall at
    checkout), None when they do not fit this catalog (e.g. Online Retail has no categories)."""
    if not catalog.has_categories:
        return None
    try:
        from recsys.rules.engine import RuleEngine
        from recsys.rules.rules_file import default_rules

        return RuleEngine.compile(default_rules(), catalog)
    except Exception as exc:  # noqa: BLE001 - rules are optional for the evaluation
        log.warning("default rules not used in the evaluation: %s", exc)
        return None


class StageProgress:
    """``progress(stage, fraction)`` callback: one tqdm bar over the whole fit, labelled with
    the running stage (``fraction`` is the share of the fit done when the stage starts)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._bar: Any = None

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=100,
                file=self.stream,
                leave=True,
                unit="%",
                bar_format="{desc:<28} {bar} {percentage:3.0f}% [{elapsed}]",
            )
        self._bar.set_description_str(f"training: {stage}")
        target = int(round(100 * min(max(fraction, 0.0), 1.0)))
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_description_str("training: done")
            if self._bar.n < 100:
                self._bar.update(100 - self._bar.n)
            self._bar.close()
            self._bar = None


def metric_key(name: str) -> str:
    """A metric/param name MLflow accepts: ``recall@10`` -> ``recall_at_10``, ``item_knn alone``
    -> ``item_knn_alone`` (alphanumerics, ``_ - . /`` only)."""
    text = str(name).replace("@", "_at_")
    out = "".join(c if c.isalnum() or c in "_-./" else "_" for c in text)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_") or "_"


def flatten_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"ranker.num_leaves": "31", "generators.0.name": "item_knn"}``."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, f"{name}."))
        elif (
            isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value)
        ):
            for i, item in enumerate(value):
                label = item.get("name", i) if isinstance(item, Mapping) else i
                out.update(flatten_params(item, f"{name}.{label}."))
        else:
            text = json.dumps(value, default=str) if not isinstance(value, str) else value
            out[metric_key(name)] = text[:6000]
    return out


def collect_metrics(
    result: FitResult, stage_seconds: Mapping[str, float], peak_mb: float
) -> dict[str, float]:
    """Model metrics, ``baseline.<name>.<metric>`` next to them, ``time.<stage>_s`` and
    ``peak_memory_mb``. Non-finite values are dropped (MLflow rejects NaN in some stores)."""
    metrics: dict[str, float] = {}
    evaluation = result.evaluation
    for name, value in evaluation.metrics.items():
        metrics[metric_key(name)] = float(value)
    for baseline, values in (evaluation.baselines or {}).items():
        for name, value in values.items():
            metrics[f"baseline.{metric_key(baseline.lower())}.{metric_key(name)}"] = float(value)
    for stage, seconds in stage_seconds.items():
        metrics[metric_key(f"time.{stage}_s")] = float(seconds)
    metrics["time.total_s"] = float(sum(stage_seconds.values()))
    metrics["peak_memory_mb"] = float(peak_mb)
    return {k: v for k, v in metrics.items() if v == v and abs(v) != float("inf")}


def eval_window(result: FitResult, interactions: Interactions) -> str:
    """The evaluation window as ``<start>..<end>`` (ISO, UTC): from the last time cut of the
    fit to the last purchase. Two runs are comparable only if these are equal."""
    cuts = [c.strip() for c in str(result.windows.get("cuts", "")).split(",") if c.strip()]
    if not cuts:
        raise RuntimeError("fit result has no time cuts; cannot record the evaluation window")
    end = interactions.purchases()["ts"].max()
    return f"{cuts[-1]}..{_iso(end)}"


def window_cuts_of(result: FitResult) -> list[pd.Timestamp]:
    """The fit's time cuts as timestamps (first = end of the generator window)."""
    import pandas as pd

    text = str(result.windows.get("cuts", ""))
    return [pd.Timestamp(c.strip()) for c in text.split(",") if c.strip()]


def measure_style_accuracy(inputs: TrainInputs, result: FitResult, seed: int) -> dict[str, float]:
    """Basket style accuracy on held-out orders (``training.style_accuracy``); {} if the data
    has no true styles."""
    from training.style_accuracy import basket_style_accuracy

    try:
        return basket_style_accuracy(
            inputs.catalog,
            inputs.interactions,
            inputs.config,
            inputs.ground_truth,
            window_cuts_of(result),
            seed=seed,
            max_orders=inputs.config.training.max_eval_orders,
        )
    except (KeyError, ValueError) as exc:
        log.warning("style accuracy not measured: %s", exc)
        return {}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def write_feature_importance(importance: Any, folder: Path) -> list[Path]:
    """CSV (feature, importance) sorted descending, and a horizontal bar plot."""
    import pandas as pd

    if importance is None:
        return []
    if isinstance(importance, pd.DataFrame):
        frame = importance.copy()
        if "feature" not in frame.columns:
            frame = frame.reset_index().rename(columns={"index": "feature"})
        value_col = next(c for c in frame.columns if c != "feature")
        frame = frame.rename(columns={value_col: "importance"})[["feature", "importance"]]
    else:
        items = importance.items() if isinstance(importance, Mapping) else importance
        frame = pd.DataFrame(list(items), columns=["feature", "importance"])
    if frame.empty:
        return []
    frame = frame.sort_values("importance", ascending=False).reset_index(drop=True)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "feature_importance.csv"
    frame.to_csv(csv, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = frame.head(30).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    ax.barh(top["feature"], top["importance"], color="#4c72b0")
    ax.set_xlabel("importance (total gain)")
    ax.set_title("Ranker feature importance")
    fig.tight_layout()
    png = folder / "feature_importance.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [csv, png]


def model_requirements() -> list[str]:
    out = []
    for pkg in MODEL_REQUIREMENTS:
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            out.append(pkg)
    return out


def retrain_command(inputs: TrainInputs, seed: int, experiment: str) -> str:
    """The command that reproduces this run (the config is also logged as an artifact)."""
    parts = [
        "recsys",
        "train",
        "--catalog",
        str(inputs.catalog_path.resolve()),
        "--interactions",
        str(inputs.interactions_path.resolve()),
        "--config",
        inputs.config_source,
        "--seed",
        str(seed),
        "--experiment",
        experiment,
    ]
    if inputs.ground_truth_path is not None:
        parts += ["--ground-truth", str(inputs.ground_truth_path.resolve())]
    if inputs.dropped_unknown_sku_events:
        parts += ["--unknown-skus", "drop"]
    return shlex.join(parts)


def train_and_register(
    inputs: TrainInputs,
    *,
    seed: int = 7,
    experiment: str = DEFAULT_EXPERIMENT,
    model_name: str | None = None,
    promote: bool = False,
    tolerance: float = registry.DEFAULT_TOLERANCE,
    settings: Settings | None = None,
    progress: Callable[[str, float], None] | None = None,
    echo: Callable[[str], None] = print,
    ablations: bool = False,
    engine: AggregationEngine | None = None,
) -> TrainOutcome:
    """Fit on validated ``inputs`` inside one MLflow run, register the bundle, set the alias.

    The first version of a registered model becomes champion; later ones only with
    ``promote`` and a passing gate (``training.registry``). ``ablations`` also trains the
    rankers without style / CF features for the report (slower; ``experiments.offline_eval``
    is the place for full comparisons). ``engine`` computes the co-occurrence aggregates
    (default: in process); its name is the run's ``training.engine`` tag.
    """
    import mlflow

    from training.fit import fit_recommender
    from training.pyfunc import ENTRY_FILE, code_paths, input_example, model_signature
    from training.tracking import client_for, configure_mlflow, ensure_experiment

    settings = settings or Settings()
    model_name, name_source = registered_model_name(
        inputs.catalog_path, inputs.ground_truth_path is not None, settings, model_name
    )
    target = configure_mlflow(settings)
    experiment_id = ensure_experiment(experiment, target)
    client = client_for(target)
    fingerprint = data_fingerprint([inputs.catalog_path, inputs.interactions_path])
    sha, dirty = git_commit()
    code = {"version": code_version(), "package_version": __version__}
    if sha:
        code |= {"git_sha": sha, "git_dirty": str(dirty).lower()}
    name_of_run = run_name(f"{dataset_slug(inputs.catalog_path)}-seed{seed}", inputs.config.hash)

    with (
        tempfile.TemporaryDirectory(prefix="recsys-train-") as tmp,
        mlflow.start_run(experiment_id=experiment_id, run_name=name_of_run) as run,
    ):
        work = Path(tmp)
        run_id = run.info.run_id
        mlflow.set_tags(
            {
                "data_fingerprint": fingerprint,
                "data.catalog": str(inputs.catalog_path.resolve()),
                "data.interactions": str(inputs.interactions_path.resolve()),
                "seed": str(seed),
                "config_hash": inputs.config.hash,
                "dataset": dataset_slug(inputs.catalog_path),
                "data.dropped_unknown_sku_events": str(inputs.dropped_unknown_sku_events),
                "retrain_command": retrain_command(inputs, seed, experiment),
                "training.engine": engine.name if engine is not None else "inprocess",
                **{f"code.{k}": v for k, v in code.items()},
            }
        )
        params = flatten_params(inputs.config.to_dict(), "config.")
        params["seed"] = str(seed)
        params["ablations"] = str(ablations).lower()
        mlflow.log_params(params)
        cfg_file = work / "config" / "pipeline.yaml"
        cfg_file.parent.mkdir()
        cfg_file.write_text(yaml.safe_dump(inputs.config.to_dict(), sort_keys=False))
        mlflow.log_artifact(str(cfg_file), "config")

        profile = profile_data(inputs.catalog, inputs.interactions)
        prof_dir = work / "data_profile"
        prof_dir.mkdir()
        (prof_dir / "data_profile.json").write_text(json.dumps(profile, indent=2))
        (prof_dir / "data_profile.md").write_text(profile_markdown(profile))
        mlflow.log_artifacts(str(prof_dir), "data_profile")

        rules = default_rules_for(inputs.catalog) if inputs.ground_truth is not None else None
        if inputs.ground_truth_path is not None:
            mlflow.set_tag("data.ground_truth", str(inputs.ground_truth_path.resolve()))
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            result = fit_recommender(
                inputs.catalog,
                inputs.interactions,
                inputs.config,
                seed=seed,
                progress=progress,
                output_dir=work / "evaluation",
                ground_truth=inputs.ground_truth,
                rules=rules,
                item_truth=inputs.item_truth,
                ablations=ablations,
                engine=engine,
            )
        if progress is not None and hasattr(progress, "close"):
            progress.close()
        stage_seconds = {"load_and_validate": inputs.load_seconds, **result.stage_seconds}
        style_metrics: dict[str, float] = {}
        if inputs.ground_truth is not None:
            if progress is not None:
                progress("style_accuracy", 0.97)
            t_style = time.perf_counter()
            style_metrics = measure_style_accuracy(inputs, result, seed)
            stage_seconds["style_accuracy"] = time.perf_counter() - t_style
        peak = peak_memory_mb()
        window = eval_window(result, inputs.interactions)
        metrics = collect_metrics(result, stage_seconds, peak)
        metrics.update(style_metrics)
        mlflow.set_tag(registry.WINDOW_TAG, window)
        mlflow.log_metrics(metrics)

        eval_dir = work / "evaluation"
        eval_dir.mkdir(exist_ok=True)
        (eval_dir / "report.md").write_text(result.evaluation.report_markdown)
        for fig in (result.evaluation.figures or {}).values():
            if Path(fig).parent.resolve() != eval_dir.resolve():
                mlflow.log_artifact(str(fig), "evaluation")
        mlflow.log_artifacts(str(eval_dir), "evaluation")
        fi_files = write_feature_importance(result.feature_importance, work / "feature_importance")
        for f in fi_files:
            mlflow.log_artifact(str(f), "feature_importance")

        started = time.perf_counter()
        bundle = work / "bundle"
        result.recommender.save(bundle, run_id=run_id)
        mlflow.log_dict(dict(result.windows), "evaluation/windows.json")
        skus = [str(s) for s in inputs.catalog.skus[:3]]
        echo(f"logging the model bundle to MLflow (run {run_id}) ...")
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(ENTRY_FILE),
            artifacts={BUNDLE_ARTIFACT: str(bundle)},
            signature=model_signature(),
            input_example=input_example(skus),
            code_paths=code_paths(),
            pip_requirements=model_requirements(),
            registered_model_name=model_name,
        )
        version_no = str(info.registered_model_version)
        stage_seconds["save_and_register"] = time.perf_counter() - started
        mlflow.log_metrics(
            {
                "time.save_and_register_s": stage_seconds["save_and_register"],
                "time.total_s": sum(stage_seconds.values()),
            }
        )
        metrics.update(
            {
                "time.save_and_register_s": stage_seconds["save_and_register"],
                "time.total_s": sum(stage_seconds.values()),
            }
        )
        mlflow.set_tag("registered_model", f"{model_name}/{version_no}")
        for key, value in (
            (registry.WINDOW_TAG, window),
            ("data_fingerprint", fingerprint),
            ("config_hash", inputs.config.hash),
            ("seed", str(seed)),
        ):
            client.set_model_version_tag(model_name, version_no, key, value)

    decision = None
    champion = registry.current_champion(client, model_name, settings.model_alias)
    if champion is None or promote:
        decision = registry.promote(
            client, model_name, version_no, tolerance=tolerance, alias=settings.model_alias
        )
    champion = registry.current_champion(client, model_name, settings.model_alias)
    return TrainOutcome(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=model_name,
        model_name_source=name_source,
        version=version_no,
        metrics=metrics,
        stage_seconds=stage_seconds,
        peak_memory_mb=peak,
        eval_window=window,
        promotion=decision,
        champion_version=str(champion.version) if champion is not None else None,
    )


def describe_outcome(outcome: TrainOutcome) -> str:
    """Stage timings, key metrics with baselines, and what happened to the alias."""
    lines = ["", "stage timings (s):"]
    for stage, seconds in outcome.stage_seconds.items():
        lines.append(f"  {stage:<22} {seconds:8.2f}")
    lines.append(f"  {'total':<22} {sum(outcome.stage_seconds.values()):8.2f}")
    lines.append(f"peak memory: {outcome.peak_memory_mb:,.0f} MiB")
    lines.append(f"evaluation window: {outcome.eval_window}")
    lines.append("metrics (model | baselines):")
    model_metrics = {
        k: v
        for k, v in outcome.metrics.items()
        if not k.startswith(("baseline.", "time.")) and k != "peak_memory_mb"
    }
    for name, value in sorted(model_metrics.items()):
        base = {
            k.split(".")[1]: v
            for k, v in outcome.metrics.items()
            if k.startswith("baseline.") and k.endswith(f".{name}")
        }
        extra = "  ".join(f"{b}={v:.4f}" for b, v in sorted(base.items()))
        lines.append(f"  {name:<24} {value:.4f}   {extra}")
    lines.append(f"MLflow run: {outcome.run_id} (experiment {outcome.experiment_id})")
    lines.append(f"registered model: {outcome.model_name} ({outcome.model_name_source})")
    if outcome.promotion is not None:
        lines.append(outcome.promotion.explain())
    lines.append(
        f"champion: version {outcome.champion_version}"
        if outcome.champion_version
        else "champion: none"
    )
    return "\n".join(lines)
