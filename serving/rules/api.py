"""The rules API: ``/v1/rules...``. Every route needs the merchandiser key (rules are internal
business data, reads included); the storefront never calls these.

Writes carry the version they were based on (``If-Match: "3"`` or a ``version`` field/query);
a stale one gets 409 with the current rule. Rule bodies are validated by the rule model, so a
422 lists every bad field by path (``suggest.categories[0]``), including names the served
catalog does not know, with a "did you mean".
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import numpy as np
from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import JSONResponse, PlainTextResponse

from recsys.recommendation import NO_STYLE, BasketLine, RecommendationRequest, StyleReading
from recsys.rules.engine import RuleEngine
from recsys.rules.model import (
    FieldError,
    Rule,
    RuleValidationError,
    check_against_catalog,
    parse_rule,
    rule_summary,
)
from recsys.rules.rules_file import dump_rules_yaml, parse_rules_yaml
from serving.auth import require_merchandiser
from serving.rules import schemas as s
from serving.rules.runtime import CatalogView, RulesRuntime
from serving.rules.store import RuleConflict, RuleNotFound, StoredRule

log = logging.getLogger(__name__)
MAX_IMPORT_BYTES = 2 * 1024 * 1024
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No `Authorization: Bearer <merchandiser key>` header."},
    403: {"description": "Wrong merchandiser key."},
    503: {"description": "Merchandiser key not configured on the server (RECSYS_MERCHANDISER_KEY)."},
}
INVALID: dict[int | str, dict[str, Any]] = {422: {"model": s.ValidationErrorOut, "description": "Every bad field, by path."}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": s.ConflictOut, "description": "Based on a stale version; `current` is stored."}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such rule."}}


def _author(x_author: str | None) -> str:
    name = (x_author or "").strip()[:100]
    return name or "merchandiser"


class RuleInputError(Exception):
    """A 422 answer listing every bad field (see ``rule_input_error_handler``)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


async def rule_input_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors if isinstance(exc, RuleInputError) else []
    detail = "; ".join(str(e) for e in errors[:5])
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return JSONResponse({"detail": detail or "invalid rule", "errors": [e.to_dict() for e in errors]}, 422)


def _invalid(errors: list[FieldError]) -> RuleInputError:
    return RuleInputError(errors)


def _parse_version(if_match: str | None, version: Any) -> int | None:
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int | str) or not str(version).isdigit():
            raise _invalid([FieldError("version", f"must be a whole number, got {version!r}")])
        return int(version)
    if if_match:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise _invalid([FieldError("If-Match", f'must be a version number like "3", got {if_match!r}')])
        return int(text)
    return None


def _require_version(if_match: str | None, version: Any) -> int:
    v = _parse_version(if_match, version)
    if v is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            detail="send the version your change is based on: header 'If-Match: \"<version>\"' or a 'version' field",
        )
    return v


AuthorHeader = Annotated[
    str | None,
    Header(max_length=200, description="Who makes the change (recorded in the history).", examples=["alice"]),
]
IfMatchHeader = Annotated[
    str | None, Header(description="The version your change is based on.", examples=['"3"'])
]


class RulesApi:
    """Route handlers over one ``RulesRuntime`` (kept as methods so tests can build many apps)."""

    def __init__(self, runtime: RulesRuntime) -> None:
        self.runtime = runtime

    # -- helpers -----------------------------------------------------------------------------
    def out(self, stored: StoredRule, engine: RuleEngine | None = None) -> s.RuleOut:
        engine = engine if engine is not None else self.runtime.engine()
        problems = list(engine.problems_.get(stored.rule.id, [])) if engine is not None else []
        return s.RuleOut(
            id=stored.rule.id, version=stored.version, updated_at=stored.updated_at,
            updated_by=stored.updated_by, summary=rule_summary(stored.rule),
            rule=stored.rule.to_document(), problems=problems,
        )

    def conflict(self, exc: RuleConflict) -> JSONResponse:
        current = self.out(exc.current).model_dump(mode="json") if exc.current else None
        headers = {"ETag": f'"{exc.current.version}"'} if exc.current else {}
        return JSONResponse({"detail": str(exc), "current": current}, status_code=409, headers=headers)

    def validated(self, document: Any, check_catalog: bool = True) -> Rule:
        rule = parse_rule(document)
        if check_catalog:
            view = self.runtime.catalog_view()
            if view is not None:
                errors = check_against_catalog(
                    rule, view.catalog.categories, view.catalog.ids, view.catalog.taxonomy.slugs
                )
                if errors:
                    raise RuleValidationError(errors)
        return rule

    def after_write(self) -> None:
        self.runtime.refresh()

    def view_or_503(self) -> CatalogView:
        view = self.runtime.catalog_view()
        if view is None:
            raise HTTPException(503, "no model loaded yet: the catalog is unavailable", headers={"Retry-After": "5"})
        return view


