"""A tiny renovation catalog with a known answer for the rules tests."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data.catalog import Catalog, validate_catalog

# (sku, category, price, in_stock, styles, material)
ITEMS = [
    ("P1", "wall-paint", 30.0, True, "", None),
    ("P2", "wall-paint", 45.0, True, "", None),
    ("G1", "protective-gloves", 4.0, True, "", None),
    ("G2", "protective-gloves", 25.0, True, "", None),
    ("G3", "protective-gloves", 5.0, False, "", None),
    ("M1", "masking-tape", 3.0, True, "", None),
    ("R1", "paint-rollers", 8.0, True, "", None),
    ("T1", "tile", 20.0, True, "loft", "ceramic"),
    ("T2", "tile", 22.0, True, "classic", "ceramic"),
    ("A1", "tile-adhesive", 12.0, True, "", None),
    ("GR1", "grout", 9.0, True, "loft", None),
    ("GR2", "grout", 9.5, True, "classic", None),
    ("GR3", "grout", 7.0, True, "", None),
    ("L1", "laminate", 18.0, True, "scandinavian", "wood"),
    ("U1", "underlay", 6.0, True, "", None),
    ("S1", "skirting-boards", 11.0, True, "scandinavian", "wood"),
    ("C1", "coffee-table", 150.0, True, "loft", "metal"),
    ("C2", "coffee-table", 120.0, True, "scandinavian", "wood"),
]


def make_catalog() -> Catalog:
    frame = pd.DataFrame(
        [
            {
                "sku": s,
                "title": f"{c.replace('-', ' ')} {s}",
                "category": c,
                "price": p,
                "in_stock": st,
                "styles": sty,
                "material": m,
            }
            for s, c, p, st, sty, m in ITEMS
        ]
    )
    return validate_catalog(frame, "<tiny>")


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog()


def make_history(seed: int = 0, n_users: int = 300):
    """Orders where gloves follow paint in a later order (the forgotten signal), grout comes with
    tile in the same order, and coffee tables are bought alone: the answer is known."""
    import numpy as np

    from recsys.data.interactions import validate_interactions

    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(n_users):
        day = int(rng.integers(0, 200))
        kind = u % 3
        oid = f"o{u}-1"
        if kind == 0:  # paint now, gloves/tape later (or never)
            rows.append((oid, f"u{u}", "P1", 2, t0 + pd.Timedelta(days=day)))
            if rng.random() < 0.6:
                later = t0 + pd.Timedelta(days=day + int(rng.integers(1, 10)))
                rows.append((f"o{u}-2", f"u{u}", "G1", 1, later))
                rows.append((f"o{u}-2", f"u{u}", "M1", 1, later))
        elif kind == 1:  # tile with grout in the same order
            rows.append((oid, f"u{u}", "T1", 10, t0 + pd.Timedelta(days=day)))
            if rng.random() < 0.8:
                rows.append((oid, f"u{u}", "GR1", 1, t0 + pd.Timedelta(days=day)))
        else:
            rows.append((oid, f"u{u}", "C1", 1, t0 + pd.Timedelta(days=day)))
            if rng.random() < 0.3:  # unrelated purchase much later: outside the window
                rows.append((f"o{u}-2", f"u{u}", "P2", 1, t0 + pd.Timedelta(days=day + 60)))
    frame = pd.DataFrame(rows, columns=["order_id", "user_id", "sku", "quantity", "ts"])
    frame["event"] = "purchase"
    return validate_interactions(frame, "<tiny history>")


SMALL_PIPELINE = {
    "version": 1,
    "candidates": {
        "total": 60,
        "generators": [
            {"name": "item_knn", "quota": 25, "params": {"weighting": "bm25"}},
            {"name": "co_purchase", "quota": 20},
            {"name": "popular", "quota": 15},
        ],
    },
    "ranker": {
        "params": {"n_estimators": 20, "num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 5}
    },
    "training": {"max_train_orders": 600, "max_validation_orders": 200, "max_eval_orders": 200},
}


@pytest.fixture(scope="session")
def fitted_bundle(tmp_path_factory):
    """A small real model bundle of a sample world (fitted once per session): (path, world)."""
    from recsys.config import parse_pipeline_config
    from recsys.sample_world import generate_world
    from training.fit import fit_recommender

    world = generate_world(seed=5, n_orders=1500)
    fitted = fit_recommender(
        world.catalog, world.interactions, parse_pipeline_config(SMALL_PIPELINE), seed=1
    )
    out = tmp_path_factory.mktemp("bundle") / "model"
    fitted.recommender.save(out)
    return out, world
