"""A tiny world with a known answer: three styles, four categories, co-purchase only within a
style. Sofas and lamps are tagged (a few lamps not), tiles are never tagged, gloves are bought
with every style and carry no style."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data.catalog import Catalog, validate_catalog
from recsys.data.taxonomy import StyleTaxonomy

STYLES = ("loft", "scandinavian", "boho")
LOOK = {  # per style: colour, material, title words
    "loft": ("black", "metal", "industrial"),
    "scandinavian": ("white", "oak", "nordic"),
    "boho": ("mustard", "rattan", "woven"),
}


@dataclass
class TinyWorld:
    catalog: Catalog
    orders: sp.csr_matrix  # (n_orders, n_items)
    order_styles: np.ndarray  # (n_orders,) index into STYLES
    item_style: np.ndarray  # (n_items,) true style index, -1 = neutral


def tiny_taxonomy() -> StyleTaxonomy:
    return StyleTaxonomy.from_dict({"styles": [{"slug": s} for s in STYLES]})


def build_tiny_world(seed: int = 0, n_orders: int = 600) -> TinyWorld:
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for s, style in enumerate(STYLES):
        color, material, word = LOOK[style]
        for i in range(4):
            rows.append(
                dict(
                    sku=f"{style}-sofa-{i}",
                    title=f"{word} {color} {material} sofa",
                    category="sofa",
                    color=color,
                    material=material,
                    styles=style,
                )
            )
            truth.append(s)
        for i in range(4):
            rows.append(
                dict(
                    sku=f"{style}-lamp-{i}",
                    title=f"{word} {material} lamp",
                    category="lamp",
                    color=color,
                    material=material,
                    styles=style if i < 3 else "",
                )
            )
            truth.append(s)
        for i in range(3):  # tiles: untagged, plain titles, no style words
            rows.append(
                dict(
                    sku=f"{style}-tile-{i}",
                    title=f"ceramic tile model {s}{i}",
                    category="tile",
                    color=None,
                    material="ceramic",
                    styles="",
                )
            )
            truth.append(s)
    for i in range(2):
        rows.append(
            dict(
                sku=f"gloves-{i}",
                title="protective work gloves",
                category="gloves",
                color="blue",
                material="nitrile",
                styles="",
            )
        )
        truth.append(-1)
    frame = pd.DataFrame(rows)
    frame["price"] = 10.0
    frame["in_stock"] = True
    catalog = validate_catalog(frame, "<tiny>", tiny_taxonomy())
    truth_arr = np.asarray(truth)
    by_style = [np.flatnonzero(truth_arr == s) for s in range(len(STYLES))]
    gloves = np.flatnonzero(truth_arr == -1)
    indptr, indices, order_styles = [0], [], []
    for _ in range(n_orders):
        s = int(rng.integers(len(STYLES)))
        items = list(rng.choice(by_style[s], size=int(rng.integers(2, 5)), replace=False))
        if rng.random() < 0.6:
            items.append(int(rng.choice(gloves)))
        indices.extend(sorted(items))
        indptr.append(len(indices))
        order_styles.append(s)
    orders = sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(n_orders, len(catalog))
    )
    return TinyWorld(catalog, orders, np.asarray(order_styles), truth_arr)


@pytest.fixture(scope="session")
def tiny_world() -> TinyWorld:
    return build_tiny_world()


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """The machine is shared: BLAS threads fighting over two cores made fits 3x slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional in a bare environment
        yield
        return
    with threadpool_limits(1):
        yield
