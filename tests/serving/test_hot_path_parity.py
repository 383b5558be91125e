"""The cheap hot path answers exactly what the code before it answered: same candidates, same
feature matrix, same items in the same order with the same scores, sources and reasons, on a
fixed set of baskets for a bundle fitted deterministically (see ``hot_path_cases.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feature_store import load_recommender
from tests.serving.hot_path_cases import EXPECTED, answers, build_bundle

pytestmark = pytest.mark.slow  # fits a small pipeline

# Floats are compared to 1e-6: the fit differs in the 8th digit between CPUs (BLAS kernels),
# while any change of the code's answers moves scores and features by far more.
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def got(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    rec = load_recommender(build_bundle(tmp_path_factory.mktemp("hot_path") / "bundle"))
    return answers(rec)


def test_answers_identical_to_the_recorded_reference(got: list[dict]) -> None:
    expected = json.loads(Path(EXPECTED).read_text())
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.get("candidates") == e.get("candidates"), f"request {i}: candidate rows differ"
        assert g.get("features_shape") == e.get("features_shape"), f"request {i}: feature shape"
        if "features_fingerprint" in e:
            np.testing.assert_allclose(
                g["features_fingerprint"],
                e["features_fingerprint"],
                rtol=TOLERANCE,
                atol=TOLERANCE,
                err_msg=f"request {i}: feature matrix differs",
            )
        assert [x[:1] + x[2:] for x in g["items"]] == [x[:1] + x[2:] for x in e["items"]], (
            f"request {i}: items, sources or reasons differ"
        )
        np.testing.assert_allclose(
            [x[1] for x in g["items"]], [x[1] for x in e["items"]], rtol=TOLERANCE, atol=TOLERANCE
        )
        assert g["accessories"] == e["accessories"], f"request {i}: accessories differ"
        assert g["style"][0] == e["style"][0] and g["unknown"] == e["unknown"], f"request {i}"
        assert g["style"][1] == pytest.approx(e["style"][1], rel=TOLERANCE), f"request {i}: style"


def test_the_reference_exercises_the_pipeline(got: list[dict]) -> None:
    """The fixed baskets reach every stage: ranked items, accessories, styled baskets."""
    assert sum(len(g["items"]) for g in got) > 200
    assert any(g["accessories"] for g in got)
    assert any(g["style"][0] is not None for g in got)
    assert len({g["items"][0][0] for g in got if g["items"]}) > 10
