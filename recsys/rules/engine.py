"""Rules compiled against one catalog, so that matching a basket touches only the rules its
categories and SKUs can fire (not all of them).

``RuleEngine.compile`` resolves names to catalog rows once: trigger categories/SKUs/attribute
predicates become inverted indexes (per page: category code -> rule ids, item row -> rule ids),
and each rule's suggestion becomes row arrays already filtered by the static constraints
(in stock, price). ``match`` then checks only the indexed candidates, in priority order, and
stops after ``max_fired`` rules fired. The recommender ranks each fired rule's
``candidate_rows`` and fills its slots.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from recsys.data.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.recommendation import PAGES, FiredRule, StyleReading
from recsys.rules.model import Rule

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    placements: frozenset[str]
    match_all: bool
    cat_codes: frozenset[int]
    sku_rows: frozenset[int]  # trigger SKUs
    attr_conds: frozenset[tuple[str, str]] | None  # None = no attribute predicate
    style_cols: frozenset[int]
    min_quantity: int
    unless_codes: frozenset[int]
    suggest_parts: tuple[tuple[int, np.ndarray], ...]  # (category code or -1 for SKUs, rows)
    all_rows: np.ndarray  # the parts concatenated (the common case: nothing to drop)
    all_rows_tuple: tuple[int, ...]
    suggest_codes: frozenset[int]
    suggest_skus: frozenset[int]
    match_style: bool
    skip_in_basket: bool
    has_window: bool
    reason: str


class RuleEngine:
    """Matches baskets against compiled rules (implements ``AccessoryRules``).

    Parameters
    ----------
    max_fired : stop after this many rules fired on one basket (checkout has few slots).
    style_share : an item "matches" a style when its weight there is at least this share of
        its largest style weight; items with no style weight at all are style-neutral and pass.
    """

    def __init__(self, max_fired: int = 20, style_share: float = 0.5) -> None:
        self.max_fired = max_fired
        self.style_share = style_share

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def compile(
        cls,
        rules: Sequence[Rule],
        catalog: Catalog,
        item_styles: np.ndarray | None = None,
        *,
        max_fired: int = 20,
        style_share: float = 0.5,
    ) -> RuleEngine:
        """Compile ``rules`` against ``catalog``. ``item_styles`` is (n_items, n_styles) in
        taxonomy column order (inferred styles); None = the catalog's known tags."""
        return cls(max_fired=max_fired, style_share=style_share).fit(rules, catalog, item_styles)

    def fit(
        self, rules: Sequence[Rule], catalog: Catalog, item_styles: np.ndarray | None = None
    ) -> RuleEngine:
        n = len(catalog)
        styles = catalog.style_labels() if item_styles is None else np.asarray(item_styles)
        if styles.ndim != 2 or styles.shape != (n, len(catalog.taxonomy)):
            raise ValueError(
                f"item_styles must have shape (n_items, n_styles) = ({n}, {len(catalog.taxonomy)}), "
                f"got {styles.shape}"
            )
        self.catalog_ = catalog
        self.style_cols_ = {s: j for j, s in enumerate(catalog.taxonomy.slugs)}
        self.style_masks_ = self._style_masks(styles)
        self.codes_ = catalog.category_codes
        cat_code = {c: i for i, c in enumerate(catalog.categories)}
        prices, stock = catalog.prices, catalog.in_stock
        rows_of_cat = _rows_by_code(self.codes_, len(catalog.categories))

        enabled = [r for r in rules if r.enabled]
        # stable: priority high first, then the given order; the position is the rule's id
        ordered = sorted(enumerate(enabled), key=lambda ir: (-ir[1].priority, ir[0]))
        uses_attributes = any(r.trigger.attributes for r in enabled)
        self.row_attrs_: list[frozenset[tuple[str, str]]] = (
            _row_attributes(catalog) if uses_attributes else []
        )
        known_attrs = set().union(*self.row_attrs_) if uses_attributes else set()
        self.rules_: list[_Compiled] = []
        self.problems_: dict[str, list[str]] = {}
        by_cat: dict[str, dict[int, list[int]]] = {p: {} for p in PAGES}
        by_row: dict[str, dict[int, list[int]]] = {p: {} for p in PAGES}
        by_attr: dict[str, dict[tuple[str, str], list[int]]] = {p: {} for p in PAGES}
        for _, rule in ordered:
            problems: list[str] = []
            trig = rule.trigger
            codes = [cat_code[c] for c in trig.categories if c in cat_code]
            missing_cats = [c for c in trig.categories if c not in cat_code]
            sku_rows = [catalog.ids.get(s) for s in trig.skus]
            missing_skus = [s for s, r in zip(trig.skus, sku_rows, strict=True) if r < 0]
            sku_rows = [r for r in sku_rows if r >= 0]
            if missing_cats:
                problems.append(f"unknown trigger categories: {', '.join(missing_cats)}")
            if missing_skus:
                problems.append(f"unknown trigger SKUs: {', '.join(missing_skus)}")
            conds = (
                frozenset((c.key.lower(), c.value.lower()) for c in trig.attributes)
                if trig.attributes
                else None
            )
            attr_dead = conds is not None and not conds <= known_attrs
            if attr_dead:
                problems.append("no catalog item has these attributes")
            if trig.match == "all" and (missing_cats or missing_skus or attr_dead):
                problems.append("trigger can never match this catalog (match: all)")
                self.problems_[rule.id] = problems
                continue
            if not codes and not sku_rows and (conds is None or attr_dead):
                problems.append("trigger matches nothing in this catalog")
                self.problems_[rule.id] = problems
                continue
            c = rule.suggest.constraints
            ok = stock.copy() if c.in_stock else np.ones(n, dtype=bool)
            if c.max_price is not None:
                ok &= prices <= c.max_price
            parts: list[tuple[int, np.ndarray]] = []
            s_codes = []
            for name in rule.suggest.categories:
                if name not in cat_code:
                    problems.append(f"unknown suggested category: {name}")
                    continue
                code = cat_code[name]
                s_codes.append(code)
                rows = rows_of_cat[code]
                parts.append((code, rows[ok[rows]]))
            s_rows = []
            for sku in rule.suggest.skus:
                r = catalog.ids.get(sku)
                if r < 0:
                    problems.append(f"unknown suggested SKU: {sku}")
                elif ok[r] and self.codes_[r] not in s_codes:
                    s_rows.append(r)
            if s_rows:
                parts.append((-1, np.asarray(sorted(set(s_rows)), dtype=np.int64)))
            parts = [p for p in parts if len(p[1])]
            if not parts:
                problems.append("no suggested item passes the constraints in this catalog")
            all_rows = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            compiled = _Compiled(
                rule=rule,
                placements=frozenset(rule.placements),
                match_all=trig.match == "all",
                cat_codes=frozenset(codes),
                sku_rows=frozenset(sku_rows),
                attr_conds=None if attr_dead else conds,
                style_cols=frozenset(
                    self.style_cols_[s] for s in trig.styles if s in self.style_cols_
                ),
                min_quantity=trig.min_quantity,
                unless_codes=frozenset(cat_code[u] for u in rule.unless if u in cat_code),
                suggest_parts=tuple(parts),
                all_rows=all_rows,
                all_rows_tuple=tuple(all_rows.tolist()),
                suggest_codes=frozenset(s_codes),
                suggest_skus=frozenset(s_rows),
                match_style=c.match_style,
                skip_in_basket=c.skip_if_in_basket,
                has_window=rule.valid_from is not None or rule.valid_to is not None,
                reason=rule.shopper_reason,
            )
            if problems:
                self.problems_[rule.id] = problems
            idx = len(self.rules_)
            self.rules_.append(compiled)
            # "all" needs every listed item, so one of them suffices as the index key
            key_codes: list[int] = codes
            key_rows: list[int] = sku_rows
            key_attr = sorted(compiled.attr_conds)[:1] if compiled.attr_conds else []
            if compiled.match_all:
                key_codes = codes[:1]
                key_rows = sku_rows[:1] if not key_codes else []
                key_attr = key_attr if not key_codes and not key_rows else []
            for page in compiled.placements:
                for code in key_codes:
                    by_cat[page].setdefault(code, []).append(idx)
                for r in key_rows:
                    by_row[page].setdefault(r, []).append(idx)
                for pair in key_attr:  # a row must have every condition, so the first one suffices
                    by_attr[page].setdefault(pair, []).append(idx)
        # index lists are ascending rule ids = priority order (appended in that order)
        self.by_cat_ = {p: {k: tuple(v) for k, v in d.items()} for p, d in by_cat.items()}
        self.by_row_ = {p: {k: tuple(v) for k, v in d.items()} for p, d in by_row.items()}
        self.by_attr_ = {p: {k: tuple(v) for k, v in d.items()} for p, d in by_attr.items()}
        self.ids_ = {c.rule.id: i for i, c in enumerate(self.rules_)}
        self._cache: dict[
            tuple[int, tuple[int, ...], tuple[int, ...]], tuple[np.ndarray, tuple[int, ...]]
        ] = {}
        if self.problems_:
            log.info("rules compiled with problems: %s", self.problems_)
        return self

    def _constrained(
        self, cr: _Compiled, dropped: tuple[int, ...], style_key: tuple[int, ...]
    ) -> tuple[np.ndarray, tuple[int, ...]]:
        """A rule's candidates without the ``dropped`` categories and (if ``style_key``) only
        items of those styles; cached, since baskets repeat the same few combinations."""
        parts = [p for code, p in cr.suggest_parts if code not in dropped]
        cand = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if style_key:
            mask: np.ndarray = np.any(self.style_masks_[list(style_key)], axis=0)
            cand = cand[mask[cand]]
        out = (cand, tuple(cand.tolist()))
        if len(self._cache) > 200_000:  # bounded: forget everything rather than grow forever
            self._cache.clear()
        rule_idx = self.ids_[cr.rule.id]
        self._cache[(rule_idx, dropped, style_key)] = out
        return out

    def _style_masks(self, styles: np.ndarray) -> np.ndarray:
        """(n_styles, n_items) bool: item i matches style s (style-neutral items match all)."""
        styles = np.clip(styles.astype(np.float32), 0, None)
        top = styles.max(axis=1)
        neutral = top <= 1e-6
        masks = (styles >= self.style_share * top[:, None]).T & ~neutral[None, :]
        out: np.ndarray = masks | neutral[None, :]
        return out

    # -- reading -----------------------------------------------------------------------------
    @property
    def rules(self) -> list[Rule]:
        """The compiled (enabled, resolvable) rules in firing order."""
        return [c.rule for c in self.rules_]

    def __len__(self) -> int:
        return len(self.rules_)

    def match(
        self,
        basket_rows: Sequence[int],
        quantities: Sequence[int],
        style: StyleReading,
        page: str,
        now: datetime | None = None,
    ) -> list[FiredRule]:
        """Fired rules for a basket (rows into the catalog, one quantity per row), best first.

        A rule fires when its trigger holds, none of its ``unless`` categories is in the basket,
        its placement is ``page``, it is valid at ``now`` (default: the current time) and at
        least one suggested item survives the constraints. ``candidate_rows`` never contains a
        basket item.
        """
        if len(basket_rows) != len(quantities):
            raise ValueError(
                f"basket_rows and quantities differ in length ({len(basket_rows)} != {len(quantities)})"
            )
        if page not in self.by_cat_:
            raise ValueError(f"unknown page {page!r}; use one of {', '.join(PAGES)}")
        if len(basket_rows) == 0 or not self.rules_:
            return []
        rows = [int(r) for r in basket_rows]
        n = len(self.codes_)
        if min(rows) < 0 or max(rows) >= n:
            raise ValueError(f"basket row out of range 0..{n - 1}")
        codes = self.codes_[rows].tolist()
        by_cat, by_row, by_attr = self.by_cat_[page], self.by_row_[page], self.by_attr_[page]
        lists: list[tuple[int, ...]] = []
        for code in set(codes):
            hit = by_cat.get(code)
            if hit:
                lists.append(hit)
        for r in rows:
            hit = by_row.get(r)
            if hit:
                lists.append(hit)
        row_attrs = self.row_attrs_
        if by_attr:
            for pair in set().union(*(row_attrs[r] for r in rows)):
                hit = by_attr.get(pair)
                if hit:
                    lists.append(hit)
        if not lists:
            return []
        # each list is ascending (= priority order): merge lazily, stop after max_fired fired
        ordered = lists[0] if len(lists) == 1 else heapq.merge(*lists)
        basket_cats = set(codes)
        basket_set = set(rows)
        style_idx = [
            self.style_cols_[s]
            for s in (style.top, style.second)
            if s is not None and s in self.style_cols_
        ]
        style_set = set(style_idx)
        style_tuple = tuple(sorted(style_set))
        when: datetime | None = None
        fired: list[FiredRule] = []
        last = -1
        for i in ordered:
            if i == last:
                continue
            last = i
            cr = self.rules_[i]
            if cr.unless_codes and not cr.unless_codes.isdisjoint(basket_cats):
                continue
            conds = cr.attr_conds
            if cr.match_all and not (
                cr.cat_codes <= basket_cats
                and cr.sku_rows <= basket_set
                and (conds is None or any(conds <= row_attrs[r] for r in rows))
            ):
                continue
            if cr.style_cols and cr.style_cols.isdisjoint(style_set):
                continue
            if cr.min_quantity > 1:
                total = sum(
                    q
                    for r, c, q in zip(rows, codes, quantities, strict=True)
                    if c in cr.cat_codes
                    or r in cr.sku_rows
                    or (conds is not None and conds <= row_attrs[r])
                )
                if total < cr.min_quantity:
                    continue
            if cr.has_window:
                when = when or _aware(now)
                if not cr.rule.active_at(when):
                    continue
            if not len(cr.all_rows):
                continue
            dropped = (
                tuple(sorted(cr.suggest_codes & basket_cats))
                if cr.skip_in_basket and not cr.suggest_codes.isdisjoint(basket_cats)
                else ()
            )
            style_key = style_tuple if cr.match_style else ()
            if not dropped and not style_key:
                cand, candidate_rows = cr.all_rows, cr.all_rows_tuple  # the common case
            else:
                cached = self._cache.get((i, dropped, style_key))
                if cached is None:
                    cached = self._constrained(cr, dropped, style_key)
                cand, candidate_rows = cached
            # basket items can still be among the candidates: explicit SKUs, or categories kept
            if (not cr.skip_in_basket and not cr.suggest_codes.isdisjoint(basket_cats)) or (
                not cr.suggest_skus.isdisjoint(basket_set)
            ):
                keep = np.ones(len(cand), dtype=bool)
                for r in basket_set:
                    keep &= cand != r
                cand = cand[keep]
                candidate_rows = tuple(cand.tolist())
            if not candidate_rows:
                continue
            fired.append(
                FiredRule(
                    rule_id=cr.rule.id,
                    reason=cr.reason,
                    candidate_rows=candidate_rows,
                    max_items=cr.rule.suggest.max_items,
                    priority=cr.rule.priority,
                )
            )
            if len(fired) >= self.max_fired:
                break
        return fired

    def match_skus(
        self,
        basket: Sequence[tuple[str, int]],
        style: StyleReading,
        page: str = "checkout",
        now: datetime | None = None,
    ) -> list[FiredRule]:
        """``match`` for (sku, quantity) pairs; SKUs not in the catalog are ignored."""
        pairs = [(self.catalog_.ids.get(s), q) for s, q in basket]
        pairs = [(r, q) for r, q in pairs if r >= 0]
        return self.match([r for r, _ in pairs], [q for _, q in pairs], style, page, now)


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _rows_by_code(codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """Rows of each category code, ascending: list of int64 arrays."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_codes + 1))
    return [order[bounds[c] : bounds[c + 1]].astype(np.int64) for c in range(n_codes)]


def _row_attributes(catalog: Catalog) -> list[frozenset[tuple[str, str]]]:
    """Each item's (key, value) attribute pairs, lower-case: the standard columns plus the
    open-ended ``attributes`` dict. Shape: one frozenset per catalog row."""
    frame = catalog.frame
    cols = [frame[c].tolist() for c in ATTRIBUTE_COLUMNS]
    out = []
    for i, extra in enumerate(frame["attributes"]):
        pairs = {
            (k, str(col[i]).lower())
            for k, col in zip(ATTRIBUTE_COLUMNS, cols, strict=True)
            if col[i] is not None
        }
        pairs.update((str(k).lower(), str(v).lower()) for k, v in extra.items())
        out.append(frozenset(pairs))
    return out
