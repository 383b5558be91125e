"""``recsys tune``: choose the pipeline's key hyperparameters on the validation window, never
on the evaluation window.

Protocol. The full data's orders are cut by time with the config's four window shares
(``training.splits.build_orders`` / ``window_cuts``): generators | ranker | validation |
evaluation. Every order from the evaluation cut on (and every other event at or after it) is
dropped before any trial runs; no trial ever sees it, so the figures ``recsys train`` later
reports on the evaluation window stay held out. Each trial runs
``training.fit.fit_recommender`` on what is left with ``cutoff`` = the validation cut: its
internal last window is exactly the validation window of the full data, and its earlier
windows split the orders before it in the config's proportions. Trials run with
``training.refit_generators`` off (the refit serves a bundle, it does not change the figures)
and without ablations or stand-alone reference baselines (they do not change the objective).

Configs are handled in their nested YAML form (a dict like ``recsys/pipeline.yaml``): a trial
copies the base dict, sets the sampled values at their paths and parses it with
``recsys.config.parse_pipeline_config``. A path names a generator by its ``name``:
``candidates.generators.item_knn.params.K``. The default search space covers only the
generators present in the base config: EASE ``l2`` (kind ``ease``), RP3beta ``alpha``/``beta``
(kind ``rp3beta``), item-kNN ``K``, every generator's quota, ``candidates.total``, the
ranker's ``num_leaves`` and ``learning_rate``; ``--space FILE`` overrides it (see
``load_space``).

MLflow: one parent run; the base config and every trial are nested runs (params = the values
set, metrics = the validation figures); the parent logs the best and base values, the
optimisation history plot and the best config. The sampler is Optuna's TPE seeded with
``--seed`` (and fits use the same seed), so a run is reproducible.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recsys.config import ConfigError, parse_pipeline_config
from recsys.data import Catalog, Interactions
from recsys.data.orders import build_orders
from training.fit import fit_recommender
from training.splits import window_cuts

log = logging.getLogger(__name__)

METRICS = ("recall@10", "ndcg@10", "mrr", "hit_rate@10")
DEFAULT_QUOTA = 50  # recsys.config's default when a generator gives none
DEFAULT_TOTAL = 200
GENERATORS_PATH = "candidates.generators"
SPACE_HELP = """\
--space FILE (YAML):
  include_defaults: true        # false: search only the params below
  params:
    candidates.generators.item_knn.params.K: {type: int, low: 20, high: 300, log: true}
    ranker.params.learning_rate: {type: float, low: 0.02, high: 0.2, log: true}
    diversity.style_slots: {type: categorical, choices: [0, 1, 2]}
    ranker.params.num_leaves: null     # drop a default entry
"""


class TuneError(ValueError):
    """A search that cannot run (bad space file, no data left for validation...)."""


# ---------------------------------------------------------------- paths in the nested config


def _generator_index(data: Mapping[str, Any], name: str, path: str) -> int:
    gens = (data.get("candidates") or {}).get("generators") or []
    for i, g in enumerate(gens):
        if isinstance(g, Mapping) and g.get("name") == name:
            return i
    known = ", ".join(str(g.get("name")) for g in gens if isinstance(g, Mapping))
    raise TuneError(f"{path}: no generator named {name!r} in the base config (have: {known})")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path`` in a nested config dict (in place); mappings on the
    way are created; ``candidates.generators.<name>`` selects the generator called <name>."""
    parts = path.split(".")
    node: Any = data
    i = 0
    while i < len(parts) - 1:
        key = parts[i]
        if ".".join(parts[: i + 1]) == GENERATORS_PATH:
            if i + 2 >= len(parts):
                raise TuneError(
                    f"{path}: name a generator field, e.g. {GENERATORS_PATH}.NAME.quota"
                )
            node = node[key][_generator_index(data, parts[i + 1], path)]
            i += 2
            continue
        if not isinstance(node.get(key), dict):
            if node.get(key) is not None:
                raise TuneError(f"{path}: {key!r} is not a mapping in the base config")
            node[key] = {}
        node = node[key]
        i += 1
    if not isinstance(node, dict):
        raise TuneError(f"{path}: cannot set a value here")
    node[parts[-1]] = value


