"""What the rules API does beyond storing: rendering a stored rule, validating a rule against
the served catalog, previewing a basket and diffing an import. The routes in ``api.py`` only
validate and map; the work is here so it can be tested and reused without HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from feature_store.event_log import EventLog
from feature_store.impression_log import ImpressionLog
from feature_store.rule_effect import source_effects
from recsys.controls import (
    CompiledControls,
    Control,
    check_control_against_catalog,
    control_summary,
    parse_control,
)
from recsys.data.catalog import Catalog
from recsys.recommendation import NO_STYLE, BasketLine, RecommendationRequest, StyleReading
from recsys.rules.engine import RuleEngine
from recsys.rules.mining import Suggestion
from recsys.rules.model import (
    FieldError,
    Rule,
    RuleValidationError,
    check_against_catalog,
    parse_rule,
    rule_summary,
)
from recsys.rules.slots import fill_accessory_slots
from recsys.settings import Settings
from recsys.timestamps import to_utc
from serving.rules import schemas as s
from serving.rules.runtime import CatalogView, RulesRuntime
from serving.rules.store import RuleVersion, StoredRule, field_diff


def rule_out(
    runtime: RulesRuntime, stored: StoredRule, engine: RuleEngine | None = None
) -> s.RuleOut:
    """The API shape of a stored rule, with the problems the compiled engine found in it."""
    engine = engine if engine is not None else runtime.engine()
    problems = list(engine.problems_.get(stored.rule.id, [])) if engine is not None else []
    return s.RuleOut(
        id=stored.rule.id,
        version=stored.version,
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
        summary=rule_summary(stored.rule),
        rule=stored.rule.to_document(),
        problems=problems,
    )


def history_out(versions: Sequence[RuleVersion]) -> list[s.VersionOut]:
    """Versions newest first, each with its field-level changes against the version before."""
    out = []
    for i, v in enumerate(versions):
        before = versions[i + 1].document if i + 1 < len(versions) else None
        diff = (
            field_diff(before, v.document) if before is not None and v.document is not None else []
        )
        out.append(
            s.VersionOut(
                version=v.version,
                action=v.action,
                author=v.author,
                at=v.at,
                changes=v.changes,
                rule=v.document,
                diff=[s.FieldChangeOut(field=f, old=o, new=n) for f, o, n in diff],
            )
        )
    return out


def control_out(runtime: RulesRuntime, stored: StoredRule[Control]) -> s.ControlOut:
    """The API shape of a stored control, with the names the served catalog lacks."""
    view = runtime.catalog_view()
    problems = (
        [str(e) for e in check_control_against_catalog(stored.rule, view.catalog)] if view else []
    )
    return s.ControlOut(
        id=stored.rule.id,
        version=stored.version,
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
        summary=control_summary(stored.rule),
        control=stored.rule.to_document(),
        problems=problems,
    )


def validated_control(runtime: RulesRuntime, document: Any, check_catalog: bool = True) -> Control:
    """Parse a control; ``RuleValidationError`` lists every bad field, catalog names included."""
    control = parse_control(document)
    view = runtime.catalog_view()
    if check_catalog and view is not None:
        errors = check_control_against_catalog(control, view.catalog)
        if errors:
            raise RuleValidationError(errors)
    return control


def catalog_errors(view: CatalogView | None, rule: Rule) -> list[FieldError]:
    """Names in ``rule`` the served catalog lacks (none when no catalog is loaded)."""
    if view is None:
        return []
    cat = view.catalog
    return check_against_catalog(rule, cat.categories, cat.ids, cat.taxonomy.slugs)


def validated_rule(runtime: RulesRuntime, document: Any, check_catalog: bool = True) -> Rule:
    """Parse ``document``; ``RuleValidationError`` lists every bad field, catalog names included."""
    rule = parse_rule(document)
    if check_catalog:
        errors = catalog_errors(runtime.catalog_view(), rule)
        if errors:
            raise RuleValidationError(errors)
    return rule


def matching_rules(
    runtime: RulesRuntime, q: str | None, tag: str | None, enabled: bool | None
) -> list[s.RuleOut]:
    """Live rules whose id, name, description, summary or tags hold every word of ``q``,
    highest priority first."""
    engine = runtime.engine()
    words = (q or "").lower().split()
    out = []
    for st in runtime.store.list():
        r = st.rule
        if enabled is not None and r.enabled != enabled:
            continue
        if tag and tag not in r.tags:
            continue
        if words:
            text = " ".join(
                [r.id, r.name, r.description, rule_summary(r), " ".join(r.tags)]
            ).lower()
            if not all(w in text for w in words):
                continue
        out.append(rule_out(runtime, st, engine))
    out.sort(key=lambda o: (-o.rule["priority"], o.id))
    return out


def covering_rules(rules: Sequence[Rule], suggestion: Suggestion) -> list[str]:
    """Enabled rules (other than the suggestion's own) that already suggest its accessory for
    its anchor."""
    return [
        r.id
        for r in rules
        if r.enabled
        and r.id != suggestion.id
        and suggestion.anchor in r.trigger.categories
        and suggestion.accessory in r.suggest.categories
    ]


SUGGESTION_SORTS = {
    "evidence": None,  # the miner's order: strongest evidence first
    "completion": lambda sg: -sg.completion_rate,
    "forgotten": lambda sg: -sg.forgotten_rate,
    "lift": lambda sg: -sg.lift,
    "support": lambda sg: -sg.anchor_orders,
}


def extendable_rules(rules: Sequence[Rule], suggestion: Suggestion) -> list[str]:
    """Enabled rules triggered by the suggestion's anchor that do not suggest its accessory yet:
    accepting the suggestion can add the accessory to one of them instead of a new rule."""
    return [
        r.id
        for r in rules
        if r.enabled
        and suggestion.anchor in r.trigger.categories
        and suggestion.accessory not in r.suggest.categories
    ]


def find_suggestions(
    runtime: RulesRuntime,
    *,
    pending: bool = False,
    uncovered: bool = False,
    category: str | None = None,
    min_support: int = 0,
    min_lift: float = 0.0,
    min_forgotten: float = 0.0,
    sort: str = "evidence",
    offset: int = 0,
    limit: int = 100,
) -> s.SuggestionList:
    """One page of mined suggestions after filters: not accepted yet (``pending``), not covered
    by an enabled rule (``uncovered``), naming ``category`` as anchor or accessory, at least
    ``min_support`` anchor orders, ``min_lift`` lift and ``min_forgotten`` forgotten share;
    sorted by ``sort`` (one of ``SUGGESTION_SORTS``); ``total`` counts every match."""
    stored = [st.rule for st in runtime.store.list()]
    live = {r.id for r in stored}
    rows = []
    for sg in runtime.suggestions():
        if pending and sg.id in live:
            continue
        if category and category not in (sg.anchor, sg.accessory):
            continue
        if (
            sg.anchor_orders < min_support
            or sg.lift < min_lift
            or sg.forgotten_rate < min_forgotten
        ):
            continue
        covered = covering_rules(stored, sg)
        if uncovered and (covered or sg.id in live):
            continue
        rows.append((sg, covered))
    key = SUGGESTION_SORTS[sort]
    if key is not None:
        rows.sort(key=lambda row: key(row[0]))
    return s.SuggestionList(
        suggestions=[
            s.SuggestionOut(
                **sg.to_dict(),
                accepted=sg.id in live,
                covered_by=covered,
                extends=extendable_rules(stored, sg),
                rule=sg.to_rule().to_document(),
            )
            for sg, covered in rows[offset : offset + limit]
        ],
        total=len(rows),
        offset=offset,
    )


def import_diff(live: Mapping[str, Any], rules: Sequence[Any], mode: str) -> s.ImportOut:
    """What an import would do to the live rules, without writing (``dry_run``)."""
    ids = {r.id for r in rules}
    return s.ImportOut(
        dry_run=True,
        created=[r.id for r in rules if r.id not in live],
        updated=[r.id for r in rules if r.id in live and live[r.id] != r],
        unchanged=[r.id for r in rules if r.id in live and live[r.id] == r],
        deleted=[i for i in live if i not in ids] if mode == "replace" else [],
    )


def product_out(catalog: Catalog, row: int) -> s.ProductOut:
    rec = catalog.frame.iloc[row]
    return s.ProductOut(
        sku=str(rec["sku"]),
        title=str(rec["title"]),
        category=rec["category"],
        price=float(rec["price"]),
        in_stock=bool(rec["in_stock"]),
        styles=list(rec["styles"]),
    )


def style_out(style: StyleReading) -> dict[str, Any] | None:
    if style.top is None:
        return {"top": None, "confidence": style.confidence, "explanation": style.explanation}
    return {
        "top": style.top,
        "second": style.second,
        "confidence": round(style.confidence, 3),
        "explanation": style.explanation,
    }


def preview_engine(
    runtime: RulesRuntime,
    view: CatalogView,
    draft_doc: dict[str, Any] | None,
    only_draft: bool = False,
) -> RuleEngine:
    """The stored rules (or none, ``only_draft``) with the draft in place of its id.
    A bad draft raises ``RuleValidationError`` with paths under ``draft.``."""
    rules = [] if only_draft else [st.rule for st in runtime.store.list()]
    if draft_doc is not None:
        try:
            draft = validated_rule(runtime, {k: v for k, v in draft_doc.items() if k != "version"})
        except RuleValidationError as exc:
            raise RuleValidationError(
                [FieldError(f"draft.{e.path}", e.message) for e in exc.errors]
            ) from None
        rules = [r for r in rules if r.id != draft.id] + [
            draft.model_copy(update={"enabled": True})
        ]
    return RuleEngine.compile(rules, view.catalog, view.item_styles)


def preview_controls(
    runtime: RulesRuntime, view: CatalogView, body: s.PreviewIn
) -> CompiledControls:
    """The stored answer controls with the body's draft control in place of its id (a bad
    draft raises ``RuleValidationError`` with paths under ``draft_control.``)."""
    controls = [st.rule for st in runtime.controls_store.list()]
    if body.draft_control is not None:
        try:
            draft = validated_control(
                runtime, {k: v for k, v in body.draft_control.items() if k != "version"}
            )
        except RuleValidationError as exc:
            raise RuleValidationError(
                [FieldError(f"draft_control.{e.path}", e.message) for e in exc.errors]
            ) from None
        controls = [c for c in controls if c.id != draft.id] + [
            draft.model_copy(update={"enabled": True})
        ]
    return CompiledControls(controls, view.catalog, view.item_styles)


_VERB = {"pin": "pinned", "boost": "boosted", "bury": "buried", "hide": "hidden"}


def preview(
    runtime: RulesRuntime,
    view: CatalogView,
    engine: RuleEngine,
    body: s.PreviewIn,
    controls: CompiledControls | None = None,
) -> s.PreviewOut:
    """What the page would show for ``body.basket``: the served recommender's answer when it
    serves this catalog, else accessories picked by price (one per suggested category in turn, then second
    choices in free slots)."""
    catalog = view.catalog
    basket = tuple(BasketLine(line.sku, line.quantity) for line in body.basket)
    unknown = [line.sku for line in basket if line.sku not in catalog.ids]
    known = [line for line in basket if line.sku in catalog.ids]
    rec = runtime.recommender()
    by_id = {r.id: r for r in engine.rules}
    style: StyleReading = NO_STYLE
    items: list[s.ItemOut] = []
    accessories: list[s.AccessoryOut] = []
    source: Literal["recommender", "rules-only"] = "rules-only"
    note = ""
    if rec is not None and rec.catalog is catalog:
        request = RecommendationRequest(
            basket=basket,
            user_id=body.user_id,
            page=body.page,
            k=body.k,
            accessory_slots=runtime.settings.accessory_slots,
            controls=controls,
        )
        result = rec.recommend(request, rules=engine)
        style = result.style
        source = "recommender"
        by_sku: dict[str, list[str]] = {}
        for sku, control_id, action in result.controls_applied:  # named for the merchandiser only
            by_sku.setdefault(sku, []).append(f"{_VERB[action]} by {control_id}")
        items = [
            s.ItemOut(
                sku=i.sku,
                title=str(catalog.frame["title"].iat[catalog.ids.row(i.sku)]),
                score=float(i.score),
                reason=i.reason + (f" [{'; '.join(by_sku[i.sku])}]" if i.sku in by_sku else ""),
                controls=[c.split(" by ", 1)[1] for c in by_sku.get(i.sku, [])],
            )
            for i in result.items
        ]
        shown = {i.sku for i in result.items}
        hidden = sorted({cid for sku, cid, action in result.controls_applied if action == "hide"})
        if hidden:
            note = f"hidden by {', '.join(hidden)}: " + ", ".join(
                sorted(
                    {
                        sku
                        for sku, _, a in result.controls_applied
                        if a == "hide" and sku not in shown
                    }
                )[:10]
            )
        for slot in result.accessories:
            p = product_out(catalog, catalog.ids.row(slot.sku))
            accessories.append(
                s.AccessoryOut(
                    sku=p.sku,
                    title=p.title,
                    category=p.category,
                    price=p.price,
                    rule_id=slot.rule_id,
                    reason=slot.reason,
                )
            )
        if body.page == "product":
            note = "the recommender fills accessory slots on cart and checkout pages only"
    else:
        note = (
            "no recommender loaded: accessories picked by lowest price, one per suggested category,"
            " then a second choice in free slots"
        )
    rows = [catalog.ids.row(line.sku) for line in known]
    fired = engine.match(rows, [line.quantity for line in known], style, body.page)
    fired_out = []
    for f in fired:
        rule = by_id[f.rule_id]
        cand = np.asarray(f.candidate_rows, dtype=np.int64)
        fired_out.append(
            s.FiredOut(
                rule_id=f.rule_id,
                name=rule.name,
                reason=f.reason,
                priority=f.priority,
                max_items=f.max_items,
                candidate_count=len(cand),
                candidates=[
                    product_out(catalog, int(r)) for r in cheapest_spread(catalog, rule, cand, 5)
                ],
            )
        )
    if source == "rules-only":  # the same one section as the recommender's, cheapest first
        slots = fill_accessory_slots(
            fired,
            catalog.category_codes,
            cap=runtime.settings.accessory_slots,
            taken_rows=rows,
            score=lambda cand: -catalog.prices[cand],
        )
        for filled in slots:
            p = product_out(catalog, filled.row)
            accessories.append(
                s.AccessoryOut(
                    sku=p.sku,
                    title=p.title,
                    category=p.category,
                    price=p.price,
                    rule_id=filled.rule_id,
                    reason=filled.reason,
                )
            )
    return s.PreviewOut(
        source=source,
        style=style_out(style),
        unknown_skus=unknown,
        fired=fired_out,
        accessories=accessories,
        items=items,
        note=note,
    )


def cheapest_spread(catalog: Catalog, rule: Rule, cand: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` rows: the cheapest of each suggested category in the rule's order, then the
    next cheapest of each, and so on (explicit SKUs count as one more group)."""
    if len(cand) == 0 or n <= 0:
        return []
    prices = catalog.prices[cand]
    order = cand[np.argsort(prices, kind="stable")]
    codes = catalog.category_codes[order]
    names = list(catalog.categories)
    groups: list[list[int]] = []
    for name in rule.suggest.categories:
        if name in names:
            code = names.index(name)
            groups.append([int(r) for r, c in zip(order, codes, strict=True) if c == code])
    grouped = {r for g in groups for r in g}
    groups.append([int(r) for r in order if int(r) not in grouped])
    out: list[int] = []
    depth = 0
    while len(out) < n and any(len(g) > depth for g in groups):
        for g in groups:
            if len(g) > depth and len(out) < n:
                out.append(g[depth])
        depth += 1
    return out


