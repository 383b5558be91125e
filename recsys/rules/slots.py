"""One accessory section per answer: fired rules' candidates turned into at most ``cap`` slots.

Several rules often fire on one basket and suggest the same things (three laminate rules all
suggest underlay; every renovation rule suggests waste bags). Shoppers should see each
accessory category once, from the highest-priority rule that suggests it, with the reasons of
every rule that suggested it; and never an item, or an item's category, that the ranked
``items`` list already shows. When the fired rules claim fewer categories than the section
has lines, the free lines offer a second choice of the categories shown (the placing rule's
next-best candidate: a lamp basket sees two bulbs, not one bulb and three empty lines); a
category never gets a second line while the section is full of first choices, and a rule's
``max_items`` still bounds the categories it claims. This module is pure (rows and arrays
in, rows out) so the property test can throw any basket and rule set at it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.candidates.topk import not_in
from recsys.recommendation import FiredRule


@dataclass
class Slot:
    """One accessory entry: the item row, the rule that placed it (highest priority) and the
    distinct reasons of every fired rule that suggested its category."""

    row: int
    rule_id: str
    reasons: list[str] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _key(row: int, code: int) -> int:
    """The de-duplication key: the category code, or the item itself when it has none."""
    return code if code >= 0 else -(row + 2)


def fill_accessory_slots(
    fired: Sequence[FiredRule],
    category_codes: np.ndarray,
    *,
    cap: int,
    item_rows: Collection[int] = (),
    taken_rows: Collection[int] = (),
    allowed: np.ndarray | None = None,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
    second_choices: bool = True,
) -> list[Slot]:
    """At most ``cap`` slots: first one per category across all ``fired`` rules, then (with
    ``second_choices``) a second choice of the categories shown in the lines left free.

    ``fired`` rules are visited by priority (highest first, stable). Each rule contributes up
    to ``max_items`` categories not claimed yet, the best-scoring candidate of each (``score``
    maps candidate rows to higher-is-better values; default: the rule's own order); a category
    an earlier rule already claimed only gains the later rule's reason. Candidates that are in
    ``item_rows`` or ``taken_rows`` (basket, exclusions), share a category with ``item_rows``,
    fall outside ``category_codes`` or are not ``allowed`` are skipped.

    Second choices follow every first choice, in the first choices' order: the next-best
    candidate of the same category from the rule that placed it (same rule, same reasons),
    at most one per category, only while fewer than ``cap`` lines are taken. Items without a
    category have no second choice.
    """
    if cap <= 0 or not fired:
        return []
    codes = np.asarray(category_codes)
    n = len(codes)
    items = {int(r) for r in item_rows if 0 <= int(r) < n}
    blocked_rows = items | {int(r) for r in taken_rows}
    blocked = np.fromiter(blocked_rows, np.int64, len(blocked_rows))
    blocked_keys = {_key(r, int(codes[r])) for r in items}
    rules = sorted(fired, key=lambda f: -f.priority)
    rule_of, cand = _usable_candidates(rules, n, blocked, allowed)
    if score is not None and cand.size:
        # each rule's candidates best first (stable: ties keep the rule's own order), scored
        # one rule at a time, as before, so every score is computed from the same call
        bounds = np.searchsorted(rule_of, np.arange(len(rules) + 1))
        s = np.empty(cand.size, np.float64)
        for i in range(len(rules)):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            if hi > lo:
                s[lo:hi] = np.asarray(score(cand[lo:hi]), np.float64)
        order = np.lexsort((-s, rule_of))
        rule_of, cand = rule_of[order], cand[order]
    # only the first (best) candidate of each key in a rule can change anything: a later one
    # finds its key claimed (this rule's reason already merged) or refused for the same reason
    cand_codes = codes[cand].astype(np.int64)
    keys = np.where(cand_codes >= 0, cand_codes, -(cand + 2))
    span = n + max(int(cand_codes.max(initial=0)), 0) + 4  # keys + n + 2 lie in [1, span)
    _, first = np.unique(rule_of * span + (keys + n + 2), return_index=True)
    first.sort()
    slots: list[Slot] = []
    by_key: dict[int, Slot] = {}
    placed_by: dict[int, int] = {}  # key -> index (into ``rules``) of the rule that placed it
    current, added = -1, 0
    for i, c, key in zip(
        rule_of[first].tolist(), cand[first].tolist(), keys[first].tolist(), strict=True
    ):
        rule = rules[i]
        if i != current:
            current, added = i, 0
        if key in blocked_keys:
            continue
        if key in by_key:  # claimed by a higher-priority rule
            slot = by_key[key]
            if rule.rule_id not in slot.rule_ids:
                slot.rule_ids.append(rule.rule_id)
                if rule.reason and rule.reason not in slot.reasons:
                    slot.reasons.append(rule.reason)
            continue
        if added >= max(rule.max_items, 0) or len(slots) >= cap:
            continue  # no new entry, but later categories may still merge a reason
        slot = Slot(c, rule.rule_id, [rule.reason] if rule.reason else [], [rule.rule_id])
        by_key[key] = slot
        placed_by[key] = i
        slots.append(slot)
        added += 1
    if second_choices and len(slots) < cap:
        slots += _second_choices(slots, by_key, placed_by, rule_of, cand, keys, cap - len(slots))
    return slots


def _second_choices(
    firsts: Sequence[Slot],
    by_key: dict[int, Slot],
    placed_by: dict[int, int],
    rule_of: np.ndarray,
    cand: np.ndarray,
    keys: np.ndarray,
    free: int,
) -> list[Slot]:
    """Up to ``free`` second lines, one per category in the order of ``firsts``: the placing
    rule's best candidate of that category after the first choice (``rule_of``/``cand``/
    ``keys`` are every usable candidate, each rule's best first). The line carries the first
    choice's rule and reasons."""
    shown = {s.row for s in firsts}
    out: list[Slot] = []
    for key, first in by_key.items():
        if len(out) >= free:
            break
        if key < 0:  # an uncategorised item is its own key: nothing else is "the same kind"
            continue
        same = np.flatnonzero((rule_of == placed_by[key]) & (keys == key))
        for j in same.tolist():
            row = int(cand[j])
            if row not in shown:
                shown.add(row)
                out.append(Slot(row, first.rule_id, list(first.reasons), list(first.rule_ids)))
                break
    return out


def _usable_candidates(
    rules: Sequence[FiredRule], n: int, blocked: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every rule's candidate rows in its own order, flat, with the rule's index: rows inside
    the catalog, ``allowed`` and not ``blocked``. Returns (rule index, row), both (m,) int64."""
    parts = [np.asarray(rule.candidate_rows, np.int64).ravel() for rule in rules]
    cand = np.concatenate(parts) if parts else np.empty(0, np.int64)
    rule_of = np.repeat(np.arange(len(parts), dtype=np.int64), [p.size for p in parts])
    keep = (cand >= 0) & (cand < n)
    if allowed is not None:
        keep[keep] = np.asarray(allowed, bool)[cand[keep]]
    keep[keep] = not_in(cand[keep], blocked)
    return rule_of[keep], cand[keep]


def not_shown(
    rows: np.ndarray, category_codes: np.ndarray, slot_rows: Collection[int]
) -> np.ndarray:
    """(len(rows),) bool: False where a ranked item repeats an accessory slot's item or its
    category, so the answer shows each accessory category in one place (the accessory
    section, which the merchandiser controls)."""
    rows = np.asarray(rows, np.int64)
    shown = np.asarray(list(slot_rows), np.int64)
    if not len(shown) or not len(rows):
        return np.ones(len(rows), bool)
    codes = np.asarray(category_codes)
    shown_codes = codes[shown]
    cats = codes[rows]
    same_category = ~not_in(cats, shown_codes[shown_codes >= 0]) & (cats >= 0)
    out: np.ndarray = not_in(rows, shown) & ~same_category
    return out
