"""Basket style accuracy on held-out orders (sample world only: it needs each order's true
style, which real data does not have).

The style model is fitted the way the evaluated pipeline fits it, on the orders of the first
time window only (before the first cut). It then reads the style of each evaluation-window
order that has a true style. Three figures come out: ``style_accuracy`` (share of those
orders whose top style is the true one; "no clear style" counts as wrong),
``style_answer_rate`` (share given a top style at all) and ``style_precision_when_answered``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Catalog, Interactions


def basket_style_accuracy(
    catalog: Catalog,
    interactions: Interactions,
    config: Any,
    ground_truth: pd.DataFrame,
    cuts: Sequence[pd.Timestamp],
    *,
    seed: int,
    max_orders: int = 4000,
) -> dict[str, float]:
    """See the module docstring. ``cuts`` are the fit's window cuts (first = end of the
    training window, last = start of the evaluation window). Empty dict when not measurable."""
    if not config.style_enabled or not len(catalog.taxonomy) or len(cuts) < 1:
        return {}
    from recsys.data.orders import build_orders
    from recsys.style.basket import BasketStyleInferer
    from recsys.style.item_model import ItemStyleModel
    from training.splits import window_masks

    truth = ground_truth
    if "kind" in truth.columns:
        truth = truth[truth["kind"] == "project"]
    truth = truth[truth["order_style"].map(lambda s: isinstance(s, str) and s != "")]
    true_style = dict(zip(truth["order_id"], truth["order_style"], strict=True))
    if not true_style:
        return {}
    orders = build_orders(interactions, catalog)
    masks = window_masks(orders.ts, [int(pd.Timestamp(c).timestamp()) for c in cuts])
    train, held_out = orders.subset(masks[0]), orders.subset(masks[-1])
    candidates = [i for i, o in enumerate(held_out.order_ids) if o in true_style]
    if not candidates or len(train) == 0:
        return {}
    rng = np.random.default_rng(seed)
    if len(candidates) > max_orders:
        candidates = sorted(rng.choice(candidates, size=max_orders, replace=False).tolist())
    params = dict(config.style_params)
    params.setdefault("seed", seed)
    model = ItemStyleModel(**params).fit(catalog, train.matrix)
    inferer = BasketStyleInferer.from_model(model, catalog)
    correct = answered = 0
    for i in candidates:
        rows, qty = held_out.items_of(i)
        top = inferer.infer(rows, qty).top
        if top is not None:
            answered += 1
            correct += int(top == true_style[held_out.order_ids[i]])
    n = len(candidates)
    return {
        "style_accuracy": correct / n,
        "style_answer_rate": answered / n,
        "style_precision_when_answered": correct / answered if answered else 0.0,
        "style_eval_orders": float(n),
    }
