"""An experiment's report: impressions and events joined by the attribution rules, reduced
to one row per randomisation unit, then compared variant by variant to the control.

Metrics (each a ratio of unit sums, see ``recsys.experiment_stats``):

* ``ctr``: named clicks / items shown (items and accessories of every answer);
* ``cart_rate``: attributed add-to-carts / items shown;
* ``attach_rate``: units that ordered and bought at least one attributed recommended item
  (an item or accessory shown on the cart or checkout page) / units that ordered
  ("accessory attach rate at checkout");
* ``revenue_per_session``: attributed revenue / units (every unit that saw an answer);
* ``aov``: revenue of all purchases / orders (distinct order ids, a unit without one = 1 order).

Only events of units that saw the experiment count: from their first impression on, and events
naming one of its answers whatever their timestamp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from feature_store.attribution import attribute, shopper
from recsys.experiment import Experiment
from recsys.experiment_stats import (
    Difference,
    SRMCheck,
    difference,
    ratio,
    srm_check,
    units_needed,
)

METRICS: dict[str, tuple[str, str, str]] = {
    # name: (numerator column, denominator column, label)
    "ctr": ("clicks", "shown", "click-through (clicks / items shown)"),
    "cart_rate": ("carts", "shown", "add-to-cart from recommendations / items shown"),
    "attach_rate": ("attached", "ordered", "accessory attach rate at checkout"),
    "revenue_per_session": ("attributed_revenue", "one", "attributed revenue per session"),
    "aov": ("revenue", "orders", "average order value"),
}


@dataclass
class VariantReport:
    variant: str
    units: int
    impressions: int
    metrics: dict[str, float]
    vs_control: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ExperimentReport:
    experiment: str
    control: str
    status: str
    variants: list[VariantReport]
    srm: dict[str, Any]
    units_needed: dict[str, float]
    minimum_effect: float
    unattributed: dict[str, int]
    generated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unit_table(
    experiment: Experiment,
    impressions: pd.DataFrame,
    events: pd.DataFrame,
    context: pd.DataFrame,
    *,
    window_hours: float,
    prices: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per unit with variant and the metric columns, the attributed events)."""
    imp = impressions[impressions["experiment"] == experiment.name].copy()
    imp["unit"] = shopper(imp["user_id"], imp["session_id"])
    imp = imp[imp["unit"].notna()]
    # a unit is in the variant of its first impression (assignment is stable; this only
    # guards against a unit seen by a stopped and a restarted run of the same name)
    first = (
        imp.sort_values("ts").groupby("unit").agg(variant=("variant", "first"), since=("ts", "min"))
    )
    imp["shown"] = imp["items"].map(len)
    units = first.assign(
        impressions=imp.groupby("unit").size(), shown=imp.groupby("unit")["shown"].sum()
    )
    att = attribute(events, context, impressions, window_hours=window_hours, prices=prices)
    att = att[att["shopper"].isin(units.index)]
    # events from the unit's first impression on; a named event always counts (the client's
    # clock may lag the server's)
    att = att[(att["rule"] == "named") | (att["ts"] >= att["shopper"].map(units["since"]))]
    mine = att["experiment"] == experiment.name
    g = att.groupby("shopper")
    units["clicks"] = att[mine & (att["type"] == "view")].groupby("shopper").size()
    units["carts"] = att[mine & (att["type"] == "add_to_cart")].groupby("shopper").size()
    buys = att[att["type"] == "purchase"]
    units["revenue"] = buys.groupby("shopper")["revenue"].sum()
    units["attributed_revenue"] = buys[mine[buys.index]].groupby("shopper")["revenue"].sum()
    order_key = buys["order_id"].fillna("_")
    units["orders"] = order_key.groupby(buys["shopper"]).nunique()
    units["ordered"] = (units["orders"].fillna(0) > 0).astype(float)
    at_checkout = buys[mine[buys.index] & buys["placement"].isin(["cart", "checkout"])]
    units["attached"] = (at_checkout.groupby("shopper").size() > 0).astype(float)
    units = units.fillna(0.0)
    units["one"] = 1.0
    del g
    return units, att


