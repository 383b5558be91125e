"""``recsys tune``: the search space and config paths, the validation-only data, and one end-to-end
run through the CLI on a small sample world against a local SQLite MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.config import parse_pipeline_config
from training.tune import (
    TuneError,
    apply_values,
    default_space,
    load_space,
    set_path,
    validation_data,
)

BASE = {
    "version": 1,
    "candidates": {
        "total": 60,
        "generators": [
            {"name": "item_knn", "quota": 25, "params": {"weighting": "bm25"}},
            {"name": "co_purchase", "quota": 20},
            {"name": "popular", "quota": 10},
        ],
    },
    "ranker": {
        "params": {"n_estimators": 30, "num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 5}
    },
    "style": {"enabled": False},
    "training": {"max_train_orders": 800, "max_validation_orders": 250, "max_eval_orders": 300},
}


def test_set_path_addresses_generators_by_name_and_creates_sections() -> None:
    out = apply_values(
        BASE,
        {
            "candidates.generators.co_purchase.quota": 33,
            "candidates.generators.item_knn.params.K": 55,
            "diversity.style_slots": 1,
        },
    )
    assert out["candidates"]["generators"][1]["quota"] == 33
    assert out["candidates"]["generators"][0]["params"] == {"weighting": "bm25", "K": 55}
    assert out["diversity"] == {"style_slots": 1}
    assert BASE["candidates"]["generators"][1]["quota"] == 20  # the base is not modified
    parse_pipeline_config(out)
    with pytest.raises(TuneError, match="no generator named 'ease'"):
        set_path(apply_values(BASE, {}), "candidates.generators.ease.params.l2", 10.0)


def test_default_space_covers_only_the_generators_present() -> None:
    space = default_space(BASE)
    assert "candidates.generators.item_knn.params.K" in space
    assert not any("l2" in p or "alpha" in p or "beta" in p for p in space)
    assert {"candidates.total", "ranker.params.num_leaves", "ranker.params.learning_rate"} <= set(
        space
    )
    assert {
        f"candidates.generators.{n}.quota" for n in ("item_knn", "co_purchase", "popular")
    } <= set(space)
    with_ease = apply_values(BASE, {})
    with_ease["candidates"]["generators"] += [
        {"name": "ease", "quota": 20},
        {"name": "walk", "kind": "rp3beta", "quota": 20},
    ]
    space = default_space(with_ease)
    assert space["candidates.generators.ease.params.l2"].log
    assert {
        "candidates.generators.walk.params.alpha",
        "candidates.generators.walk.params.beta",
    } <= set(space)


def test_space_file_overrides_drops_and_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "space.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "params": {
                    "ranker.params.num_leaves": None,
                    "candidates.generators.item_knn.params.K": {
                        "type": "int",
                        "low": 20,
                        "high": 30,
                    },
                    "diversity.style_slots": {"type": "categorical", "choices": [0, 1]},
                }
            }
        )
    )
    space = load_space(f, BASE)
    assert "ranker.params.num_leaves" not in space and "ranker.params.learning_rate" in space
    assert space["candidates.generators.item_knn.params.K"].high == 30
    f.write_text(
        yaml.safe_dump(
            {
                "include_defaults": False,
                "params": {
                    "ranker.params.learning_rate": {
                        "type": "float",
                        "low": 0.05,
                        "high": 0.2,
                        "log": True,
                    }
                },
            }
        )
    )
    assert list(load_space(f, BASE)) == ["ranker.params.learning_rate"]
    for bad, message in (
        (
            {"params": {"ranker.params.num_leaves": {"type": "int", "low": 9, "high": 3}}},
            "low <= high",
        ),
        ({"params": {"ranker.params.num_leaves": {"type": "normal"}}}, "type must be"),
        (
            {"params": {"candidates.generators.nope.quota": {"type": "int", "low": 1, "high": 3}}},
            "nope",
        ),
        ({"include_defaults": False, "params": {}}, "empty"),
        ({"spaces": {}}, "unknown key"),
    ):
        f.write_text(yaml.safe_dump(bad))
        with pytest.raises(TuneError, match=message):
            load_space(f, BASE)


@pytest.fixture(scope="module")
def world():
    from recsys.sample_world import generate_world

    return generate_world(seed=5, n_orders=2000)


def _cuts(world, config) -> tuple[int, int]:
    """The full data's validation and evaluation cuts, computed here independently."""
    from recsys.data.orders import build_orders
    from training.splits import window_cuts

    tc = config.training
    orders = build_orders(world.interactions, world.catalog)
    cuts = window_cuts(
        orders.ts, (tc.generator_share, tc.ranker_share, tc.validation_share, tc.evaluation_share)
    )
    return int(cuts[-2]), int(cuts[-1])


