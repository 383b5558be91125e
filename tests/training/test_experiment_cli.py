"""``recsys experiment ...`` end to end on the deployment stores and a real embedded MLflow:
create / start / list / stop, the report (text, JSON, MLflow run with plot), and --promote
through the existing promotion gate."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from feature_store.attribution import EventContext, EventContextLog
from feature_store.event_log import Event, EventLog
from feature_store.experiment_store import ExperimentStore
from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from recsys.settings import Settings
from training.experiment_cli import main
from training.registry import current_champion
from training.tracking import client_for, configure_mlflow, ensure_experiment

WINDOW = "2024-05-01T00:00:00+00:00..2024-06-01T00:00:00+00:00"
GOOD = {"recall_at_10": 0.30, "ndcg_at_10": 0.20, "accessory_recall": 0.50, "style_accuracy": 0.80}
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _own_database(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Experiments, impressions and events of this test only (the MLflow store is shared)."""
    monkeypatch.setenv("RECSYS_DATABASE_URL", f"sqlite:///{tmp_path / 'recsys.db'}")


def _register(client, name: str, metrics: dict[str, float]) -> str:  # noqa: ANN001
    exp_id = ensure_experiment("gate-tests", configure_mlflow(Settings()))
    run = client.create_run(exp_id)
    for k, v in metrics.items():
        client.log_metric(run.info.run_id, k, v)
    client.set_tag(run.info.run_id, "eval_window", WINDOW)
    client.set_terminated(run.info.run_id)
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001
        client.create_registered_model(name)
    return str(
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id).version
    )


def _traffic(name: str, url: str, p_buy: dict[str, float], units: int = 400) -> None:
    """Hand-made traffic: each unit sees one cart answer; buys the first item with p_buy."""
    rng = np.random.default_rng(11)
    imps, events, ctx = [], [], []
    for i in range(units * 2):
        variant = "control" if i % 2 == 0 else "challenger"
        sid, rid = f"{name}-s{i}", f"{name}-r{i}"
        imps.append(
            Impression(
                rid,
                T0,
                "cart",
                None,
                sid,
                name,
                variant,
                "m",
                "1",
                (ShownItem("A", "items", 1), ShownItem("B", "items", 2)),
            )
        )
        if rng.random() < p_buy[variant]:
            eid = f"{name}-e{i}"
            events.append(Event(eid, "purchase", "A", T0 + timedelta(minutes=5), 1, session_id=sid))
            ctx.append(EventContext(eid, rid, 1, 10.0))
    ImpressionLog(url).append(imps)
    log = EventLog(url)
    log.append(events)
    EventContextLog(log.engine).append(ctx)


def _yaml(tmp_path: Path, name: str, model: str | None) -> Path:
    path = tmp_path / f"{name}.yaml"
    model_line = f"model: {model}" if model else "model: null"
    path.write_text(
        f"name: {name}\nplacements: [cart]\nvariants:\n"
        "  - {name: control, share: 0.5}\n"
        f"  - name: challenger\n    share: 0.5\n    {model_line}\n"
    )
    return path


def test_create_start_list_stop(mlflow_env, tmp_path, capsys) -> None:  # noqa: ANN001
    name = f"cli-{uuid.uuid4().hex[:6]}"
    assert main(["create", str(_yaml(tmp_path, name, None))]) == 0
    assert main(["create", str(_yaml(tmp_path, name, None))]) == 2  # already exists
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nplacements: [cart]\nvariants: [{name: a, share: 0.3}, {name: b, share: 0.3}]\n"
    )
    assert main(["create", str(bad)]) == 2
    assert "add up to 1" in capsys.readouterr().err
    assert main(["start", name]) == 0
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert name in listed and "running" in listed
    assert main(["stop", name]) == 0
    assert main(["stop", name]) == 2
    store = ExperimentStore(Settings().resolved_database_url)
    assert [h.action for h in store.history(name)] == ["stop", "start", "create"]


def test_report_logs_to_mlflow_and_promote_passes_the_gate(mlflow_env, tmp_path, capsys) -> None:  # noqa: ANN001
    settings = Settings()
    client = client_for(configure_mlflow(settings))
    model_name = os.environ["RECSYS_MODEL_NAME"]
    v1 = _register(client, model_name, GOOD)
    client.set_registered_model_alias(model_name, "champion", v1)
    v2 = _register(client, model_name, {k: v + 0.01 for k, v in GOOD.items()})
    name = f"promo-{uuid.uuid4().hex[:6]}"
    assert main(["create", str(_yaml(tmp_path, name, f"models:/{model_name}/{v2}"))]) == 0
    # these registry versions have no artifacts: start without the memory check (tested elsewhere)
    ExperimentStore(settings.resolved_database_url).start(name, "test")
    _traffic(name, settings.resolved_database_url, {"control": 0.10, "challenger": 0.30})
    capsys.readouterr()

    assert main(["report", name, "--json", "--no-mlflow"]) == 0
    rep = json.loads(capsys.readouterr().out)
    d = rep["variants"][1]["vs_control"]["revenue_per_session"]
    assert d["significant"] and d["diff"] > 0 and not rep["srm"]["flagged"]

    assert main(["report", name, "--promote"]) == 0
    out = capsys.readouterr()
    assert "challenger beats control on revenue_per_session" in out.out
    assert str(current_champion(client, model_name).version) == v2
    run_id = out.err.split("run ")[1].split()[0]
    run = client.get_run(run_id)
    assert run.data.metrics["challenger.revenue_per_session.diff"] == pytest.approx(d["diff"])
    assert run.data.tags["experiment"] == name
    assert {a.path for a in client.list_artifacts(run_id, "report")} >= {
        "report/report.png",
        "report/report.json",
        "report/report.txt",
    }


def test_promote_is_refused_by_the_gate_for_a_worse_offline_model(
    mlflow_env, tmp_path, capsys
) -> None:  # noqa: ANN001
    settings = Settings()
    client = client_for(configure_mlflow(settings))
    model_name = os.environ["RECSYS_MODEL_NAME"]
    v1 = _register(client, model_name, GOOD)
    client.set_registered_model_alias(model_name, "champion", v1)
    v2 = _register(client, model_name, {**GOOD, "recall_at_10": 0.10})
    name = f"refuse-{uuid.uuid4().hex[:6]}"
    main(["create", str(_yaml(tmp_path, name, f"models:/{model_name}/{v2}"))])
    ExperimentStore(settings.resolved_database_url).start(name, "test")
    _traffic(name, settings.resolved_database_url, {"control": 0.10, "challenger": 0.30})
    assert main(["report", name, "--promote", "--no-mlflow"]) == 1
    assert "recall_at_10" in capsys.readouterr().out
    assert str(current_champion(client, model_name).version) == v1


def test_no_winner_no_promotion(mlflow_env, tmp_path, capsys) -> None:  # noqa: ANN001
    name = f"aa-{uuid.uuid4().hex[:6]}"
    main(["create", str(_yaml(tmp_path, name, None))])
    ExperimentStore(Settings().resolved_database_url).start(name, "test")
    _traffic(name, Settings().resolved_database_url, {"control": 0.2, "challenger": 0.2})
    assert main(["report", name, "--promote", "--no-mlflow"]) == 1
    assert "no variant beat control" in capsys.readouterr().out