def overlap_warnings(rules: Sequence[Rule], rule: Rule) -> list[str]:
    """Other enabled rules that already suggest one of ``rule``'s categories for one of its
    trigger categories or SKUs (shown on save: the answer would merge them into one slot)."""
    if not rule.enabled:
        return []
    out = []
    for other in rules:
        if other.id == rule.id or not other.enabled:
            continue
        trig = (set(rule.trigger.categories) & set(other.trigger.categories)) | (
            set(rule.trigger.skus) & set(other.trigger.skus)
        )
        sugg = (set(rule.suggest.categories) & set(other.suggest.categories)) | (
            set(rule.suggest.skus) & set(other.suggest.skus)
        )
        if trig and sugg:
            out.append(
                f"{other.id} already suggests {', '.join(sorted(sugg))} for {', '.join(sorted(trig))}"
            )
    return out


def _counts(catalog: Catalog, counter: Any, n: int = 10) -> list[s.ProductCountOut]:
    return [
        s.ProductCountOut(sku=p.sku, title=p.title, category=p.category, count=int(c))
        for p, c in ((product_out(catalog, int(r)), c) for r, c in counter.most_common(n))
    ]


def replay(
    runtime: RulesRuntime, view: CatalogView, body: s.ReplayIn, interactions: Any
) -> s.ReplayOut:
    """Replay ``body``'s draft rule and/or control over ``interactions``' purchases (the event
    store's last ``body.days`` days), most recent baskets first."""
    from collections import Counter

    from recsys.rules.replay import baskets_from_orders, replay_rule

    catalog = view.catalog
    buys = interactions.purchases()
    buys = buys.sort_values("ts", kind="stable")
    rows = (
        interactions.item_rows(catalog)[buys.index.to_numpy()]
        if len(buys)
        else np.empty(0, np.int64)
    )
    baskets = baskets_from_orders(buys["order_id"].to_numpy(), rows, buys["quantity"].to_numpy())
    baskets = baskets[-body.max_baskets :]
    out = s.ReplayOut(days=body.days, baskets=len(baskets))
    if not baskets:
        out.note = (
            f"no purchases in the event store in the last {body.days} days: nothing to replay"
        )
    if body.draft is not None:
        engine = preview_engine(runtime, view, body.draft)
        rule = next(r for r in engine.rules if r.id == body.draft.get("id"))
        result = replay_rule(
            engine, rule.id, baskets, page=body.page, cap=runtime.settings.accessory_slots
        )
        pairs = {(a, b) for a in rule.trigger.categories for b in rule.suggest.categories}
        out.rule = s.RuleReplayOut(
            rule_id=rule.id,
            fired=result.fired,
            fired_share=round(result.fired_share, 4),
            most_shown=_counts(catalog, result.shown),
            overlaps=[
                s.OverlapOut(
                    rule_id=rid,
                    baskets=n,
                    categories=sorted(
                        catalog.categories[c] for c in result.overlap_categories[rid]
                    ),
                )
                for rid, n in result.overlaps.most_common()
            ],
            evidence=[
                s.EvidenceOut(
                    anchor=sg.anchor,
                    accessory=sg.accessory,
                    completion_rate=sg.completion_rate,
                    sentence=sg.sentence,
                )
                for sg in runtime.suggestions()
                if (sg.anchor, sg.accessory) in pairs
            ],
        )
    if body.draft_control is not None:
        rec = runtime.recommender()
        if rec is None or rec.catalog is not catalog:
            out.note = (
                out.note + "; " if out.note else ""
            ) + "no recommender loaded: controls cannot be replayed"
        else:
            try:
                control = validated_control(
                    runtime, {k: v for k, v in body.draft_control.items() if k != "version"}
                )
            except RuleValidationError as exc:
                raise RuleValidationError(
                    [FieldError(f"draft_control.{e.path}", e.message) for e in exc.errors]
                ) from None
            compiled = CompiledControls(
                [control.model_copy(update={"enabled": True})], catalog, view.item_styles
            )
            affected: Counter[int] = Counter()
            acted = 0
            for b_rows, b_qty in baskets:
                request = RecommendationRequest(
                    basket=tuple(
                        BasketLine(str(catalog.skus[r]), int(q))
                        for r, q in zip(b_rows, b_qty, strict=True)
                    ),
                    page=body.page,
                    controls=compiled,
                    accessory_slots=runtime.settings.accessory_slots,
                )
                applied = rec.recommend(request).controls_applied
                if applied:
                    acted += 1
                    for sku in {a[0] for a in applied}:
                        affected[catalog.ids.row(sku)] += 1
            out.control = s.ControlReplayOut(
                control_id=control.id,
                answers=len(baskets),
                acted=acted,
                acted_share=round(acted / len(baskets), 4) if baskets else 0.0,
                most_affected=_counts(catalog, affected),
            )
    return out


