"""Diversity after scoring: a greedy category cap, so one category cannot fill the list."""

from __future__ import annotations

import numpy as np


def cap_per_category(
    order: np.ndarray, categories: np.ndarray, k: int, max_per_category: int
) -> np.ndarray:
    """Pick up to ``k`` positions from ``order`` (candidate positions, best first), taking at
    most ``max_per_category`` per category code (-1 = no category, never capped). If the cap
    leaves fewer than ``k``, the skipped items fill the rest in score order, so the list is
    never shorter than it could be. ``categories`` is (n,) aligned with the candidate
    positions. Returns (<= k,) int64 positions."""
    order = np.asarray(order, dtype=np.int64)
    if max_per_category <= 0 or len(order) <= 1:
        return order[:k]
    taken: list[int] = []
    skipped: list[int] = []
    counts: dict[int, int] = {}
    for pos in order:
        cat = int(categories[pos])
        if cat >= 0 and counts.get(cat, 0) >= max_per_category:
            skipped.append(int(pos))
            continue
        counts[cat] = counts.get(cat, 0) + 1
        taken.append(int(pos))
        if len(taken) == k:
            break
    if len(taken) < k:
        taken.extend(skipped[: k - len(taken)])
    return np.asarray(taken, dtype=np.int64)
