"""The pipeline config mirrors pipeline.yaml: errors name the YAML path, the dump is what a
bundle stores (and reads back, also in the flat form of older bundles), defaults live in the
components' constructors."""

from __future__ import annotations

import inspect
import json

import pytest
import yaml

from recsys.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    PipelineConfig,
    config_from_dict,
    load_pipeline_config,
    parse_pipeline_config,
)
from recsys.ranking.ranker import LightGBMRanker

GENS = [{"name": "item_knn", "quota": 10}, {"name": "co_purchase"}, {"name": "popular", "quota": 5}]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"candidates": {"generators": [*GENS[:2], {"name": "popular", "quota": 0}]}},
            "candidates.generators[2].quota: must be >= 1, got 0",
        ),
        (
            {"candidates": {"generators": [{"name": "cf", "params": {"factors": "many"}}]}},
            "candidates.generators[0].params: cf parameter factors",
        ),
        ({"candidates": {"total": 2.5}}, "candidates.total: expected a whole number, got 2.5"),
        ({"diversity": {"style_slots": -1}}, "diversity.style_slots: must be >= 0, got -1"),
        (
            {"ranker": {"params": {"num_leaves": 7, "n_leaves": 3}}},
            "ranker.params: lightgbm has no parameter 'n_leaves'",
        ),
        ({"ranker": {"params": {"seed": 3}}}, "ranker.params: lightgbm has no parameter 'seed'"),
        ({"ranker": {"kind": "xgboost"}}, "ranker.kind: unknown ranker 'xgboost'"),
        ({"style": {"enabled": "yes"}}, "style.enabled: expected true/false, got 'yes'"),
        ({"candidates": {"generators": [{"quota": 3}]}}, "candidates.generators[0].name: required"),
        (
            {"candidates": {"generators": [GENS[0], GENS[0]]}},
            "candidates.generators: duplicate name(s) ['item_knn']",
        ),
        ({"training": {"hide_fraction": 1.0}}, "training: hide_fraction must be between 0 and 1"),
        ({"version": 2}, "version: version 2 is not supported"),
    ],
)
def test_errors_name_the_yaml_path(patch: dict, message: str) -> None:
    data = {"version": 1, "candidates": {"generators": GENS}, **patch}
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(data, "p.yaml")
    assert str(info.value).startswith(f"p.yaml: {message}")


def test_the_model_mirrors_the_yaml_and_its_dump_round_trips() -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    cfg = load_pipeline_config()
    dumped = cfg.model_dump(mode="json")
    assert set(dumped) == set(raw) == set(PipelineConfig.model_fields)
    for section in ("candidates", "ranker", "diversity", "style", "training"):
        assert set(raw[section]) <= set(dumped[section]), section
    assert cfg.to_dict() == dumped
    again = config_from_dict(json.loads(json.dumps(dumped)))
    assert again == cfg and again.hash == cfg.hash
    assert cfg.total_candidates == raw["candidates"]["total"]
    assert cfg.generator_names == tuple(g["name"] for g in raw["candidates"]["generators"])
    assert cfg.style_slots == raw["diversity"]["style_slots"]


def test_frozen_and_hash_follows_content() -> None:
    cfg = parse_pipeline_config({"candidates": {"generators": GENS}})
    with pytest.raises(ValueError):
        cfg.candidates.total = 5  # type: ignore[misc]
    fewer = cfg.without_generators({"popular"})
    assert fewer.generator_names == ("item_knn", "co_purchase") and fewer.hash != cfg.hash
    assert cfg.generator_names == ("item_knn", "co_purchase", "popular")


def test_ranker_defaults_are_the_rankers_own() -> None:
    cfg = parse_pipeline_config({"ranker": {"params": {"num_leaves": 7}}})
    ranker = cfg.ranker.build(seed=5)
    defaults = {n: p.default for n, p in inspect.signature(LightGBMRanker).parameters.items()}
    assert ranker.num_leaves == 7 and ranker.seed == 5
    assert ranker.n_estimators == defaults["n_estimators"]
    assert ranker.learning_rate == defaults["learning_rate"]
    assert cfg.ranker.model_dump()["params"] == {"num_leaves": 7}  # only what the YAML says


# The flat form ``PipelineConfig.to_dict`` wrote before the config mirrored the YAML.
FLAT_BUNDLE_CONFIG = {
    "feature_set": "basket_completion",
    "generators": [
        {"name": "cf", "kind": "cf", "quota": 40, "params": {"factors": 8}},
        {"name": "popular", "kind": "popular", "quota": 20, "params": {}},
    ],
    "total_candidates": 120,
    "ranker": {
        "enabled": True,
        "n_estimators": 150,
        "num_leaves": 31,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "early_stopping_rounds": 20,
        "exclude_features": ["style_match"],
    },
    "max_per_category": 2,
    "style_slots": 1,
    "style_enabled": True,
    "style_params": {},
    "styles": None,
    "training": {
        "generator_share": 0.6,
        "ranker_share": 0.2,
        "validation_share": 0.1,
        "evaluation_share": 0.1,
        "hide_fraction": 0.3,
        "negatives_per_basket": 50,
        "max_train_orders": 10000,
        "max_validation_orders": 2000,
        "max_eval_orders": 3000,
        "refit_generators": True,
    },
    "version": 1,
}


def test_a_bundle_config_in_the_old_flat_form_still_loads() -> None:
    cfg = config_from_dict(FLAT_BUNDLE_CONFIG)
    assert cfg.generator_names == ("cf", "popular") and cfg.total_candidates == 120
    assert cfg.max_per_category == 2 and cfg.style_slots == 1
    assert cfg.ranker.exclude_features == ("style_match",) and cfg.ranker.enabled
    assert cfg.ranker.params["num_leaves"] == 31 and "enabled" not in cfg.ranker.params
    broken = dict(FLAT_BUNDLE_CONFIG, max_per_category="three")
    with pytest.raises(
        ConfigError, match=r"<bundle config>: diversity.max_per_category: expected a whole number"
    ):
        config_from_dict(broken)
