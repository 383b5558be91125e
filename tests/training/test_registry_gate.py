"""The promotion gate on a real (embedded) MLflow registry.

The versions here are registered from runs whose metrics the test logs itself: these tests
check the gate's logic, not model quality (the end-to-end test trains real models)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.cli import main
from recsys.settings import Settings
from training.registry import (
    current_champion,
    evaluate_gate,
    format_versions,
    list_versions,
    promote,
)
from training.tracking import client_for, configure_mlflow, ensure_experiment

WINDOW = "2024-05-01T00:00:00+00:00..2024-06-01T00:00:00+00:00"
GOOD = {"recall_at_10": 0.30, "ndcg_at_10": 0.20, "accessory_recall": 0.50, "style_accuracy": 0.80}


@pytest.fixture()
def registry_client(mlflow_env: Path):
    target = configure_mlflow(Settings())
    client = client_for(target)
    exp_id = ensure_experiment("gate-tests", target)
    name = os.environ["RECSYS_MODEL_NAME"]

    def add_version(metrics: dict[str, float], window: str | None = WINDOW) -> str:
        run = client.create_run(exp_id)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        if window:
            client.set_tag(run.info.run_id, "eval_window", window)
        client.set_terminated(run.info.run_id)
        try:
            client.get_registered_model(name)
        except Exception:
            client.create_registered_model(name)
        mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        return str(mv.version)

    return client, name, add_version


def test_first_version_passes_without_a_champion(registry_client) -> None:
    client, name, add = registry_client
    v1 = add(GOOD)
    decision = promote(client, name, v1)
    assert decision.promoted and decision.champion_version is None
    assert str(current_champion(client, name).version) == v1


def test_worse_model_is_refused_and_the_fallen_metric_named(registry_client) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    worse = add({**GOOD, "ndcg_at_10": 0.15})
    decision = promote(client, name, worse, tolerance=0.02)
    assert not decision.promoted and not decision.passed
    assert decision.fell == ["ndcg_at_10"]
    text = decision.explain()
    assert "ndcg_at_10: 0.1500 vs champion 0.2000 (-0.0500) FELL" in text
    assert "REFUSED" in text
    assert str(current_champion(client, name).version) == "1"


def test_drop_within_tolerance_passes(registry_client) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    close = add({**GOOD, "recall_at_10": 0.285, "style_accuracy": 0.85})
    decision = promote(client, name, close, tolerance=0.02)
    assert decision.passed and decision.promoted
    assert client.get_model_version(name, close).tags["champion.previous"] == "1"


def test_force_promotes_and_is_recorded_as_tags(registry_client) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    worse = add({**GOOD, "recall_at_10": 0.10})
    decision = promote(client, name, worse, force=True)
    assert decision.promoted and decision.forced and not decision.passed
    tags = client.get_model_version(name, worse).tags
    assert tags["promotion.forced"] == "true"
    assert "recall_at_10" in tags["promotion.forced_over"]
    assert str(current_champion(client, name).version) == worse


def test_different_evaluation_windows_are_not_compared(registry_client) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    other = add({k: v + 0.1 for k, v in GOOD.items()}, window="2011-08-01..2011-09-01")
    decision = evaluate_gate(client, name, other)
    assert not decision.passed
    assert "different evaluation windows" in decision.problem
    assert "2011-08-01..2011-09-01" in decision.problem


def test_metrics_the_champion_lacks_are_not_required(registry_client) -> None:
    """Online Retail has no styles/accessories: only Recall and NDCG are compared."""
    client, name, add = registry_client
    base = {"recall_at_10": 0.2, "ndcg_at_10": 0.1}
    promote(client, name, add(base))
    decision = evaluate_gate(client, name, add({"recall_at_10": 0.21, "ndcg_at_10": 0.1}))
    assert decision.passed
    assert [c.name for c in decision.checks] == ["recall_at_10", "ndcg_at_10"]


def test_candidate_missing_a_key_metric_is_refused(registry_client) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    partial = {k: v for k, v in GOOD.items() if k != "accessory_recall"}
    decision = evaluate_gate(client, name, add(partial))
    assert decision.fell == ["accessory_recall"]
    assert "candidate has no value" in decision.explain()


def test_cli_promote_refuses_then_force_and_models_lists(registry_client, capsys) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    worse = add({**GOOD, "recall_at_10": 0.2})
    assert main(["promote", "--version", worse]) == 1
    out = capsys.readouterr().out
    assert "recall_at_10" in out and "REFUSED" in out
    assert main(["promote", "--version", worse, "--force"]) == 0
    assert "forced past the gate" in capsys.readouterr().out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "champion (forced)" in listing and WINDOW in listing
    versions = list_versions(client, name)
    assert [v.version for v in versions] == [worse, "1"]
    assert format_versions(name, versions).count("\n") == 3


def test_cli_promote_unknown_version_is_a_clear_error(registry_client, capsys) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    assert main(["promote", "--version", "99"]) == 2
    assert f"model {name!r} has no version 99" in capsys.readouterr().err


def test_a_version_that_ease_beats_is_refused_even_when_better_than_the_champion(
    registry_client,
) -> None:
    client, name, add = registry_client
    promote(client, name, add(GOOD))
    # better than the champion on every key metric, but EASE alone on the same baskets wins
    better = {k: v + 0.05 for k, v in GOOD.items()}
    v2 = add(
        {
            **better,
            "baseline.ease_alone.recall_at_10": 0.40,
            "baseline.ease_alone.ndcg_at_10": 0.10,
            "baseline.item_knn_alone.recall_at_10": 0.33,
            "baseline.popularity.recall_at_10": 0.9,
        }
    )
    decision = evaluate_gate(client, name, v2)
    assert not decision.passed
    failed = [c for c in decision.checks if not c.ok]
    assert [c.name for c in failed] == ["recall_at_10"] and failed[
        0
    ].against == "baseline ease_alone"
    assert "BELOW the baseline" in failed[0].describe(0.02)
    # popularity is not a strong baseline; once the model beats EASE it passes
    v3 = add(
        {
            **better,
            "baseline.ease_alone.recall_at_10": 0.34,
            "baseline.rp3beta_reference_alone.ndcg_at_10": 0.24,
            "baseline.popularity.recall_at_10": 0.9,
        }
    )
    decision = evaluate_gate(client, name, v3)
    assert decision.passed, [c.describe(0.02) for c in decision.checks]
    assert {c.against for c in decision.checks} >= {
        "baseline ease_alone",
        "baseline rp3beta_reference_alone",
    }


def test_the_shopper_history_baseline_is_a_strong_one() -> None:
    """A model that only beats EASE because it knows the shopper must also beat the simplest
    use of that knowledge: the shopper's earlier items, then EASE."""
    from training.registry import baseline_checks

    metrics = {
        "recall_at_10": 0.30,
        "ndcg_at_10": 0.30,
        "baseline.ease_alone.recall_at_10": 0.25,
        "baseline.ease_alone.ndcg_at_10": 0.25,
        "baseline.repeat_then_ease.recall_at_10": 0.31,
        "baseline.repeat_then_ease.ndcg_at_10": 0.28,
    }
    checks = {c.name: c for c in baseline_checks(metrics)}
    assert not checks["recall_at_10"].ok
    assert checks["recall_at_10"].against == "baseline repeat_then_ease"
    assert checks["ndcg_at_10"].ok and checks["ndcg_at_10"].against == "baseline repeat_then_ease"