def _plain(value: Any) -> Any:
    """numpy / optuna scalars -> Python (YAML and MLflow want plain values)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def apply_values(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with every ``path: value`` of ``values`` set."""
    out = copy.deepcopy(dict(base))
    for path, value in values.items():
        set_path(out, path, _plain(value))
    return out


# ------------------------------------------------------------------------------ search space


@dataclass(frozen=True)
class SearchParam:
    """One searched value: ``type`` int | float (``low``..``high``, ``log``) or categorical."""

    path: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        if self.type == "float":
            return trial.suggest_float(self.path, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_categorical(self.path, list(self.choices))

    def describe(self) -> str:
        if self.type == "categorical":
            return f"{self.path} in {list(self.choices)}"
        return f"{self.path} {self.type} [{self.low}, {self.high}]{' log' if self.log else ''}"


def _param_from(path: str, spec: Any, where: str) -> SearchParam:
    if not isinstance(spec, Mapping):
        raise TuneError(f"{where}: {path}: expected a mapping with type, low, high (or choices)")
    kind = spec.get("type")
    extra = set(spec) - {"type", "low", "high", "log", "choices"}
    if extra:
        raise TuneError(f"{where}: {path}: unknown key(s) {sorted(extra)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise TuneError(f"{where}: {path}: categorical needs a non-empty list 'choices'")
        return SearchParam(path, "categorical", choices=tuple(choices))
    if kind not in ("int", "float"):
        raise TuneError(f"{where}: {path}: type must be int, float or categorical, got {kind!r}")
    low, high, logscale = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    numbers = (int, float)
    if (
        not isinstance(low, numbers)
        or not isinstance(high, numbers)
        or isinstance(low, bool)
        or low > high
    ):
        raise TuneError(f"{where}: {path}: need numbers low <= high, got low={low!r} high={high!r}")
    if kind == "int" and (int(low) != low or int(high) != high):
        raise TuneError(f"{where}: {path}: int bounds must be whole numbers")
    if logscale and low <= 0:
        raise TuneError(f"{where}: {path}: a log scale needs low > 0")
    return SearchParam(path, kind, float(low), float(high), logscale)


def default_space(base: Mapping[str, Any]) -> dict[str, SearchParam]:
    """The key hyperparameters of the generators present in ``base``, its candidate budget and
    its ranker. Quota and total ranges are centred on the base values (a quarter to twice)."""
    space: dict[str, SearchParam] = {}
    cand = base.get("candidates") or {}
    total = int(cand.get("total", DEFAULT_TOTAL))
    for g in cand.get("generators") or []:
        name = g["name"]
        kind = g.get("kind", name)
        prefix = f"{GENERATORS_PATH}.{name}"
        if kind == "ease":
            space[f"{prefix}.params.l2"] = SearchParam(
                f"{prefix}.params.l2", "float", 1.0, 5000.0, True
            )
        elif kind == "rp3beta":
            space[f"{prefix}.params.alpha"] = SearchParam(
                f"{prefix}.params.alpha", "float", 0.2, 1.5
            )
            space[f"{prefix}.params.beta"] = SearchParam(f"{prefix}.params.beta", "float", 0.0, 1.0)
        elif kind == "item_knn":
            space[f"{prefix}.params.K"] = SearchParam(f"{prefix}.params.K", "int", 10, 400, True)
        quota = int(g.get("quota", DEFAULT_QUOTA))
        space[f"{prefix}.quota"] = SearchParam(
            f"{prefix}.quota", "int", max(1, quota // 4), max(2, quota * 2), True
        )
    space["candidates.total"] = SearchParam(
        "candidates.total", "int", max(10, total // 2), total * 2, True
    )
    space["ranker.params.num_leaves"] = SearchParam("ranker.params.num_leaves", "int", 7, 63, True)
    space["ranker.params.learning_rate"] = SearchParam(
        "ranker.params.learning_rate", "float", 0.01, 0.3, True
    )
    return space


def load_space(path: Path | None, base: Mapping[str, Any]) -> dict[str, SearchParam]:
    """The default space, overridden by the YAML file ``path`` (format: ``SPACE_HELP``). Every
    path must be settable in ``base`` (a generator named that way must exist)."""
    space = default_space(base)
    if path is None:
        return space
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TuneError(f"{where}: cannot read the space file: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("params", {}), Mapping):
        raise TuneError(
            f"{where}: expected a mapping with 'params' (and optional 'include_defaults')"
        )
    extra = set(data) - {"params", "include_defaults"}
    if extra:
        raise TuneError(
            f"{where}: unknown key(s) {sorted(extra)}; expected params, include_defaults"
        )
    if not data.get("include_defaults", True):
        space = {}
    for p, spec in (data.get("params") or {}).items():
        if spec is None:
            space.pop(p, None)
            continue
        space[p] = _param_from(p, spec, where)
        set_path(copy.deepcopy(dict(base)), p, 0)  # fails early on a path that names nothing
    if not space:
        raise TuneError(f"{where}: the search space is empty")
    return space


# ---------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class ValidationData:
    """The data every trial sees: all events before ``evaluation_cut``; ``validation_cut``
    starts the window the objective is measured on (epoch seconds, UTC)."""

    interactions: Interactions
    validation_cut: int
    evaluation_cut: int
    dropped_orders: int
    kept_orders: int

    def describe(self) -> str:
        iso = lambda s: pd.Timestamp(s, unit="s", tz="UTC").isoformat()  # noqa: E731
        return (
            f"validation window {iso(self.validation_cut)}..{iso(self.evaluation_cut)}; "
            f"{self.dropped_orders:,} orders from the evaluation window on are never used"
        )


def validation_data(catalog: Catalog, interactions: Interactions, config: Any) -> ValidationData:
    """Drop the evaluation window of the full data (orders and any other event from its cut
    on); see the module doc for the protocol."""
    tc = config.training
    shares = (tc.generator_share, tc.ranker_share, tc.validation_share, tc.evaluation_share)
    orders = build_orders(interactions, catalog)
    cuts = window_cuts(orders.ts, shares)
    val_cut, eval_cut = int(cuts[-2]), int(cuts[-1])
    frame = interactions.frame
    cut_ts = pd.Timestamp(eval_cut, unit="s", tz="UTC")
    ts = frame["ts"]
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    keep = (ts < cut_ts).to_numpy()
    kept = Interactions(frame[keep].reset_index(drop=True))
    n_eval = int((orders.ts >= eval_cut).sum())
    if not (orders.ts[orders.ts < eval_cut] >= val_cut).any():
        raise TuneError(
            "no orders fall in the validation window; more data or other window shares needed"
        )
    return ValidationData(kept, val_cut, eval_cut, n_eval, len(orders) - n_eval)


# ---------------------------------------------------------------------------------- the search


@dataclass
class TuneOutcome:
    metric: str
    base_value: float
    best_value: float
    best_values: dict[str, Any]
    best_trial: str  # trial number, or "base" when no trial beat the base config
    n_trials: int
    out_path: Path
    parent_run_id: str
    experiment_id: str
    data: ValidationData
    history: list[float] = field(default_factory=list)

    def comparison(self) -> str:
        gain = (self.best_value / self.base_value - 1) if self.base_value > 0 else math.nan
        return (
            f"validation {self.metric}: base config {self.base_value:.4f} -> best "
            f"{self.best_value:.4f} ({gain:+.1%}); best: "
            + (
                "the base config (no trial beat it)"
                if self.best_trial == "base"
                else f"trial {self.best_trial}"
            )
            + f" of {self.n_trials} trials"
        )


def _fit_validation(
    catalog: Catalog, data: ValidationData, yaml_config: Mapping[str, Any], seed: int
) -> tuple[dict[str, float], dict[str, str], float]:
    """Validation figures, the fit's windows and seconds of one config (nested YAML form)."""
    cfg_dict = apply_values(yaml_config, {"training.refit_generators": False})
    config = parse_pipeline_config(cfg_dict, "<tune trial>")
    started = time.perf_counter()
    result = fit_recommender(
        catalog,
        data.interactions,
        config,
        seed=seed,
        cutoff=pd.Timestamp(data.validation_cut, unit="s", tz="UTC"),
        ablations=False,
        references=(),
    )
    return dict(result.evaluation.metrics), dict(result.windows), time.perf_counter() - started


def _history_plot(values: list[float], metric: str, base: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    xs = np.arange(len(values))
    finite = np.array([v if v == v else np.nan for v in values], float)
    best = np.fmax.accumulate(np.where(np.isnan(finite), -np.inf, finite))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(xs, finite, s=18, color="#4c72b0", label="trial")
    ax.step(
        xs,
        np.where(np.isinf(best), np.nan, best),
        where="post",
        color="#dd8452",
        label="best so far",
    )
    ax.axhline(base, color="grey", ls="--", lw=1, label="base config")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("recsys tune: optimisation history")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_fit(
    mlflow: Any,
    metrics: Mapping[str, float],
    windows: Mapping[str, str],
    data: ValidationData,
    seconds: float,
) -> None:
    from training.train import metric_key

    mlflow.log_metrics({metric_key(k): float(v) for k, v in metrics.items() if v == v})
    mlflow.log_metric("time.fit_s", seconds)
    mlflow.set_tags(
        {
            "tune.windows": json.dumps(dict(windows)),
            "tune.validation_cut": str(data.validation_cut),
            "tune.evaluation_cut": str(data.evaluation_cut),
            "tune.data_last_ts": str(int(data.interactions.frame["ts"].max().timestamp())),
        }
    )


def write_tuned_yaml(
    base: Mapping[str, Any], values: Mapping[str, Any], path: Path, header: str
) -> dict[str, Any]:
    """The base config with the best values, as a pipeline YAML (comments on top)."""
    tuned = apply_values(base, values)
    parse_pipeline_config(tuned, str(path))  # never write a file validate-config refuses
    body = yaml.safe_dump(tuned, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + body)
    return tuned


def tune(
    catalog: Catalog,
    interactions: Interactions,
    base: Mapping[str, Any],
    *,
    space: Mapping[str, SearchParam],
    trials: int,
    timeout: float | None = None,
    seed: int = 7,
    metric: str = "recall@10",
    experiment: str = "home-xsell-tune",
    out: Path = Path("tuned.yaml"),
    run_name: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    settings: Any = None,
    report_dir: Path | None = None,
) -> TuneOutcome:
    """Measure the base config, run ``trials`` Optuna trials (TPE, seeded), log them to MLflow
    and write the best config to ``out``; ``report_dir`` also receives the history plot and
    ``trials.csv`` (for a report outside MLflow). See the module doc for the protocol."""
    import mlflow
    import optuna
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from training.tracking import configure_mlflow, ensure_experiment

    if metric not in METRICS:
        raise TuneError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if trials < 1:
        raise TuneError(f"--trials must be >= 1, got {trials}")
    base_dict: dict[str, Any] = copy.deepcopy(dict(base))
    try:
        base_config = parse_pipeline_config(base_dict, "<base config>")
    except ConfigError as exc:
        raise TuneError(f"invalid base config: {exc}") from exc
    data = validation_data(catalog, interactions, base_config)
    echo(data.describe())
    target = configure_mlflow(settings)
    experiment_id = ensure_experiment(experiment, target)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    with (
        tempfile.TemporaryDirectory(prefix="recsys-tune-") as tmp,
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as parent,
        logging_redirect_tqdm(),
    ):
        work = Path(tmp)
        mlflow.log_params(
            {
                "metric": metric,
                "trials": trials,
                "timeout": timeout,
                "seed": seed,
                "base_config_hash": base_config.hash,
                "space_size": len(space),
            }
        )
        mlflow.set_tags(
            {
                "tune.validation_cut": str(data.validation_cut),
                "tune.evaluation_cut": str(data.evaluation_cut),
            }
        )
        mlflow.log_dict({p: s.describe() for p, s in space.items()}, "search_space.json")
        mlflow.log_dict(base_dict, "base_config.yaml")

        with mlflow.start_run(experiment_id=experiment_id, run_name="base config", nested=True):
            mlflow.set_tag("tune.trial", "base")
            base_metrics, windows, secs = _fit_validation(catalog, data, base_dict, seed)
            _log_fit(mlflow, base_metrics, windows, data, secs)
        base_value = float(base_metrics[metric])
        echo(f"base config: validation {metric} {base_value:.4f}")

        bar = tqdm(total=trials, desc="tune", unit="trial", disable=not progress)

        def objective(trial: Any) -> float:
            values = {p: s.suggest(trial) for p, s in space.items()}
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"trial {trial.number}", nested=True
            ):
                mlflow.set_tag("tune.trial", str(trial.number))
                mlflow.log_params({p: _plain(v) for p, v in values.items()})
                metrics, windows, secs = _fit_validation(
                    catalog, data, apply_values(base_dict, values), seed
                )
                _log_fit(mlflow, metrics, windows, data, secs)
            return float(metrics[metric])

        def on_done(study: Any, trial: Any) -> None:
            bar.update(1)
            if trial.value is not None:
                bar.set_postfix_str(f"best {metric} {study.best_value:.4f}")

        study.optimize(
            objective, n_trials=trials, timeout=timeout, callbacks=[on_done], catch=(ValueError,)
        )
        bar.close()
        done = [t for t in study.trials if t.value is not None]
        if not done:
            raise TuneError("every trial failed; see the log above (is the search space valid?)")
        best = study.best_trial
        best_trial_value = float(best.value if best.value is not None else math.nan)
        history = [float(t.value) if t.value is not None else math.nan for t in study.trials]
        # the base config is a candidate too: if no trial beats it, it stays the best config
        base_wins = base_value >= best_trial_value
        best_value = base_value if base_wins else best_trial_value
        best_values: dict[str, Any] = {} if base_wins else dict(best.params)
        best_label = "base" if base_wins else str(best.number)
        header = (
            f"Tuned by `recsys tune` (parent MLflow run {parent.info.run_id}): validation "
            f"{metric} {best_value:.4f}\n(base config {base_value:.4f}), best: "
            + ("the base config (no trial beat it)" if base_wins else f"trial {best.number}")
            + f" of {len(study.trials)}, seed {seed}. Validate with `recsys validate-config`."
        )
        write_tuned_yaml(base_dict, best_values, out, header)
        key = metric.replace("@", "_at_")
        mlflow.log_metrics(
            {
                f"best.{key}": best_value,
                f"base.{key}": base_value,
                f"best_trial.{key}": best_trial_value,
                "trials_completed": float(len(done)),
            }
        )
        plot = _history_plot(history, metric, base_value, work / "optimization_history.png")
        mlflow.log_artifact(str(plot))
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(plot, report_dir / plot.name)
            rows = [{"trial": "base", metric: base_value}] + [
                {
                    "trial": t.number,
                    metric: t.value,
                    "state": t.state.name,
                    "seconds": t.duration.total_seconds() if t.duration else None,
                    **t.params,
                }
                for t in study.trials
            ]
            pd.DataFrame(rows).to_csv(report_dir / "trials.csv", index=False)
        mlflow.log_artifact(str(out), "best_config")
        mlflow.set_tag("tune.best", best_label)
    return TuneOutcome(
        metric,
        base_value,
        best_value,
        best_values,
        best_label,
        len(study.trials),
        out,
        parent.info.run_id,
        experiment_id,
        data,
        history,
    )