def build_api_router(runtime: RulesRuntime) -> APIRouter:
    """All ``/v1/rules`` routes, bound to ``runtime``."""
    api = RulesApi(runtime)
    router = APIRouter(
        prefix="/v1/rules", tags=["rules"], dependencies=[Depends(require_merchandiser)],
        responses=AUTH_RESPONSES,
    )

    @router.get("", response_model=s.RuleList, summary="List rules (search by text, tag, state)")
    def list_rules(
        q: Annotated[str | None, Query(max_length=200, description="Words in id, name, categories, tags.",
                                       examples=["paint"])] = None,
        tag: Annotated[str | None, Query(max_length=64, examples=["renovation"])] = None,
        enabled: Annotated[bool | None, Query(description="Only enabled (true) or disabled (false).")] = None,
    ) -> s.RuleList:
        engine = runtime.engine()
        items = runtime.store.list()
        words = (q or "").lower().split()
        out = []
        for st in items:
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
            out.append(api.out(st, engine))
        out.sort(key=lambda o: (-o.rule["priority"], o.id))
        return s.RuleList(rules=out, total=len(out))

    @router.post(
        "", status_code=201, response_model=s.RuleOut, summary="Create a rule",
        responses={**INVALID, **CONFLICT},
    )
    def create_rule(
        response: Response,
        document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_EXAMPLES)],
        x_author: AuthorHeader = None,
    ) -> Any:
        try:
            rule = api.validated(document)
            stored = runtime.store.create(rule, _author(x_author))
        except RuleValidationError as exc:
            raise _invalid(exc.errors) from None
        except RuleConflict as exc:
            return api.conflict(exc)
        api.after_write()
        response.headers["ETag"] = f'"{stored.version}"'
        response.headers["Location"] = f"/v1/rules/{rule.id}"
        return api.out(stored)

    @router.post("/validate", response_model=s.ValidateOut, summary="Check a rule without saving it")
    def validate_rule(
        document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_EXAMPLES)],
    ) -> s.ValidateOut:
        doc = {k: v for k, v in document.items() if k != "version"}
        try:
            rule = api.validated(doc)
        except RuleValidationError as exc:
            return s.ValidateOut(valid=False, errors=[s.FieldErrorOut(**e.to_dict()) for e in exc.errors])
        problems: list[str] = []
        engine = runtime.compile([rule.model_copy(update={"enabled": True})])
        if engine is not None:
            problems = engine.problems_.get(rule.id, [])
        return s.ValidateOut(valid=True, errors=[], summary=rule_summary(rule), problems=problems)

    @router.post(
        "/preview", response_model=s.PreviewOut, summary="What checkout would show for a basket",
        responses={**INVALID, 503: {"description": "No model (catalog) loaded."}},
    )
    def preview(
        body: Annotated[
            s.PreviewIn,
            Body(openapi_examples={
                "stored": {"summary": "Stored rules on a paint basket",
                           "value": {"basket": [{"sku": "SKU-000123", "quantity": 3}], "page": "checkout"}},
                "draft": {"summary": "A draft rule alone",
                          "value": {"basket": [{"sku": "SKU-000123"}], "draft": s.EXAMPLE_RULE, "only_draft": True}},
            }),
        ],
    ) -> s.PreviewOut:
        view = api.view_or_503()
        rules = [] if body.only_draft else [st.rule for st in runtime.store.list()]
        if body.draft is not None:
            try:
                draft = api.validated({k: v for k, v in body.draft.items() if k != "version"})
            except RuleValidationError as exc:
                raise _invalid([FieldError(f"draft.{e.path}", e.message) for e in exc.errors]) from None
            rules = [r for r in rules if r.id != draft.id] + [draft.model_copy(update={"enabled": True})]
        engine = RuleEngine.compile(rules, view.catalog, view.item_styles)
        return _preview(runtime, view, engine, body)

    @router.get("/suggestions", response_model=s.SuggestionList, summary="Rules mined from order history")
    def suggestions(
        limit: Annotated[int, Query(ge=1, le=5000, description="Strongest first.")] = 100,
        pending: Annotated[bool, Query(description="Only those not accepted yet.")] = False,
    ) -> s.SuggestionList:
        stored = [st.rule for st in runtime.store.list()]
        live = {r.id for r in stored}
        items = [sg for sg in runtime.suggestions() if not (pending and sg.id in live)]

        def covered_by(sg: Any) -> list[str]:
            return [r.id for r in stored if r.enabled and r.id != sg.id
                    and sg.anchor in r.trigger.categories and sg.accessory in r.suggest.categories]

        return s.SuggestionList(
            suggestions=[
                s.SuggestionOut(**sg.to_dict(), accepted=sg.id in live, covered_by=covered_by(sg),
                                rule=sg.to_rule().to_document())
                for sg in items[:limit]
            ],
            total=len(items),
        )

    @router.post(
        "/suggestions/{suggestion_id}/accept", status_code=201, response_model=s.RuleOut,
        summary="Turn a mined suggestion into a rule", responses={**NOT_FOUND, **CONFLICT},
    )
    def accept_suggestion(suggestion_id: str, response: Response, x_author: AuthorHeader = None) -> Any:
        found = next((sg for sg in runtime.suggestions() if sg.id == suggestion_id), None)
        if found is None:
            raise HTTPException(404, f"no mined suggestion {suggestion_id!r}")
        try:
            stored = runtime.store.create(found.to_rule(), _author(x_author))
        except RuleConflict as exc:
            return api.conflict(exc)
        api.after_write()
        response.headers["ETag"] = f'"{stored.version}"'
        return api.out(stored)

    @router.get(
        "/export", response_class=PlainTextResponse, summary="All rules as YAML",
        responses={200: {"content": {"application/yaml": {"example": "version: 1\nrules:\n- id: paint-gloves\n"}}}},
    )
    def export_rules() -> PlainTextResponse:
        text = dump_rules_yaml([st.rule for st in runtime.store.list()])
        return PlainTextResponse(
            text, media_type="application/yaml",
            headers={"Content-Disposition": 'attachment; filename="rules.yaml"'},
        )

    @router.post(
        "/import", response_model=s.ImportOut, summary="Load rules from YAML (all or nothing)",
        responses=INVALID,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/yaml": {
                    "schema": {"type": "string"},
                    "example": "version: 1\nrules:\n- id: wallpaper-paste\n  name: Wallpaper needs paste\n"
                               "  trigger: {categories: [wallpaper]}\n  suggest: {categories: [wallpaper-paste]}\n",
                }},
            }
        },
    )
    async def import_rules(
        request: Request,
        x_author: AuthorHeader = None,
        mode: Annotated[str, Query(pattern="^(merge|replace)$", description=(
            "merge: create/update the listed rules; replace: also delete rules not in the file."))] = "merge",
        dry_run: Annotated[bool, Query(description="Validate and report, write nothing.")] = False,
        check_catalog: Annotated[bool, Query(description="Reject names the served catalog lacks.")] = True,
    ) -> s.ImportOut:
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise HTTPException(413, f"import larger than {MAX_IMPORT_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid([FieldError("", "the body must be UTF-8 YAML text")]) from None
        view = runtime.catalog_view() if check_catalog else None

        def check(rule: Rule) -> list[FieldError]:
            if view is None:
                return []
            cat = view.catalog
            return check_against_catalog(rule, cat.categories, cat.ids, cat.taxonomy.slugs)

        try:
            rules = parse_rules_yaml(text, check)
        except RuleValidationError as exc:
            raise _invalid(exc.errors) from None
        if dry_run:
            live = {st.rule.id: st.rule for st in runtime.store.list()}
            ids = {r.id for r in rules}
            return s.ImportOut(
                dry_run=True,
                created=[r.id for r in rules if r.id not in live],
                updated=[r.id for r in rules if r.id in live and live[r.id] != r],
                unchanged=[r.id for r in rules if r.id in live and live[r.id] == r],
                deleted=[i for i in live if i not in ids] if mode == "replace" else [],
            )
        result = runtime.store.import_rules(rules, _author(x_author), mode=mode)  # type: ignore[arg-type]
        api.after_write()
        return s.ImportOut(dry_run=False, **result.__dict__)

    @router.get("/products", response_model=s.ProductList, summary="Search the served catalog (for the page)")
    def products(
        q: Annotated[str, Query(min_length=1, max_length=200, examples=["wall paint"])],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.ProductList:
        view = api.view_or_503()
        rows = np.flatnonzero(view.catalog.text_matches(q))
        return s.ProductList(items=[_product(view, int(r)) for r in rows[:limit]], total=int(len(rows)))

    @router.get("/categories", response_model=s.CategoryList, summary="Categories of the served catalog")
    def categories() -> s.CategoryList:
        view = runtime.catalog_view()
        return s.CategoryList(categories=list(view.catalog.categories) if view else [])

    @router.get("/{rule_id}", response_model=s.RuleOut, summary="One rule", responses=NOT_FOUND)
    def get_rule(rule_id: str, response: Response) -> s.RuleOut:
        try:
            stored = runtime.store.get(rule_id)
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        response.headers["ETag"] = f'"{stored.version}"'
        return api.out(stored)

    @router.put(
        "/{rule_id}", response_model=s.RuleOut, summary="Replace a rule (send the version it was based on)",
        responses={**INVALID, **CONFLICT, **NOT_FOUND, 428: {"description": "No version sent."}},
    )
    def put_rule(
        rule_id: str,
        response: Response,
        document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_UPDATE_EXAMPLES)],
        if_match: IfMatchHeader = None,
        x_author: AuthorHeader = None,
    ) -> Any:
        doc = dict(document)
        base = _require_version(if_match, doc.pop("version", None))
        doc.setdefault("id", rule_id)
        if doc["id"] != rule_id:
            raise _invalid([FieldError("id", f"must equal the id in the URL ({rule_id!r}); rules cannot be renamed")])
        try:
            rule = api.validated(doc)
            stored = runtime.store.update(rule, base, _author(x_author))
        except RuleValidationError as exc:
            raise _invalid(exc.errors) from None
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RuleConflict as exc:
            return api.conflict(exc)
        api.after_write()
        response.headers["ETag"] = f'"{stored.version}"'
        return api.out(stored)

    @router.delete(
        "/{rule_id}", response_model=s.DeletedOut, summary="Delete a rule (kept in history)",
        responses={**CONFLICT, **NOT_FOUND, 428: {"description": "No version sent."}},
    )
    def delete_rule(
        rule_id: str,
        if_match: IfMatchHeader = None,
        version: Annotated[int | None, Query(ge=1, description="Or send If-Match.")] = None,
        x_author: AuthorHeader = None,
    ) -> Any:
        base = _require_version(if_match, version)
        try:
            new_version = runtime.store.delete(rule_id, base, _author(x_author))
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RuleConflict as exc:
            return api.conflict(exc)
        api.after_write()
        return s.DeletedOut(id=rule_id, version=new_version)

    def _toggle(rule_id: str, enabled: bool, if_match: str | None, version: int | None, author: str) -> Any:
        try:
            stored = runtime.store.set_enabled(rule_id, enabled, author, _parse_version(if_match, version))
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RuleConflict as exc:
            return api.conflict(exc)
        api.after_write()
        return api.out(stored)

    @router.post(
        "/{rule_id}/enable", response_model=s.RuleOut, summary="Enable a rule",
        responses={**CONFLICT, **NOT_FOUND},
    )
    def enable_rule(
        rule_id: str, if_match: IfMatchHeader = None,
        version: Annotated[int | None, Query(ge=1, description="Optional: refuse if the rule changed since.")] = None,
        x_author: AuthorHeader = None,
    ) -> Any:
        return _toggle(rule_id, True, if_match, version, _author(x_author))

    @router.post(
        "/{rule_id}/disable", response_model=s.RuleOut, summary="Disable a rule",
        responses={**CONFLICT, **NOT_FOUND},
    )
    def disable_rule(
        rule_id: str, if_match: IfMatchHeader = None,
        version: Annotated[int | None, Query(ge=1, description="Optional: refuse if the rule changed since.")] = None,
        x_author: AuthorHeader = None,
    ) -> Any:
        return _toggle(rule_id, False, if_match, version, _author(x_author))

    @router.get("/{rule_id}/history", response_model=s.HistoryOut, summary="Every version of a rule", responses=NOT_FOUND)
    def history(rule_id: str) -> s.HistoryOut:
        try:
            versions = runtime.store.history(rule_id)
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        current = versions[0].version if versions and versions[0].document is not None else None
        return s.HistoryOut(
            id=rule_id, current_version=current,
            versions=[
                s.VersionOut(version=v.version, action=v.action, author=v.author, at=v.at,
                             changes=v.changes, rule=v.document)
                for v in versions
            ],
        )

    @router.post(
        "/{rule_id}/rollback", response_model=s.RuleOut,
        summary="Make an old version current again (as a new version)",
        responses={**CONFLICT, **NOT_FOUND, 422: {"description": "The target version is a deletion."}},
    )
    def rollback(
        rule_id: str,
        body: Annotated[s.RollbackIn, Body(openapi_examples={"undo": {"summary": "Back to version 2",
                                                                      "value": {"to_version": 2, "version": 3}}})],
        x_author: AuthorHeader = None,
    ) -> Any:
        try:
            stored = runtime.store.rollback(rule_id, body.to_version, body.version, _author(x_author))
        except RuleNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except RuleConflict as exc:
            return api.conflict(exc)
        except ValueError as exc:
            raise _invalid([FieldError("to_version", str(exc))]) from None
        api.after_write()
        return api.out(stored)

    return router