def _purchase_order_ts(frame: pd.DataFrame) -> pd.Series:
    buys = frame[frame["event"] == "purchase"]
    return buys.groupby("order_id")["ts"].min().map(lambda t: int(t.timestamp()))


def test_validation_data_drops_the_evaluation_window(world) -> None:
    config = parse_pipeline_config(BASE)
    val_cut, eval_cut = _cuts(world, config)
    data = validation_data(world.catalog, world.interactions, config)
    assert (data.validation_cut, data.evaluation_cut) == (val_cut, eval_cut)
    kept = data.interactions.frame
    assert kept["ts"].max().timestamp() < eval_cut
    full_orders = _purchase_order_ts(world.interactions.frame)
    assert data.dropped_orders == int((full_orders >= eval_cut).sum()) > 0
    assert set(_purchase_order_ts(kept).index) == set(full_orders[full_orders < eval_cut].index)


@pytest.mark.slow
def test_tune_cli_end_to_end_never_sees_the_evaluation_window(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    import training.tune as tune_module
    from recsys.cli import main

    data_dir = tmp_path / "world"
    data_dir.mkdir()
    world.catalog.save(data_dir / "catalog.parquet")
    world.interactions.save(data_dir / "interactions.parquet")
    config_file = tmp_path / "base.yaml"
    config_file.write_text(yaml.safe_dump(BASE, sort_keys=False))
    out = tmp_path / "tuned.yaml"
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)

    seen: list[dict] = []
    real_fit = tune_module.fit_recommender

    def spy(catalog, interactions, config, **kw):  # records what every fit got, then fits
        frame = interactions.frame
        seen.append(
            {
                "last_ts": frame["ts"].max().timestamp(),
                "orders": set(frame.loc[frame["event"] == "purchase", "order_id"]),
                "cutoff": int(kw["cutoff"].timestamp()),
                "refit": config.training.refit_generators,
            }
        )
        return real_fit(catalog, interactions, config, **kw)

    monkeypatch.setattr(tune_module, "fit_recommender", spy)
    rc = main(
        [
            "tune",
            "--catalog",
            str(data_dir / "catalog.parquet"),
            "--interactions",
            str(data_dir / "interactions.parquet"),
            "--config",
            str(config_file),
            "--trials",
            "2",
            "--seed",
            "3",
            "--experiment",
            "tune-test",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed

    # no fit (base config or trial) ever saw an order at or after the evaluation cut
    val_cut, eval_cut = _cuts(world, parse_pipeline_config(BASE))
    full_orders = _purchase_order_ts(world.interactions.frame)
    eval_orders = set(full_orders[full_orders >= eval_cut].index)
    assert len(seen) == 3 and eval_orders
    for fit in seen:
        assert fit["last_ts"] < eval_cut
        assert not fit["orders"] & eval_orders
        assert fit["cutoff"] == val_cut
        assert fit["refit"] is False

    client = mlflow.MlflowClient(tracking_uri=db)
    exp = client.get_experiment_by_name("tune-test")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name.startswith("tune-world-")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = [r for r in children if r.data.tags["tune.trial"] != "base"]
    assert len(children) == 3 and len(trials) == 2
    space = default_space(BASE)
    for run in children:
        assert 0.0 <= run.data.metrics["recall_at_10"] <= 1.0
        assert "ndcg_at_10" in run.data.metrics
        assert int(run.data.tags["tune.evaluation_cut"]) == eval_cut
        assert int(run.data.tags["tune.data_last_ts"]) < eval_cut
    for run in trials:
        assert set(run.data.params) == set(space)
    assert len({tuple(sorted(r.data.params.items())) for r in trials}) == 2
    values = {r.data.tags["tune.trial"]: r.data.metrics["recall_at_10"] for r in children}
    best_label = parent.data.tags["tune.best"]
    assert parent.data.metrics["best.recall_at_10"] == pytest.approx(max(values.values()))
    assert parent.data.metrics["best.recall_at_10"] == pytest.approx(values[best_label])
    assert parent.data.metrics["base.recall_at_10"] == pytest.approx(values["base"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "best_config", "search_space.json"} <= artifacts
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "best_config")] == [
        "best_config/tuned.yaml"
    ]

    # the written YAML is the best config and validate-config accepts it
    tuned = yaml.safe_load(out.read_text())
    if best_label == "base":
        assert tuned == BASE
    else:
        best_run = next(r for r in trials if r.data.tags["tune.trial"] == best_label)
        expected = apply_values(
            BASE,
            {
                p: (int(v) if space[p].type == "int" else float(v))
                for p, v in best_run.data.params.items()
            },
        )
        assert tuned == expected
    assert "validation recall@10: base config" in printed
    assert main(["validate-config", str(out)]) == 0
    assert np.isfinite(parent.data.metrics["best.recall_at_10"])
