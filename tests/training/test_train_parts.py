"""Small pieces of `recsys train`: names MLflow accepts, flattened params, provenance, profile."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from recsys import __version__
from recsys.bundle import code_version
from recsys.sample_world import generate_world
from recsys.settings import Settings
from training.data_profile import profile_data, profile_markdown
from training.provenance import data_fingerprint, dataset_slug, git_commit, run_name
from training.train import StageProgress, flatten_params, metric_key, registered_model_name


def test_metric_keys_are_mlflow_safe() -> None:
    assert metric_key("recall@10") == "recall_at_10"
    assert metric_key("merged candidates (no ranker)") == "merged_candidates_no_ranker"
    assert metric_key("time.ranker_s") == "time.ranker_s"


def test_flatten_params_names_list_items_by_their_name() -> None:
    flat = flatten_params(
        {
            "generators": [{"name": "cf", "quota": 40, "params": {"factors": 64}}],
            "ranker": {"num_leaves": 31, "exclude_features": []},
            "styles": None,
        },
        "config.",
    )
    assert flat == {
        "config.generators.cf.name": "cf",
        "config.generators.cf.quota": "40",
        "config.generators.cf.params.factors": "64",
        "config.ranker.num_leaves": "31",
        "config.ranker.exclude_features": "[]",
        "config.styles": "null",
    }


def test_fingerprint_is_content_not_name(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("x,y\n1,2\n")
    b.write_text("x,y\n1,2\n")
    c.write_text("x,y\n1,3\n")
    assert data_fingerprint([a]) == data_fingerprint([b])
    assert data_fingerprint([a]) != data_fingerprint([c])
    assert data_fingerprint([a, c]) != data_fingerprint([c, a])


def test_code_version_has_package_version() -> None:
    version = code_version()
    assert version.startswith(__version__)
    sha, dirty = git_commit()
    if sha is not None:
        assert len(sha) == 40 and dirty in (True, False)
        assert version == f"{__version__}+{sha[: len(version) - len(__version__) - 1]}"


def test_data_profile_counts() -> None:
    world = generate_world(seed=1, n_orders=200, n_skus=150)
    prof = profile_data(world.catalog, world.interactions)
    assert prof["catalog"]["items"] == 150
    assert prof["interactions"]["events"] == len(world.interactions)
    assert sum(prof["interactions"]["events_by_type"].values()) == len(world.interactions)
    assert prof["interactions"]["orders"] == world.interactions.purchases()["order_id"].nunique()
    assert "| items | 150 |" in profile_markdown(prof)


def test_progress_bar_follows_stages() -> None:
    stream = io.StringIO()
    bar = StageProgress(stream=stream)
    bar("split", 0.0)
    bar("ranker", 0.65)
    bar.close()
    text = stream.getvalue()
    assert "training: ranker" in text and "training: done" in text and "100%" in text


def test_style_accuracy_on_held_out_orders_beats_chance() -> None:
    import pandas as pd

    from recsys.data.orders import build_orders
    from training.splits import window_cuts
    from training.style_accuracy import basket_style_accuracy
    from training.train import load_config

    world = generate_world(seed=3, n_orders=1500, n_skus=300)
    config, _ = load_config(None)
    orders = build_orders(world.interactions, world.catalog)
    cuts = [
        pd.Timestamp(c, unit="s", tz="UTC") for c in window_cuts(orders.ts, (0.6, 0.2, 0.1, 0.1))
    ]
    out = basket_style_accuracy(
        world.catalog, world.interactions, config, world.ground_truth, cuts, seed=1
    )
    assert out["style_eval_orders"] > 50
    assert 0.0 <= out["style_accuracy"] <= out["style_answer_rate"] <= 1.0
    assert out["style_accuracy"] > 1.0 / len(world.catalog.taxonomy)  # better than a guess
    no_truth = world.ground_truth.assign(order_style=None)
    assert (
        basket_style_accuracy(world.catalog, world.interactions, config, no_truth, cuts, seed=1)
        == {}
    )


def test_registered_model_name_is_per_dataset_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECSYS_MODEL_NAME", raising=False)
    settings = Settings()
    retail = Path("data/online-retail/catalog.parquet")
    assert registered_model_name(retail, False, settings) == (
        "home-xsell-online-retail",
        "derived from the catalog's folder",
    )
    # the sample world keeps the name the demo (make run, recsys serve) serves
    assert (
        registered_model_name(Path("data/sample/catalog.parquet"), True, settings)[0]
        == "home-xsell"
    )
    assert (
        registered_model_name(Path("shops/Acme Shop.parquet"), False, settings)[0]
        == "home-xsell-acme-shop"
    )
    assert registered_model_name(retail, False, settings, "mine") == ("mine", "--name")
    monkeypatch.setenv("RECSYS_MODEL_NAME", "from-env")
    assert registered_model_name(retail, False, Settings()) == ("from-env", "RECSYS_MODEL_NAME")
    assert registered_model_name(retail, False, Settings(), "mine")[0] == "mine"


def test_run_names_say_which_data_which_config_and_when() -> None:
    name = run_name(dataset_slug("data/online-retail/catalog.parquet"), "0123456789abcdef", "tune")
    prefix, stamp = name[: -len("20261202-051800")], name[-len("20261202-051800") :]
    assert prefix == "tune-online-retail-01234567-"
    assert stamp[:8].isdigit() and stamp[8] == "-" and stamp[9:].isdigit()
    assert dataset_slug("x/catalog.csv") == "x"
