"""The cheap hot path answers exactly what the code before it answered: same candidates, same
feature matrix, same items in the same order with the same scores, sources and reasons, on a
fixed set of baskets for a bundle fitted deterministically (see ``hot_path_cases.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feature_store import load_recommender
from tests.serving.hot_path_cases import EXPECTED, answers, build_bundle

pytestmark = pytest.mark.slow  # fits a small pipeline


@pytest.fixture(scope="module")
def got(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    rec = load_recommender(build_bundle(tmp_path_factory.mktemp("hot_path") / "bundle"))
    return answers(rec)


def test_answers_identical_to_the_recorded_reference(got: list[dict]) -> None:
    expected = json.loads(Path(EXPECTED).read_text())
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.get("candidates") == e.get("candidates"), f"request {i}: candidate rows differ"
        assert g.get("features_sha256") == e.get("features_sha256"), (
            f"request {i}: feature matrix differs"
        )
        assert g["items"] == e["items"], f"request {i}: items, scores, sources or reasons differ"
        assert g["accessories"] == e["accessories"], f"request {i}: accessories differ"
        assert g["style"] == e["style"] and g["unknown"] == e["unknown"], f"request {i}"


def test_the_reference_exercises_the_pipeline(got: list[dict]) -> None:
    """The fixed baskets reach every stage: ranked items, accessories, styled baskets."""
    assert sum(len(g["items"]) for g in got) > 200
    assert any(g["accessories"] for g in got)
    assert any(g["style"][0] is not None for g in got)
    assert len({g["items"][0][0] for g in got if g["items"]}) > 10
