"""Statistics of an A/B test, pure numpy/scipy (tested against hand-computed values).

Every metric is a ratio of per-unit sums, ``sum(num) / sum(den)`` over the randomisation
units (a user, else a session): click-through is clicks / impressions, attach rate is
attached orders / orders, revenue per session is revenue / 1. Units are independent, events
inside a unit are not, so the variance comes from the delta method on unit totals (the
standard treatment of ratio metrics, Deng et al. 2018), not from counting events as if they
were independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


@dataclass(frozen=True)
class RatioEstimate:
    value: float
    variance: float  # of the estimate (already divided by n)
    n: int
    unit_variance: float  # of one unit's linearised value: for sample sizes


def ratio(num: np.ndarray, den: np.ndarray) -> RatioEstimate:
    """``sum(num) / sum(den)`` with its delta-method variance. ``num``/``den``: (n_units,)."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    n = len(num)
    if n < 2 or den.sum() <= 0:
        return RatioEstimate(float("nan"), float("nan"), n, float("nan"))
    mx, my = num.mean(), den.mean()
    r = mx / my
    vx, vy = num.var(ddof=1), den.var(ddof=1)
    cxy = np.cov(num, den, ddof=1)[0, 1]
    unit_var = (vx - 2 * r * cxy + r * r * vy) / (my * my)
    return RatioEstimate(float(r), float(unit_var / n), n, float(unit_var))


@dataclass(frozen=True)
class Difference:
    control: float
    treatment: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    relative: float  # diff / control

    @property
    def significant(self) -> bool:
        return bool(self.p_value < 0.05)


def difference(control: RatioEstimate, treatment: RatioEstimate) -> Difference:
    """Treatment minus control, 95% CI and two-sided p-value (normal approximation)."""
    diff = treatment.value - control.value
    var = control.variance + treatment.variance
    se = float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")
    if not np.isfinite(se) or se == 0:
        p = 1.0 if diff == 0 or not np.isfinite(diff) else 0.0
        return Difference(
            control.value,
            treatment.value,
            diff,
            diff,
            diff,
            p,
            diff / control.value if control.value else float("nan"),
        )
    p = float(2 * stats.norm.sf(abs(diff) / se))
    rel = diff / control.value if control.value else float("nan")
    return Difference(
        control.value, treatment.value, diff, diff - Z95 * se, diff + Z95 * se, p, rel
    )


@dataclass(frozen=True)
class SRMCheck:
    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    flagged: bool


def srm_check(counts: dict[str, int], shares: dict[str, float], alpha: float = 0.001) -> SRMCheck:
    """Sample-ratio mismatch: chi-square goodness of fit of units per variant to the configured
    shares. Flagged below ``alpha`` (0.001, the usual threshold: an SRM means the split or the
    logging is broken, and the metrics cannot be trusted)."""
    names = list(shares)
    obs = np.array([counts.get(n, 0) for n in names], np.float64)
    total = obs.sum()
    share = np.array([shares[n] for n in names], np.float64)
    exp = total * share / share.sum()
    if total == 0:
        return SRMCheck(
            {n: 0 for n in names}, dict(zip(names, exp.tolist(), strict=True)), 0.0, 1.0, False
        )
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    p = float(stats.chi2.sf(chi2, len(names) - 1))
    return SRMCheck(
        {n: int(o) for n, o in zip(names, obs, strict=True)},
        dict(zip(names, exp.tolist(), strict=True)),
        chi2,
        p,
        p < alpha,
    )


def units_needed(
    unit_variance: float,
    baseline: float,
    relative_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Units per variant to detect a relative change of ``relative_effect`` on ``baseline``
    (two-sided test, equal variances): 2 (z_{1-a/2} + z_power)^2 s^2 / delta^2."""
    delta = abs(baseline * relative_effect)
    if not np.isfinite(unit_variance) or delta == 0:
        return float("inf")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(2 * z * z * unit_variance / (delta * delta))


def bootstrap_difference(
    control: tuple[np.ndarray, np.ndarray],
    treatment: tuple[np.ndarray, np.ndarray],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile interval of the ratio difference, resampling units (a cross-check of the
    delta method for small samples)."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    (cn, cd), (tn, td) = control, treatment
    for b in range(n_boot):
        i = rng.integers(0, len(cn), len(cn))
        j = rng.integers(0, len(tn), len(tn))
        out[b] = tn[j].sum() / max(td[j].sum(), 1e-12) - cn[i].sum() / max(cd[i].sum(), 1e-12)
    lo, hi = np.percentile(out, [2.5, 97.5])
    return float(lo), float(hi)


def false_positive_rate(p_values: Sequence[float], alpha: float = 0.05) -> float:
    return float(np.mean(np.asarray(p_values) < alpha)) if len(p_values) else float("nan")
