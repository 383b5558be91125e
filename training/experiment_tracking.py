"""An experiment's report as an MLflow run (params, per-variant metrics, differences to control,
plots, the report itself), and ``--promote``: the winning variant's model goes to the existing
promotion gate (``training.registry.promote``), which it must still pass.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feature_store.experiment_report import METRICS, ExperimentReport, format_report
from recsys.experiment import Experiment

MLFLOW_EXPERIMENT = "online-experiments"
REGISTRY_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


def plot_report(rep: ExperimentReport, path: Path) -> Path:
    """One panel per metric: each variant's value; treatment bars carry the 95% CI of the
    difference, drawn around the treatment's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.4))
    names = [v.variant for v in rep.variants]
    for ax, (metric, (_, _, label)) in zip(axes, METRICS.items(), strict=True):
        values = [v.metrics[metric] for v in rep.variants]
        errs = [[0.0 for _ in names], [0.0 for _ in names]]
        for i, v in enumerate(rep.variants):
            d = v.vs_control.get(metric)
            if d:
                errs[0][i] = max(d["diff"] - d["ci_low"], 0.0)
                errs[1][i] = max(d["ci_high"] - d["diff"], 0.0)
        colors = ["#777"] + [
            "#2a7" if (v.vs_control.get(metric) or {}).get("significant") else "#49c"
            for v in rep.variants[1:]
        ]
        ax.bar(names, [0 if x != x else x for x in values], yerr=errs, capsize=4, color=colors)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, rotation=20)
    srm = "SRM FLAGGED" if rep.srm["flagged"] else f"SRM ok (p={rep.srm['p_value']:.3f})"
    fig.suptitle(f"{rep.experiment}: control {rep.control}; {srm}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_report(rep: ExperimentReport, experiment: Experiment, settings: Any = None) -> str:
    """Log the report as one MLflow run in ``online-experiments``; returns the run id."""
    import mlflow

    from training.tracking import configure_mlflow, ensure_experiment

    target = configure_mlflow(settings)
    exp_id = ensure_experiment(MLFLOW_EXPERIMENT, target)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"report-{rep.experiment}") as run:
        mlflow.set_tags(
            {"experiment": rep.experiment, "status": rep.status, "control": rep.control}
        )
        params = {
            "placements": ",".join(experiment.placements),
            "control": rep.control,
            "minimum_effect": rep.minimum_effect,
        }
        for v in experiment.variants:
            params[f"{v.name}.share"] = v.share
            params[f"{v.name}.model"] = v.model or "champion"
            params[f"{v.name}.knobs"] = v.knobs.model_dump_json(exclude_none=True)
            params[f"{v.name}.rules"] = v.rules.model_dump_json()
        mlflow.log_params(params)
        metrics: dict[str, float] = {
            "srm_p_value": rep.srm["p_value"],
            "srm_flagged": float(rep.srm["flagged"]),
        }
        for vr in rep.variants:
            metrics[f"{vr.variant}.units"] = vr.units
            metrics[f"{vr.variant}.impressions"] = vr.impressions
            for m, x in vr.metrics.items():
                if x == x:  # not NaN
                    metrics[f"{vr.variant}.{m}"] = x
            for m, d in vr.vs_control.items():
                for k in ("diff", "ci_low", "ci_high", "p_value"):
                    if d[k] == d[k]:
                        metrics[f"{vr.variant}.{m}.{k}"] = d[k]
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "report.json").write_text(json.dumps(rep.to_dict(), indent=2, default=str))
            (out / "report.txt").write_text(format_report(rep) + "\n")
            plot_report(rep, out / "report.png")
            mlflow.log_artifacts(str(out), artifact_path="report")
        return run.info.run_id


@dataclass(frozen=True)
class Winner:
    variant: str | None
    model: str | None
    reason: str


def pick_winner(rep: ExperimentReport, experiment: Experiment, metric: str) -> Winner:
    """The treatment with a significant improvement on ``metric`` (the largest if several);
    none when the split is broken (SRM) or nothing beat the control."""
    if rep.srm["flagged"]:
        return Winner(None, None, "sample ratio mismatch: the split is broken, no winner")
    best = None
    for v in rep.variants:
        d = v.vs_control.get(metric)
        if (
            d
            and d["significant"]
            and d["diff"] > 0
            and (best is None or d["diff"] > best[1]["diff"])
        ):
            best = (v.variant, d)
    if best is None:
        return Winner(
            None, None, f"no variant beat control {rep.control} significantly on {metric}"
        )
    name, d = best
    return Winner(
        name,
        experiment.variant(name).model,
        f"{name} beats {rep.control} on {metric} by {d['diff']:+.4f} "
        f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p={d['p_value']:.4g}",
    )


def promote_winner(
    winner: Winner, client: Any, *, tolerance: float, alias: str
) -> tuple[bool, str]:
    """Hand the winner's registered model version to the promotion gate."""
    from training.registry import RegistryError, promote

    if winner.variant is None:
        return False, winner.reason
    match = REGISTRY_VERSION.match(winner.model or "")
    if match is None:
        return False, (
            f"{winner.reason}; but its model ({winner.model or 'the champion itself'}) is not a "
            "registered version (models:/NAME/VERSION): nothing to promote. Knob changes go into "
            "the pipeline config (recsys train --config) and come back as a new version."
        )
    try:
        decision = promote(
            client, match["name"], match["version"], tolerance=tolerance, alias=alias
        )
    except RegistryError as exc:
        return False, f"{winner.reason}; promotion failed: {exc}"
    return decision.promoted, f"{winner.reason}\n{decision.explain()}"