@dataclass(frozen=True)
class EffectWindow:
    """Answers shown ``start <= t < end`` (UTC)."""

    start: datetime
    end: datetime


def effect_window(
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    days: int | None = None,
    now: datetime | None = None,
) -> EffectWindow:
    """The window a request asks for: ``from``/``to`` (either may be left out: ``to`` defaults
    to now, ``from`` to ``effect_default_days`` before ``to``), or the last ``days`` days, or the
    last ``effect_default_days``. ``RuleValidationError`` names the bad query parameter."""
    now = to_utc(now or datetime.now(UTC))
    if days is not None and (start is not None or end is not None):
        raise RuleValidationError([FieldError("days", "send either days or from/to, not both")])
    limit = settings.effect_max_days
    if days is not None:
        if not 1 <= days <= limit:
            raise RuleValidationError(
                [
                    FieldError(
                        "days",
                        f"must be between 1 and {limit} (RECSYS_EFFECT_MAX_DAYS), got {days}",
                    )
                ]
            )
        return EffectWindow(now - timedelta(days=days), now)
    try:
        end_at = to_utc(end) if end is not None else now
    except ValueError as exc:
        raise RuleValidationError([FieldError("to", str(exc))]) from None
    try:
        start_at = (
            to_utc(start)
            if start is not None
            else end_at - timedelta(days=settings.effect_default_days)
        )
    except ValueError as exc:
        raise RuleValidationError([FieldError("from", str(exc))]) from None
    if end_at <= start_at:
        raise RuleValidationError(
            [
                FieldError(
                    "to",
                    f"must be after from ({start_at.isoformat()}), got {end_at.isoformat()}: "
                    "swap them or widen the window",
                )
            ]
        )
    if end_at - start_at > timedelta(days=limit):
        span = (end_at - start_at) / timedelta(days=1)
        raise RuleValidationError(
            [
                FieldError(
                    "from",
                    f"the window spans {span:.1f} days, at most {limit} "
                    "(RECSYS_EFFECT_MAX_DAYS): narrow it or ask for several windows",
                )
            ]
        )
    return EffectWindow(start_at, end_at)


