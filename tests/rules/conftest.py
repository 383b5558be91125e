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
                "sku": s, "title": f"{c.replace('-', ' ')} {s}", "category": c, "price": p,
                "in_stock": st, "styles": sty, "material": m,
            }
            for s, c, p, st, sty, m in ITEMS
        ]
    )
    return validate_catalog(frame, "<tiny>")


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog()
