"""The model registry side of the lifecycle: which version is champion, and the quality gate
that decides whether another version may take its place.

A version may become champion only if the strongest simple baselines of its own run (EASE,
RP3beta, item-kNN) do not beat it, and none of its key metrics is worse than the champion's by
more than ``tolerance`` (absolute difference, metrics in [0, 1]), and only if both were
evaluated on the same time window (compared across windows the numbers mean nothing). The
metrics live on each version's training run; the window is the run tag ``eval_window``.
``force`` overrides the gate and is recorded as tags on the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_ALIAS = "champion"
DEFAULT_TOLERANCE = 0.02
# Key metrics the gate compares (each only where the champion has it: Online Retail has no
# style or accessory ground truth).
KEY_METRICS = (
    "recall_at_10",
    "ndcg_at_10",
    "accessory_recall",
    "style_accuracy",
    "style_coherence",
)
WINDOW_TAG = "eval_window"
# The strongest simple baselines (Dacrema et al. 2019), measured in the candidate's own run as
# ``baseline.<name>_alone.<metric>`` / ``baseline.<name>_reference_alone.<metric>``: a version
# that one of them beats on recall or ndcg is refused (serving the baseline would be better).
STRONG_BASELINES = ("ease", "rp3beta", "item_knn")
# combined baselines checked like the strong ones (their metric key, not "<kind>_alone")
COMBINED_BASELINES = ("repeat_then_ease",)
BASELINE_METRICS = ("recall_at_10", "ndcg_at_10")


class RegistryError(RuntimeError):
    """A registry operation cannot be done as asked (unknown model/version, no alias...)."""


@dataclass(frozen=True)
class MetricCheck:
    name: str
    candidate: float | None
    champion: float  # the reference value: the champion's, or the best baseline's
    ok: bool
    against: str = "champion"

    def describe(self, tolerance: float) -> str:
        if self.candidate is None:
            return f"{self.name}: candidate has no value ({self.against} {self.champion:.4f})"
        delta = self.candidate - self.champion
        if self.against == "champion":
            verdict = "ok" if self.ok else f"FELL beyond tolerance {tolerance:g}"
        else:
            verdict = "ok" if self.ok else "BELOW the baseline (serving it would be better)"
        return (
            f"{self.name}: {self.candidate:.4f} vs {self.against} {self.champion:.4f} "
            f"({delta:+.4f}) {verdict}"
        )


@dataclass(frozen=True)
class GateDecision:
    """Outcome of comparing ``version`` with the current champion."""

    model_name: str
    version: str
    champion_version: str | None
    passed: bool
    tolerance: float
    checks: tuple[MetricCheck, ...] = ()
    problem: str | None = None  # why no comparison was possible (window mismatch, ...)
    promoted: bool = False
    forced: bool = False
    alias: str = DEFAULT_ALIAS

    @property
    def fell(self) -> list[str]:
        """Names of the key metrics that fell beyond the tolerance."""
        return [c.name for c in self.checks if not c.ok]

    def explain(self) -> str:
        """Human explanation: what was compared, which metric fell, what happened."""
        head = f"{self.model_name} version {self.version}"
        if self.champion_version is None:
            lines = [f"{head}: no current champion, nothing to compare with."]
        elif self.champion_version == self.version:
            lines = [f"{head} is already the champion."]
        else:
            lines = [f"{head} vs champion version {self.champion_version}:"]
        if self.problem:
            lines.append(f"  cannot compare: {self.problem}")
        lines += [f"  {c.describe(self.tolerance)}" for c in self.checks]
        if self.passed:
            lines.append("  gate: passed")
        elif self.fell:
            lines.append(f"  gate: REFUSED, metric(s) fell: {', '.join(self.fell)}")
        else:
            lines.append("  gate: REFUSED")
        if self.promoted:
            how = " (forced past the gate)" if self.forced else ""
            lines.append(f"  -> alias {self.alias!r} now on version {self.version}{how}")
        else:
            lines.append(f"  -> alias {self.alias!r} unchanged (use --force to override)")
        return "\n".join(lines)


@dataclass(frozen=True)
class VersionSummary:
    version: str
    aliases: tuple[str, ...]
    created: datetime
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    window: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _version(client: Any, name: str, version: str | int) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}: {exc.message}") from exc


def current_champion(client: Any, name: str, alias: str = DEFAULT_ALIAS) -> Any | None:
    """The model version carrying ``alias``, None if no version has it (or no such model)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _run_facts(client: Any, run_id: str | None) -> tuple[dict[str, float], dict[str, str]]:
    if not run_id:
        return {}, {}
    run = client.get_run(run_id)
    return dict(run.data.metrics), dict(run.data.tags)