class EffectReader:
    """Rules' and controls' effects for the API, from ``feature_store.rule_effect`` (the one
    owner of the computation). ``flush`` writes this process's queued impressions first, so
    the answers just given count; ``prices`` value purchases sent without a price."""

    def __init__(
        self,
        settings: Settings,
        impressions: Callable[[], ImpressionLog],
        events: Callable[[], EventLog],
        *,
        flush: Callable[[], None] | None = None,
        prices: Callable[[], dict[str, float] | None] | None = None,
    ) -> None:
        self.settings = settings
        self._impressions = impressions  # opened on first use: a plain list touches no table
        self._events = events
        self._flush = flush
        self._prices = prices

    def __call__(
        self,
        kind: Literal["rule", "control"],
        window: EffectWindow,
        ids: Sequence[str] | None = None,
    ) -> dict[str, s.EffectOut]:
        """Every id of ``ids`` (zeros when it never acted), or every one that acted."""
        if self._flush is not None:
            self._flush()
        found = source_effects(
            self._impressions(),
            self._events(),
            kind,
            start=window.start,
            end=window.end,
            window_hours=self.settings.attribution_window_hours,
            source_ids=ids,
            prices=self._prices() if self._prices is not None else None,
        )
        return {
            i: s.EffectOut.model_validate({**e.to_dict(), "id": e.source_id})
            for i, e in found.items()
        }


def catalog_prices(runtime: RulesRuntime) -> dict[str, float] | None:
    """The served catalog's prices by SKU (purchases sent without a price are valued at it)."""
    view = runtime.catalog_view()
    if view is None:
        return None
    cat = view.catalog
    return dict(zip(cat.skus.tolist(), cat.prices.tolist(), strict=True))