# -- preview and search helpers ---------------------------------------------------------------
def _product(view: CatalogView, row: int) -> s.ProductOut:
    rec = view.catalog.frame.iloc[row]
    return s.ProductOut(
        sku=str(rec["sku"]), title=str(rec["title"]), category=rec["category"],
        price=float(rec["price"]), in_stock=bool(rec["in_stock"]), styles=list(rec["styles"]),
    )


def _preview(runtime: RulesRuntime, view: CatalogView, engine: RuleEngine, body: s.PreviewIn) -> s.PreviewOut:
    catalog = view.catalog
    basket = tuple(BasketLine(line.sku, line.quantity) for line in body.basket)
    unknown = [line.sku for line in basket if line.sku not in catalog.ids]
    known = [line for line in basket if line.sku in catalog.ids]
    rec = runtime.recommender()
    by_id = {r.id: r for r in engine.rules}
    style: StyleReading = NO_STYLE
    items: list[s.ItemOut] = []
    accessories: list[s.AccessoryOut] = []
    source: str = "rules-only"
    note = ""
    if rec is not None and getattr(rec, "catalog", None) is catalog:
        request = RecommendationRequest(basket=basket, user_id=body.user_id, page=body.page, k=body.k)
        result = rec.recommend(request, rules=engine)
        style = result.style
        source = "recommender"
        items = [s.ItemOut(sku=i.sku, title=str(catalog.frame["title"].iat[catalog.ids.row(i.sku)]),
                           score=float(i.score), reason=i.reason) for i in result.items]
        for slot in result.accessories:
            p = _product(view, catalog.ids.row(slot.sku))
            accessories.append(s.AccessoryOut(sku=p.sku, title=p.title, category=p.category, price=p.price,
                                              rule_id=slot.rule_id, reason=slot.reason))
        if body.page == "product":
            note = "the recommender fills accessory slots on cart and checkout pages only"
    else:
        note = "no recommender loaded: accessories picked by lowest price, one per suggested category in turn"
    rows = [catalog.ids.row(line.sku) for line in known]
    fired = engine.match(rows, [line.quantity for line in known], style, body.page)
    fired_out = []
    for f in fired:
        rule = by_id[f.rule_id]
        cand = np.asarray(f.candidate_rows, dtype=np.int64)
        fired_out.append(s.FiredOut(
            rule_id=f.rule_id, name=rule.name, reason=f.reason, priority=f.priority, max_items=f.max_items,
            candidate_count=len(cand), candidates=[_product(view, int(r)) for r in _cheapest_spread(catalog, rule, cand, 5)],
        ))
    if source == "rules-only":
        taken = set(rows)
        for f in fired:
            rule = by_id[f.rule_id]
            cand = np.asarray([r for r in f.candidate_rows if r not in taken], dtype=np.int64)
            for r in _cheapest_spread(catalog, rule, cand, f.max_items):
                taken.add(int(r))
                p = _product(view, int(r))
                accessories.append(s.AccessoryOut(sku=p.sku, title=p.title, category=p.category, price=p.price,
                                                  rule_id=f.rule_id, reason=f.reason))
    return s.PreviewOut(source=source, style=style.to_dict(ndigits=3), unknown_skus=unknown, fired=fired_out,
                        accessories=accessories, items=items, note=note)


def _cheapest_spread(catalog: Any, rule: Rule, cand: np.ndarray, n: int) -> list[int]:
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
