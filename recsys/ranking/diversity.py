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


def reserve_slots(
    picked: np.ndarray,
    order: np.ndarray,
    eligible: np.ndarray,
    categories: np.ndarray,
    n_slots: int,
) -> np.ndarray:
    """Make sure at least ``n_slots`` of the list ``picked`` are ``eligible`` positions (e.g.
    items in the basket's style from a category it lacks), one per category, taken best first
    from ``order``; they replace the lowest-ranked non-eligible picks. The list keeps its
    length and is returned in ``order``'s ranking. ``eligible`` and ``categories`` are (n,)
    aligned with the candidate positions."""
    picked = np.asarray(picked, dtype=np.int64)
    if n_slots <= 0 or not len(picked):
        return picked
    have = [int(p) for p in picked if eligible[p]]
    need = min(n_slots, len(picked)) - len(have)
    if need <= 0:
        return picked
    in_list = set(picked.tolist())
    used_cats = {int(categories[p]) for p in have}
    extra: list[int] = []
    for pos in np.asarray(order, dtype=np.int64):
        pos = int(pos)
        cat = int(categories[pos])
        if pos in in_list or not eligible[pos] or (cat >= 0 and cat in used_cats):
            continue
        extra.append(pos)
        used_cats.add(cat)
        if len(extra) == need:
            break
    if not extra:
        return picked
    droppable = [int(p) for p in picked[::-1] if not eligible[p]][: len(extra)]
    keep = [int(p) for p in picked if int(p) not in set(droppable)] + extra[: len(droppable)]
    rank = {int(p): i for i, p in enumerate(np.asarray(order, dtype=np.int64))}
    return np.asarray(sorted(keep, key=rank.__getitem__), dtype=np.int64)
