"""Assignment: a pure, stable function of (experiment, unit id)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from pydantic import ValidationError

from recsys.experiment import Experiment, Variant, assign, bucket

SCRIPT = """
import hashlib, sys
from recsys.experiment import Experiment, assign
exp = Experiment.model_validate_json(sys.argv[1])
names = "".join("AB"[exp.variants.index(assign(exp, f"user-{i}"))] for i in range(100_000))
print(hashlib.sha256(names.encode()).hexdigest(), names.count("A"))
"""


def _exp(name: str = "ab-test", a: float = 0.5) -> Experiment:
    return Experiment(
        name=name,
        placements=["checkout"],
        variants=[
            Variant(name="control", share=a),
            Variant(name="treatment", share=round(1 - a, 6)),
        ],
    )


def test_100k_ids_split_50_50_within_1_percent() -> None:
    exp = _exp()
    counts = Counter(assign(exp, f"user-{i}").name for i in range(100_000))
    assert abs(counts["control"] / 100_000 - 0.5) <= 0.01, counts
    assert abs(counts["treatment"] / 100_000 - 0.5) <= 0.01, counts


def test_shares_are_honoured_and_experiments_are_independent() -> None:
    counts = Counter(assign(_exp(a=0.2), f"s-{i}").name for i in range(50_000))
    assert abs(counts["control"] / 50_000 - 0.2) <= 0.01
    a = [assign(_exp("one"), f"s-{i}").name for i in range(20_000)]
    b = [assign(_exp("two"), f"s-{i}").name for i in range(20_000)]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / 20_000
    assert 0.47 < same < 0.53  # another experiment re-shuffles: no carry-over between tests


@pytest.mark.slow  # spawns interpreter processes
def test_identical_in_two_separate_processes() -> None:
    """Two interpreters with different hash seeds assign all 100,000 ids identically."""
    exp = _exp()
    outs = []
    for seed in ("1", "2"):
        r = subprocess.run(
            [sys.executable, "-c", SCRIPT, exp.model_dump_json()],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "", **_pythonpath()},
        )
        outs.append(r.stdout.split())
    here = "".join("AB"[exp.variants.index(assign(exp, f"user-{i}"))] for i in range(100_000))
    import hashlib

    assert outs[0] == outs[1] == [hashlib.sha256(here.encode()).hexdigest(), str(here.count("A"))]


def _pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")}


def test_bucket_is_uniform_enough_and_in_range() -> None:
    xs = [bucket("e", str(i)) for i in range(10_000)]
    assert min(xs) >= 0.0 and max(xs) < 1.0
    assert 0.49 < sum(xs) / len(xs) < 0.51


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}], "add up to 1"),
        ([{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}], "unique"),
        ([{"name": "a", "share": 1.0}], "at least 2"),
        (
            [
                {"name": "a", "share": 0.5},
                {"name": "b", "share": 0.5, "knobs": {"generators": ["co_purchase"]}},
            ],
            "ranker: false",
        ),
        (
            [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "rules": {"mode": "tags"}}],
            "tags are needed",
        ),
    ],
)
def test_invalid_experiments_say_what_is_wrong(variants, message) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match=message):
        Experiment.model_validate({"name": "x", "placements": ["cart"], "variants": variants})
