"""A/B statistics against values computed by hand (worked in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.experiment_stats import (
    RatioEstimate,
    bootstrap_difference,
    difference,
    false_positive_rate,
    ratio,
    srm_check,
    units_needed,
)


def test_ratio_delta_method_by_hand() -> None:
    # num 1,2,3; den 1,1,2: means 2 and 4/3, R = 1.5; var(num) = 1, var(den) = 1/3,
    # cov = ((-1)(-1/3) + 0 + (1)(2/3)) / 2 = 0.5; unit variance
    # (1 - 2*1.5*0.5 + 1.5^2/3) / (4/3)^2 = 0.25 * 9/16 = 0.140625; / n = 0.046875
    est = ratio(np.array([1, 2, 3]), np.array([1, 1, 2]))
    assert est.value == pytest.approx(1.5)
    assert est.unit_variance == pytest.approx(0.140625)
    assert est.variance == pytest.approx(0.046875)


def test_a_mean_is_a_ratio_over_ones() -> None:
    est = ratio(np.array([1.0, 2.0, 3.0]), np.ones(3))
    assert est.value == pytest.approx(2.0) and est.variance == pytest.approx(1 / 3)


def test_difference_ci_and_p_by_hand() -> None:
    # diff 0.02, se sqrt(0.0002) = 0.0141421; z = 1.41421 -> p = 0.157299;
    # CI 0.02 -/+ 1.959964 * 0.0141421 = (-0.0077180, 0.0477180)
    d = difference(RatioEstimate(0.10, 1e-4, 100, 0.01), RatioEstimate(0.12, 1e-4, 100, 0.01))
    assert d.diff == pytest.approx(0.02)
    assert d.p_value == pytest.approx(0.157299, abs=1e-6)
    assert (d.ci_low, d.ci_high) == pytest.approx((-0.0077180, 0.0477180), abs=1e-6)
    assert d.relative == pytest.approx(0.2) and not d.significant


def test_srm_by_hand() -> None:
    # 5050 / 4950 against 50/50: chi2 = 2 * 50^2 / 5000 = 1.0, p = P(chi2_1 > 1) = 0.317311
    ok = srm_check({"a": 5050, "b": 4950}, {"a": 0.5, "b": 0.5})
    assert ok.chi2 == pytest.approx(1.0) and ok.p_value == pytest.approx(0.317311, abs=1e-6)
    assert not ok.flagged
    # 5300 / 4700: chi2 = 2 * 300^2 / 5000 = 36, p = 1.97e-9: a broken split
    bad = srm_check({"a": 5300, "b": 4700}, {"a": 0.5, "b": 0.5})
    assert bad.chi2 == pytest.approx(36.0) and bad.p_value == pytest.approx(1.97e-9, rel=0.01)
    assert bad.flagged
    # unequal shares: 2000 / 8000 on 20/80 is perfect
    assert srm_check({"a": 2000, "b": 8000}, {"a": 0.2, "b": 0.8}).chi2 == pytest.approx(0.0)


def test_units_needed_by_hand() -> None:
    # conversion 10%, unit variance 0.09, detect +10% (0.01 absolute), alpha 0.05, power 0.8:
    # 2 * (1.959964 + 0.841621)^2 * 0.09 / 0.01^2 = 14,128
    assert units_needed(0.09, 0.10, 0.10) == pytest.approx(14128, abs=1)
    assert units_needed(0.09, 0.10, 0.0) == float("inf")


def test_bootstrap_agrees_with_delta_method_on_a_large_sample() -> None:
    rng = np.random.default_rng(3)
    c = (rng.poisson(1.0, 4000).astype(float), rng.integers(1, 4, 4000).astype(float))
    t = (rng.poisson(1.2, 4000).astype(float), rng.integers(1, 4, 4000).astype(float))
    d = difference(ratio(*c), ratio(*t))
    lo, hi = bootstrap_difference(c, t, n_boot=400, seed=1)
    assert lo == pytest.approx(d.ci_low, abs=0.02) and hi == pytest.approx(d.ci_high, abs=0.02)


def test_false_positive_rate() -> None:
    assert false_positive_rate([0.01, 0.2, 0.5, 0.04]) == 0.5


def test_a_a_false_positive_rate_is_calibrated() -> None:
    """2,000 simulated A/A tests on independent units (135 per arm, as in one simulated A/A
    run): a proportion, a heavy-tailed revenue and a clicks/items ratio each reject at about 5%."""
    rng = np.random.default_rng(0)
    n, reps = 135, 2000
    rejections = {"proportion": 0, "revenue": 0, "ratio": 0}
    ones = np.ones(n)
    for _ in range(reps):
        bought = (rng.random(2 * n) < 0.7).astype(float)
        revenue = np.where(rng.random(2 * n) < 0.5, rng.lognormal(4, 1, 2 * n), 0.0)
        shown = rng.integers(10, 30, 2 * n).astype(float)
        clicks = rng.binomial(shown.astype(int), 0.15).astype(float)
        for key, num, den in (
            ("proportion", bought, None),
            ("revenue", revenue, None),
            ("ratio", clicks, shown),
        ):
            a_den = ones if den is None else den[:n]
            b_den = ones if den is None else den[n:]
            d = difference(ratio(num[:n], a_den), ratio(num[n:], b_den))
            rejections[key] += d.p_value < 0.05
    for key, count in rejections.items():
        assert 0.035 <= count / reps <= 0.065, (key, count / reps)
