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

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from recsys.data.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.recommendation import PAGES, FiredRule, StyleReading
from recsys.rules.model import Rule

log = logging.getLogger(__name__)
_EMPTY: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    placements: frozenset[str]
    match_all: bool
    cat_codes: frozenset[int]
    trigger_rows: frozenset[int]  # trigger SKUs and items matching the attribute predicates
    sku_rows: frozenset[int]  # trigger SKUs only ("all" needs each of them)
    attr_rows: frozenset[int] | None  # None = no attribute predicate
    style_cols: frozenset[int]
    min_quantity: int
    unless_codes: frozenset[int]
    suggest_parts: tuple[tuple[int, np.ndarray], ...]  # (category code or -1 for SKUs, rows)
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
        attr_cache: dict[tuple[str, str], np.ndarray] = {}

        enabled = [r for r in rules if r.enabled]
        # stable: priority high first, then the given order
        ordered = sorted(enumerate(enabled), key=lambda ir: (-ir[1].priority, ir[0]))
        self.rules_: list[_Compiled] = []
        self.problems_: dict[str, list[str]] = {}
        by_cat: dict[str, dict[int, list[int]]] = {p: {} for p in PAGES}
        by_row: dict[str, dict[int, list[int]]] = {p: {} for p in PAGES}
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
            attr_rows: frozenset[int] | None = None
            if trig.attributes:
                mask = np.ones(n, dtype=bool)
                for cond in trig.attributes:
                    key = (cond.key.lower(), cond.value.lower())
                    if key not in attr_cache:
                        attr_cache[key] = _attribute_mask(catalog, *key)
                    mask &= attr_cache[key]
                attr_rows = frozenset(np.flatnonzero(mask).tolist())
            if trig.match == "all" and (missing_cats or missing_skus or attr_rows == _EMPTY):
                problems.append("trigger can never match this catalog (match: all)")
                self.problems_[rule.id] = problems
                continue
            if not codes and not sku_rows and not attr_rows:
                problems.append("trigger matches nothing in this catalog")
                self.problems_[rule.id] = problems
                continue
            c = constraints = rule.suggest.constraints
            ok = stock.copy() if c.in_stock else np.ones(n, dtype=bool)
            if constraints.max_price is not None:
                ok &= prices <= constraints.max_price
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
            if not any(len(p[1]) for p in parts):
                problems.append("no suggested item passes the constraints in this catalog")
            compiled = _Compiled(
                rule=rule,
                placements=frozenset(rule.placements),
                match_all=trig.match == "all",
                cat_codes=frozenset(codes),
                trigger_rows=frozenset(sku_rows) | (attr_rows or _EMPTY),
                sku_rows=frozenset(sku_rows),
                attr_rows=attr_rows,
                style_cols=frozenset(self.style_cols_[s] for s in trig.styles if s in self.style_cols_),
                min_quantity=trig.min_quantity,
                unless_codes=frozenset(cat_code[u] for u in rule.unless if u in cat_code),
                suggest_parts=tuple(parts),
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
            if compiled.match_all:
                key_codes = codes[:1]
                key_rows = sku_rows[:1] if not key_codes else []
                if not key_codes and not key_rows and attr_rows:
                    key_rows = list(attr_rows)
            else:
                key_codes, key_rows = codes, list(compiled.trigger_rows)
            for page in compiled.placements:
                for code in key_codes:
                    by_cat[page].setdefault(code, []).append(idx)
                for r in key_rows:
                    by_row[page].setdefault(r, []).append(idx)
        self.by_cat_ = {p: {k: tuple(v) for k, v in d.items()} for p, d in by_cat.items()}
        self.by_row_ = {p: {k: tuple(v) for k, v in d.items()} for p, d in by_row.items()}
        self.ids_ = {c.rule.id: i for i, c in enumerate(self.rules_)}
        if self.problems_:
            log.info("rules compiled with problems: %s", self.problems_)
        return self

    def _style_masks(self, styles: np.ndarray) -> np.ndarray:
        """(n_styles, n_items) bool: item i matches style s (style-neutral items match all)."""
        styles = np.clip(styles.astype(np.float32), 0, None)
        top = styles.max(axis=1)
        neutral = top <= 1e-6
        masks = (styles >= self.style_share * top[:, None]).T & ~neutral[None, :]
        return masks | neutral[None, :]

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
        by_cat, by_row = self.by_cat_[page], self.by_row_[page]
        candidates: set[int] = set()
        for code in set(codes):
            hit = by_cat.get(code)
            if hit:
                candidates.update(hit)
        for r in rows:
            hit = by_row.get(r)
            if hit:
                candidates.update(hit)
        if not candidates:
            return []
        basket_cats = set(codes)
        basket_set = set(rows)
        basket_arr: np.ndarray | None = None
        style_idx = [
            self.style_cols_[s] for s in (style.top, style.second) if s is not None and s in self.style_cols_
        ]
        style_set = set(style_idx)
        style_mask: np.ndarray | None = None
        when: datetime | None = None
        fired: list[FiredRule] = []
        for i in sorted(candidates):
            cr = self.rules_[i]
            if cr.unless_codes and not cr.unless_codes.isdisjoint(basket_cats):
                continue
            if cr.match_all and not (
                cr.cat_codes <= basket_cats
                and cr.sku_rows <= basket_set
                and (cr.attr_rows is None or not cr.attr_rows.isdisjoint(basket_set))
            ):
                continue
            if cr.style_cols and cr.style_cols.isdisjoint(style_set):
                continue
            if cr.min_quantity > 1:
                total = sum(
                    q for r, c, q in zip(rows, codes, quantities, strict=True)
                    if c in cr.cat_codes or r in cr.trigger_rows
                )
                if total < cr.min_quantity:
                    continue
            if cr.has_window:
                when = when or _aware(now)
                if not cr.rule.active_at(when):
                    continue
            parts = [
                p for code, p in cr.suggest_parts
                if len(p) and not (cr.skip_in_basket and code in basket_cats)
            ]
            if not parts:
                continue
            cand = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if cr.match_style and style_idx:
                if style_mask is None:
                    style_mask = self.style_masks_[style_idx].any(axis=0)
                cand = cand[style_mask[cand]]
            if not cr.suggest_codes.isdisjoint(basket_cats) or not cr.suggest_skus.isdisjoint(basket_set):
                if basket_arr is None:
                    basket_arr = np.asarray(rows, dtype=np.int64)
                cand = cand[~np.isin(cand, basket_arr)]
            if len(cand) == 0:
                continue
            fired.append(
                FiredRule(
                    rule_id=cr.rule.id,
                    reason=cr.reason,
                    candidate_rows=tuple(cand.tolist()),
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
    return [order[bounds[c]: bounds[c + 1]].astype(np.int64) for c in range(n_codes)]


def _attribute_mask(catalog: Catalog, key: str, value: str) -> np.ndarray:
    """(n_items,) bool: items whose attribute ``key`` equals ``value`` (case-insensitive)."""
    frame = catalog.frame
    if key in ATTRIBUTE_COLUMNS:
        col = frame[key]
        return np.fromiter((v is not None and str(v).lower() == value for v in col), bool, len(col))
    return np.fromiter(
        (
            any(str(k).lower() == key and str(v).lower() == value for k, v in attrs.items())
            for attrs in frame["attributes"]
        ),
        bool,
        len(frame),
    )
