"""End to end on the embedded store: `recsys train` logs one run and registers a pyfunc model;
the same data, config and seed reproduce the metrics; `--promote` passes the gate for an
equal model and is refused for a genuinely weaker pipeline; `--force` overrides; the champion
loads with `mlflow.pyfunc.load_model` and scores baskets; `recsys recommend` scores a file
from the registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import main

pytestmark = pytest.mark.slow

KEY = ("recall_at_10", "ndcg_at_10")


def _train(files: dict[str, Path], capsys, *extra: str, config: str = "config") -> tuple[int, str]:
    code = main(
        [
            "train",
            "--catalog",
            str(files["catalog"]),
            "--interactions",
            str(files["interactions"]),
            "--config",
            str(files[config]),
            "--seed",
            "11",
            "--experiment",
            "lifecycle-test",
            "--no-progress",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, out


def _model_metrics(run) -> dict[str, float]:
    return {
        k: v
        for k, v in run.data.metrics.items()
        if not k.startswith("time.") and k != "peak_memory_mb"
    }


def test_train_register_reproduce_gate_and_score(
    tiny_world_files, mlflow_env: Path, capsys, tmp_path: Path
) -> None:
    import mlflow

    from training.tracking import client_for, configure_mlflow

    name = os.environ["RECSYS_MODEL_NAME"]
    code, out = _train(tiny_world_files, capsys)
    assert code == 0
    assert out.strip().splitlines()[-1] == f"models:/{name}/1"

    client = client_for(configure_mlflow())
    v1 = client.get_model_version(name, "1")
    run = client.get_run(v1.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    # provenance: data fingerprint, code version, seed, evaluation window, config
    assert len(tags["data_fingerprint"]) == 64
    assert tags["seed"] == "11" and params["seed"] == "11"
    assert "code.package_version" in tags and "code.git_sha" in tags
    assert ".." in tags["eval_window"]
    assert "--seed 11" in tags["retrain_command"]
    assert any(p.startswith("config.ranker.") for p in params)
    # metrics: the model's, each baseline's next to them, stage times, peak memory
    for key in KEY:
        assert 0.0 <= metrics[key] <= 1.0
        assert any(m.startswith("baseline.") and m.endswith(key) for m in metrics)
    # sample world: ground truth next to the interactions adds style and accessory figures
    assert 0.0 <= metrics["style_accuracy"] <= 1.0 and metrics["style_eval_orders"] > 0
    assert "accessory_recall" in metrics
    assert metrics["peak_memory_mb"] > 0
    assert metrics["time.total_s"] > 0
    # artifacts: report, feature importance, data profile, config (the model lives apart)
    listed = {
        a.path
        for folder in ("evaluation", "feature_importance", "data_profile", "config")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert "evaluation/report.md" in listed
    assert "feature_importance/feature_importance.csv" in listed
    assert "data_profile/data_profile.json" in listed
    assert "config/pipeline.yaml" in listed
    # the first version is champion
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # reproducibility: same data + config + seed => same metrics; equal model passes the gate
    code, out = _train(tiny_world_files, capsys, "--promote")
    assert code == 0, out
    run2 = client.get_run(client.get_model_version(name, "2").run_id)
    assert _model_metrics(run2) == pytest.approx(_model_metrics(run), abs=1e-9)
    assert run2.data.tags["data_fingerprint"] == tags["data_fingerprint"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"

    # a genuinely weaker pipeline (popular candidates only) is refused, with the reason
    code, out = _train(tiny_world_files, capsys, "--promote", config="weak_config")
    assert code == 0  # registered; the refusal is reported
    assert out.strip().splitlines()[-1] == f"models:/{name}/3"
    assert "REFUSED" in out and "FELL" in out
    weak = client.get_run(client.get_model_version(name, "3").run_id).data.metrics
    assert weak["recall_at_10"] < run2.data.metrics["recall_at_10"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"

    # pyfunc round trip through the registry alias
    catalog = pd.read_parquet(tiny_world_files["catalog"])
    skus = catalog["sku"].tolist()
    baskets = pd.DataFrame(
        {
            "basket_id": ["a", "b"],
            "skus": [skus[:2], [skus[5], "NOT-A-SKU"]],
            "user_id": [None, None],
            "page": ["cart", "checkout"],
            "k": [5, 3],
        }
    )
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    pred = model.predict(baskets)
    assert list(pred["basket_id"]) == ["a", "b"]
    items_a = pred.loc[0, "items"]  # structured: a list of dicts, not a JSON string
    assert 0 < len(items_a) <= 5
    assert {i["sku"] for i in items_a} <= set(skus) - set(skus[:2])
    assert all(isinstance(i["score"], float) and isinstance(i["sources"], list) for i in items_a)
    assert list(pred.loc[1, "unknown_skus"]) == ["NOT-A-SKU"]
    style = pred.loc[0, "style"]
    assert isinstance(style, dict) and isinstance(style["distribution"], dict)
    assert isinstance(pred.loc[1, "accessories"], list)
    # the logged signature describes those objects, field by field
    outputs = {c.name: c.type for c in model.metadata.get_output_schema().inputs}
    assert {p.name for p in outputs["items"].dtype.properties} == set(items_a[0])
    assert {p.name for p in outputs["style"].properties} == set(style)
    assert {p.name for p in outputs["accessories"].dtype.properties} == {"sku", "rule_id", "reason"}

    # batch scoring straight from the registry
    src = tmp_path / "baskets.jsonl"
    src.write_text(
        json.dumps({"basket_id": "x", "skus": skus[:3], "user_id": None, "page": "cart"}) + "\n"
    )
    dst = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "recommend",
                "--model",
                f"models:/{name}@champion",
                "--baskets",
                str(src),
                "--k",
                "4",
                "--out",
                str(dst),
            ]
        )
        == 0
    )
    line = json.loads(dst.read_text().splitlines()[0])
    assert line["basket_id"] == "x" and len(line["items"]) == 4

    # --force moves the alias past the gate and says so on the version
    capsys.readouterr()
    assert main(["promote", "--version", "3"]) == 1
    assert main(["promote", "--version", "3", "--force"]) == 0
    assert client.get_model_version(name, "3").tags["promotion.forced"] == "true"
    assert main(["models"]) == 0
    assert "champion (forced)" in capsys.readouterr().out


def test_train_on_a_catalog_without_categories_or_styles(
    tiny_world_files, mlflow_env: Path, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online Retail has neither: training does what the data allows and says so in metrics.
    Another dataset than the demo's registers under its own name, derived from its folder."""
    import uuid

    from training.tracking import client_for, configure_mlflow

    monkeypatch.delenv("RECSYS_MODEL_NAME")
    cat = pd.read_parquet(tiny_world_files["catalog"])
    cat["category"] = None
    cat["styles"] = [[] for _ in range(len(cat))]
    dataset = f"bare-{uuid.uuid4().hex[:8]}"
    bare = tmp_path / dataset
    bare.mkdir()
    cat.to_parquet(bare / "catalog.parquet")
    pd.read_parquet(tiny_world_files["interactions"]).to_parquet(bare / "interactions.parquet")
    code = main(
        [
            "train",
            "--catalog",
            str(bare / "catalog.parquet"),
            "--interactions",
            str(bare / "interactions.parquet"),
            "--config",
            str(tiny_world_files["config"]),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr()
    out = printed.out
    assert code == 0, out
    name = f"home-xsell-{dataset}"
    assert out.strip().splitlines()[-1] == f"models:/{name}/1"
    assert f"registered model: {name} (derived from the catalog's folder)" in out
    assert f"RECSYS_MODEL_NAME={name}" in printed.err
    client = client_for(configure_mlflow())
    run = client.get_run(client.get_model_version(name, "1").run_id)
    assert run.info.run_name.startswith(f"{dataset}-seed7-")
    metrics = run.data.metrics
    assert 0.0 <= metrics["recall_at_10"] <= 1.0
    assert "style_accuracy" not in metrics and "accessory_recall" not in metrics
    assert "cross_category_share" not in metrics
