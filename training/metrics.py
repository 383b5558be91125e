"""Offline metrics for ranked lists, each a plain function of lists of ids (any hashable).

Accuracy (recall, NDCG, hit rate, MRR) is computed per basket and averaged over baskets;
beyond-accuracy metrics (coverage, cross-category share, style coherence) and accessory recall
describe the lists themselves. All return a float in [0, 1]; empty inputs give 0.0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

Item = TypeVar("Item", bound=Hashable)
Category = TypeVar("Category", bound=Hashable)


def _topk(recommended: Sequence[Hashable], k: int) -> list[Hashable]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return list(recommended)[:k]


def recall_at_k(recommended: Sequence[Hashable], relevant: Sequence[Hashable], k: int) -> float:
    """Share of the relevant items found in the top ``k``."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(_topk(recommended, k))) / len(rel)


def hit_rate_at_k(recommended: Sequence[Hashable], relevant: Sequence[Hashable], k: int) -> float:
    """1.0 if any relevant item is in the top ``k``."""
    rel = set(relevant)
    return float(any(r in rel for r in _topk(recommended, k)))


def ndcg_at_k(recommended: Sequence[Hashable], relevant: Sequence[Hashable], k: int) -> float:
    """Binary-relevance NDCG: DCG of the top ``k`` over the DCG of a perfect list."""
    rel = set(relevant)
    if not rel:
        return 0.0
    top = _topk(recommended, k)
    seen: set[Hashable] = set()
    dcg = 0.0
    for i, r in enumerate(top):
        if r in rel and r not in seen:
            dcg += 1.0 / np.log2(i + 2)
            seen.add(r)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), k)))
    return float(dcg / ideal)


def mrr(
    recommended: Sequence[Hashable], relevant: Sequence[Hashable], k: int | None = None
) -> float:
    """Reciprocal rank of the first relevant item (0 if none within ``k``)."""
    rel = set(relevant)
    top = list(recommended) if k is None else _topk(recommended, k)
    for i, r in enumerate(top):
        if r in rel:
            return 1.0 / (i + 1)
    return 0.0


def catalog_coverage(lists: Sequence[Sequence[Hashable]], n_items: int) -> float:
    """Share of the catalog appearing in at least one list."""
    if n_items < 1:
        return 0.0
    seen = {r for lst in lists for r in lst}
    return min(len(seen) / n_items, 1.0)


def cross_category_share(
    lists: Sequence[Sequence[Item]],
    basket_categories: Sequence[set[Category]],
    item_category: Mapping[Item, Category | None],
) -> float:
    """Share of recommended items (with a category) whose category is not in their basket:
    how much the lists complete the project rather than repeat it."""
    total = cross = 0
    for lst, cats in zip(lists, basket_categories, strict=True):
        for r in lst:
            c = item_category.get(r)
            if c is None:
                continue
            total += 1
            cross += c not in cats
    return cross / total if total else 0.0


def style_coherence(
    lists: Sequence[Sequence[Item]],
    true_styles: Sequence[str | None],
    item_style: Mapping[Item, str | None],
) -> float:
    """Among recommended items that have a style, the share matching the basket's true style;
    averaged over baskets that have a true style and at least one styled item."""
    scores = []
    for lst, truth in zip(lists, true_styles, strict=True):
        if truth is None:
            continue
        styled = [item_style.get(r) for r in lst if item_style.get(r) is not None]
        if styled:
            scores.append(sum(s == truth for s in styled) / len(styled))
    return float(np.mean(scores)) if scores else 0.0


def accessory_recall(
    suggested: Sequence[Sequence[Hashable]], forgotten: Sequence[Sequence[Hashable]]
) -> float:
    """Share of forgotten accessories (over all baskets that forgot something) that appear in
    what was suggested for that basket (micro average)."""
    total = hits = 0
    for sug, fgt in zip(suggested, forgotten, strict=True):
        f = set(fgt)
        if not f:
            continue
        total += len(f)
        hits += len(f.intersection(sug))
    return hits / total if total else 0.0


def mean_metric(
    fn, lists: Sequence[Sequence[Hashable]], relevant: Sequence[Sequence[Hashable]], k: int
) -> float:  # type: ignore[no-untyped-def]
    """Average a per-basket metric over baskets with at least one relevant item."""
    vals = [fn(lst, rel, k) for lst, rel in zip(lists, relevant, strict=True) if len(rel)]
    return float(np.mean(vals)) if vals else 0.0
