"""Behaviour on the sample world: category complements say what a project needs."""

from __future__ import annotations

import numpy as np

from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.training_data import build_training_data
from recsys.sample_world.world import generate_world


def test_tile_asks_for_grout_and_adhesive_sofa_for_coffee_table() -> None:
    world = generate_world(seed=11, n_orders=5_000)
    data, _ = build_training_data(world.catalog, world.interactions)
    co = CoPurchaseCandidates().fit(data)
    cats = list(world.catalog.categories)

    def top3(name: str) -> set[str]:
        row = co.category_complements_[cats.index(name)]
        return {cats[b] for b in np.argsort(-row, kind="stable")[:3]}

    assert {"grout", "tile-adhesive"} <= top3("ceramic-tile")
    assert {"grout", "tile-adhesive"} <= top3("porcelain-tile")
    assert "coffee-table" in top3("sofa")
    assert "wallpaper-paste" in top3("wallpaper")
    assert "light-bulb" not in top3("sofa")  # in many orders, but not *because* of the sofa