def report(
    experiment: Experiment,
    impressions: pd.DataFrame,
    events: pd.DataFrame,
    context: pd.DataFrame,
    *,
    window_hours: float,
    prices: dict[str, float] | None = None,
    minimum_effect: float = 0.05,
    now: datetime | None = None,
) -> ExperimentReport:
    """The full report (see module doc); ``minimum_effect`` is the relative change the
    "units still needed" figure is for."""
    units, att = unit_table(
        experiment, impressions, events, context, window_hours=window_hours, prices=prices
    )
    control = experiment.control_variant
    estimates = {}
    variants = []
    for v in experiment.variants:
        u = units[units["variant"] == v.name]
        est = {m: ratio(u[n].to_numpy(), u[d].to_numpy()) for m, (n, d, _) in METRICS.items()}
        estimates[v.name] = est
        variants.append(
            VariantReport(
                v.name, len(u), int(u["impressions"].sum()), {m: e.value for m, e in est.items()}
            )
        )
    needed: dict[str, float] = {}
    for vr in variants:
        if vr.variant == control:
            continue
        for m in METRICS:
            d: Difference = difference(estimates[control][m], estimates[vr.variant][m])
            vr.vs_control[m] = {k: float(x) for k, x in asdict(d).items()} | {
                "significant": float(d.significant)
            }
    for m in METRICS:
        c = estimates[control][m]
        n = units_needed(c.unit_variance, c.value, minimum_effect)
        have = min(vr.units for vr in variants)
        needed[m] = float(max(0.0, n - have)) if np.isfinite(n) else float("inf")
    srm: SRMCheck = srm_check(
        {vr.variant: vr.units for vr in variants}, {v.name: v.share for v in experiment.variants}
    )
    reasons = att.loc[
        att["reason"].notna() & att["type"].isin(["view", "add_to_cart", "purchase"]), "reason"
    ]
    return ExperimentReport(
        experiment=experiment.name,
        control=control,
        status=experiment.status,
        variants=variants,
        srm=asdict(srm),
        units_needed=needed,
        minimum_effect=minimum_effect,
        unattributed={str(k): int(v) for k, v in reasons.value_counts().items()},
        generated_at=(now or pd.Timestamp.now(tz="UTC").to_pydatetime()).isoformat(),
    )


def format_report(rep: ExperimentReport) -> str:
    """Plain text for the CLI."""
    lines = [f"experiment {rep.experiment} ({rep.status}); control: {rep.control}"]
    header = f"{'variant':<20}{'units':>8}{'impr.':>9}" + "".join(f"{m:>22}" for m in METRICS)
    lines.append(header)
    for vr in rep.variants:
        cells = "".join(f"{vr.metrics[m]:>22.4f}" for m in METRICS)
        lines.append(f"{vr.variant:<20}{vr.units:>8}{vr.impressions:>9}{cells}")
        for m, d in vr.vs_control.items():
            mark = "significant" if d["significant"] else "not significant"
            lines.append(
                f"  {m:<20} diff {d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] "
                f"({d['relative']:+.1%}) p={d['p_value']:.4f} {mark}"
            )
    srm = rep.srm
    lines.append(
        f"SRM check: chi2={srm['chi2']:.2f} p={srm['p_value']:.4f} "
        + ("FLAGGED: the split is broken, do not trust these numbers" if srm["flagged"] else "ok")
    )
    need = ", ".join(f"{m}: {n:,.0f}" for m, n in rep.units_needed.items())
    lines.append(f"units per variant still needed for a {rep.minimum_effect:.0%} effect: {need}")
    if rep.unattributed:
        lines.append(
            "unattributed events: " + ", ".join(f"{k} {v}" for k, v in rep.unattributed.items())
        )
    return "\n".join(lines)