def evaluate_gate(
    client: Any,
    name: str,
    version: str | int,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alias: str = DEFAULT_ALIAS,
) -> GateDecision:
    """Compare ``version`` with the version holding ``alias`` (does not move anything)."""
    if tolerance < 0:
        raise RegistryError(f"tolerance must be >= 0, got {tolerance}")
    candidate = _version(client, name, version)
    champion = current_champion(client, name, alias)
    version = str(candidate.version)
    if champion is None:
        return GateDecision(name, version, None, True, tolerance, alias=alias)
    if str(champion.version) == version:
        return GateDecision(name, version, version, True, tolerance, alias=alias)
    cand_metrics, cand_tags = _run_facts(client, candidate.run_id)
    champ_metrics, champ_tags = _run_facts(client, champion.run_id)
    cand_window, champ_window = cand_tags.get(WINDOW_TAG), champ_tags.get(WINDOW_TAG)
    problem = None
    if not cand_window or not champ_window:
        problem = (
            f"evaluation window unknown (candidate: {cand_window or 'none'}, champion: "
            f"{champ_window or 'none'}); both runs must record the tag {WINDOW_TAG!r}"
        )
    elif cand_window != champ_window:
        problem = (
            f"different evaluation windows: candidate {cand_window}, champion {champ_window}. "
            "Metrics from different windows are not comparable; evaluate both on the same data"
        )
    checks = list(baseline_checks(cand_metrics))
    for metric in KEY_METRICS:
        if metric not in champ_metrics:
            continue
        ref = float(champ_metrics[metric])
        got = cand_metrics.get(metric)
        ok = got is not None and float(got) >= ref - tolerance - 1e-12
        checks.append(MetricCheck(metric, None if got is None else float(got), ref, ok))
    if problem is None and not checks:
        problem = f"the champion's run has none of the key metrics {', '.join(KEY_METRICS)}"
    passed = problem is None and all(c.ok for c in checks)
    return GateDecision(
        name,
        version,
        str(champion.version),
        passed,
        tolerance,
        tuple(checks),
        problem,
        alias=alias,
    )


def baseline_checks(metrics: dict[str, float]) -> list[MetricCheck]:
    """One check per ``BASELINE_METRICS`` metric: the model's value against the best strong
    baseline of the same run (no tolerance: the baseline is measured on the same baskets)."""
    out = []
    for metric in BASELINE_METRICS:
        got = metrics.get(metric)
        best_name, best = None, None
        for key, value in metrics.items():
            parts = key.split(".")
            if len(parts) != 3 or parts[0] != "baseline" or parts[2] != metric:
                continue
            name = parts[1]
            strong = (name.endswith("_alone") and name.startswith(STRONG_BASELINES)) or (
                name in COMBINED_BASELINES
            )
            if strong and (best is None or value > best):
                best_name, best = name, float(value)
        if best is None:
            continue
        ok = got is not None and float(got) >= best - 1e-12
        out.append(
            MetricCheck(
                metric,
                None if got is None else float(got),
                best,
                ok,
                against=f"baseline {best_name}",
            )
        )
    return out


def promote(
    client: Any,
    name: str,
    version: str | int,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    force: bool = False,
    alias: str = DEFAULT_ALIAS,
) -> GateDecision:
    """Move ``alias`` to ``version`` if the gate passes (or ``force``); tags record why."""
    decision = evaluate_gate(client, name, version, tolerance=tolerance, alias=alias)
    if not decision.passed and not force:
        return decision
    v = decision.version
    if decision.champion_version != v:
        client.set_registered_model_alias(name, alias, v)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(name, v, f"{alias}.promoted_at", now)
    if decision.champion_version and decision.champion_version != v:
        client.set_model_version_tag(name, v, f"{alias}.previous", decision.champion_version)
    forced = force and not decision.passed
    if forced:
        client.set_model_version_tag(name, v, "promotion.forced", "true")
        why = decision.problem or "; ".join(
            c.describe(tolerance) for c in decision.checks if not c.ok
        )
        client.set_model_version_tag(name, v, "promotion.forced_over", why[:4000])
    return GateDecision(
        decision.model_name,
        v,
        decision.champion_version,
        decision.passed,
        tolerance,
        decision.checks,
        decision.problem,
        promoted=True,
        forced=forced,
        alias=alias,
    )


def list_versions(client: Any, name: str) -> list[VersionSummary]:
    """All versions of ``name``, newest first, with aliases and the key metrics of their run."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(f"no registered model named {name!r}: {exc.message}") from exc
    by_version: dict[str, list[str]] = {}
    for alias, v in (getattr(model, "aliases", None) or {}).items():
        by_version.setdefault(str(v), []).append(alias)
    out = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        metrics, tags = _run_facts(client, mv.run_id)
        out.append(
            VersionSummary(
                version=str(mv.version),
                aliases=tuple(sorted(by_version.get(str(mv.version), []))),
                created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
                run_id=mv.run_id,
                metrics={m: float(metrics[m]) for m in KEY_METRICS if m in metrics},
                window=tags.get(WINDOW_TAG),
                tags=dict(mv.tags or {}),
            )
        )
    out.sort(key=lambda s: int(s.version), reverse=True)
    return out


def format_versions(name: str, versions: list[VersionSummary]) -> str:
    """A plain-text table of ``list_versions`` output."""
    header = ["version", "aliases", "created (UTC)", *KEY_METRICS, "eval window", "run"]
    rows = [header]
    for v in versions:
        forced = " (forced)" if v.tags.get("promotion.forced") == "true" else ""
        rows.append(
            [
                v.version,
                (",".join(v.aliases) or "-") + forced,
                v.created.strftime("%Y-%m-%d %H:%M:%S"),
                *[f"{v.metrics[m]:.4f}" if m in v.metrics else "-" for m in KEY_METRICS],
                v.window or "-",
                v.run_id or "-",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"registered model {name!r}: {len(versions)} version(s)"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
