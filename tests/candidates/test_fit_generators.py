"""fit_generators: the config's generators built and fitted in order, with the dependencies
their classes declare (the style generator reuses the co-purchase category complements)."""

from __future__ import annotations

import numpy as np

from recsys.candidates.cf import CFCandidates
from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.style_retrieval import StyleCandidates
from recsys.candidates.training_data import build_training_data
from recsys.config import GeneratorSpec, fit_generators
from recsys.sample_world.world import generate_world


def test_style_reuses_the_fitted_co_purchase_complements_and_cf_gets_the_seed() -> None:
    world = generate_world(seed=5, n_orders=400, n_skus=200)
    data, _ = build_training_data(world.catalog, world.interactions)
    specs = [
        GeneratorSpec(name="co", kind="co_purchase", quota=10, params={"min_support": 1}),
        GeneratorSpec(name="cf", kind="cf", quota=10, params={"factors": 8, "iterations": 2}),
        GeneratorSpec(name="style", kind="style", quota=10),
    ]
    co, cf, style = fit_generators(specs, data, seed=42)
    assert [g.name for g in (co, cf, style)] == ["co", "cf", "style"]
    assert isinstance(co, CoPurchaseCandidates) and isinstance(style, StyleCandidates)
    assert isinstance(cf, CFCandidates) and cf.seed == 42
    # the very matrix the co-purchase generator learned, not a second computation
    assert np.shares_memory(style.category_complements_, co.category_complements_)
    alone = StyleCandidates().fit(data)
    assert not np.shares_memory(alone.category_complements_, co.category_complements_)
    np.testing.assert_array_equal(alone.category_complements_, co.category_complements_)


def test_a_seed_in_the_params_wins_and_unseeded_generators_get_none() -> None:
    cf = GeneratorSpec(name="cf", kind="cf", quota=5, params={"seed": 3}).build(seed=9)
    assert isinstance(cf, CFCandidates) and cf.seed == 3
    co = GeneratorSpec(name="together", kind="co_purchase", quota=5).build(seed=9)
    assert isinstance(co, CoPurchaseCandidates) and co.name == "together"
