"""The rules API: ``/v1/rules...``. Every route needs the merchandiser key (rules are internal
business data, reads included); the storefront never calls these.

Writes carry the version they were based on (``If-Match: "3"`` or a ``version`` field/query);
a stale one gets 409 with the current rule. Rule bodies are validated by the rule model, so a
422 lists every bad field by path (``suggest.categories[0]``), including names the served
catalog does not know, with a "did you mean". Not-found, conflict and invalid answers come from
the app-wide handlers in ``serving.rules.errors``; the work behind preview, search and import
diffs is in ``serving.rules.service``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

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
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from recsys.rules.model import FieldError, Rule, RuleValidationError, rule_summary
from recsys.rules.rules_file import dump_rules_yaml, parse_rules_yaml
from serving.auth import require_merchandiser
from serving.deps import (
    AuthorDep,
    CatalogViewDep,
    EffectReaderDep,
    EventLogDep,
    RulesRuntimeDep,
    SettingsDep,
)
from serving.rules import schemas as s
from serving.rules import service
from serving.rules.runtime import RulesRuntime
from serving.rules.store import ImportConflict, RuleNotFound, StoredRule

log = logging.getLogger(__name__)
MAX_IMPORT_BYTES = 2 * 1024 * 1024
Responses = dict[int | str, dict[str, Any]]
AUTH_RESPONSES: Responses = {
    401: {"description": "No `Authorization: Bearer <merchandiser key>` header."},
    403: {"description": "Wrong merchandiser key."},
    503: {
        "description": "Merchandiser key not configured on the server (RECSYS_MERCHANDISER_KEY)."
    },
}
INVALID: Responses = {
    422: {"model": s.ValidationErrorOut, "description": "Every bad field, by path."}
}
CONFLICT: Responses = {
    409: {"model": s.ConflictOut, "description": "Based on a stale version; `current` is stored."}
}
NOT_FOUND: Responses = {404: {"description": "No such rule."}}


def _parse_version(if_match: str | None, version: Any) -> int | None:
    if version is not None:
        if (
            isinstance(version, bool)
            or not isinstance(version, int | str)
            or not str(version).isdigit()
        ):
            raise RuleValidationError(
                [FieldError("version", f"must be a whole number, got {version!r}")]
            )
        return int(version)
    if if_match:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise RuleValidationError(
                [FieldError("If-Match", f'must be a version number like "3", got {if_match!r}')]
            )
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


IfMatchHeader = Annotated[
    str | None, Header(description="The version your change is based on.", examples=['"3"'])
]


def effect_window(
    settings: SettingsDep,
    start: Annotated[
        datetime | None,
        Query(
            alias="from",
            description="Answers shown from this time (ISO 8601, UTC if no offset).",
            examples=["2026-11-01T00:00:00Z"],
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="... until before this time (default: now)."),
    ] = None,
    days: Annotated[
        int | None, Query(description="Or: the last N days (instead of from/to).", examples=[7])
    ] = None,
) -> service.EffectWindow:
    """The effect window of a request (see ``service.effect_window``); 422 names the bad one."""
    return service.effect_window(settings, start=start, end=end, days=days)


EffectWindowDep = Annotated[service.EffectWindow, Depends(effect_window)]
EFFECT_DOC = (
    "Over answers shown in the window: lines it placed or moved (`impressions`), answers it "
    "acted on (`baskets`), lines then added to a cart or bought (attributed by the rules in "
    "docs/experiments.md; `attach_rate` = attached / impressions) and their attributed revenue."
)


router = APIRouter(
    prefix="/v1/rules",
    tags=["rules"],
    dependencies=[Depends(require_merchandiser)],
    responses=AUTH_RESPONSES,
)


def _written(
    runtime: RulesRuntime, stored: StoredRule, response: Response | None = None
) -> s.RuleOut:
    """After a write: recompile this process's engine at once, answer with the new version."""
    runtime.refresh()
    if response is not None:
        response.headers["ETag"] = f'"{stored.version}"'
    return service.rule_out(runtime, stored)


@router.get("", response_model=s.RuleList, summary="List rules (search by text, tag, state)")
def list_rules(
    runtime: RulesRuntimeDep,
    window: EffectWindowDep,
    effects: EffectReaderDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200, description="Words in id, name, categories, tags.", examples=["paint"]
        ),
    ] = None,
    tag: Annotated[str | None, Query(max_length=64, examples=["renovation"])] = None,
    enabled: Annotated[
        bool | None, Query(description="Only enabled (true) or disabled (false).")
    ] = None,
    effect: Annotated[
        bool, Query(description="Add each rule's effect over the window (from/to or days).")
    ] = False,
) -> s.RuleList:
    out = service.matching_rules(runtime, q, tag, enabled)
    if effect:
        found = effects("rule", window, [o.id for o in out])
        for o in out:
            o.effect = found[o.id]
    return s.RuleList(rules=out, total=len(out))


@router.post(
    "",
    status_code=201,
    response_model=s.RuleOut,
    summary="Create a rule",
    responses={**INVALID, **CONFLICT},
)
def create_rule(
    runtime: RulesRuntimeDep,
    response: Response,
    document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_EXAMPLES)],
    author: AuthorDep,
) -> s.RuleOut:
    rule = service.validated_rule(runtime, document)
    stored = runtime.store.create(rule, author)
    response.headers["Location"] = f"/v1/rules/{rule.id}"
    out = _written(runtime, stored, response)
    out.warnings = service.overlap_warnings([st.rule for st in runtime.store.list()], rule)
    return out


@router.post("/validate", response_model=s.ValidateOut, summary="Check a rule without saving it")
def validate_rule(
    runtime: RulesRuntimeDep,
    document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_EXAMPLES)],
) -> s.ValidateOut:
    doc = {k: v for k, v in document.items() if k != "version"}
    try:
        rule = service.validated_rule(runtime, doc)
    except RuleValidationError as exc:  # an answer here, not an error
        return s.ValidateOut(
            valid=False, errors=[s.FieldErrorOut(**e.to_dict()) for e in exc.errors]
        )
    problems: list[str] = []
    engine = runtime.compile([rule.model_copy(update={"enabled": True})])
    if engine is not None:
        problems = engine.problems_.get(rule.id, [])
    return s.ValidateOut(valid=True, errors=[], summary=rule_summary(rule), problems=problems)


@router.post(
    "/preview",
    response_model=s.PreviewOut,
    summary="What checkout would show for a basket",
    responses={**INVALID, 503: {"description": "No model (catalog) loaded."}},
)
def preview(
    runtime: RulesRuntimeDep,
    view: CatalogViewDep,
    body: Annotated[
        s.PreviewIn,
        Body(
            openapi_examples={
                "stored": {
                    "summary": "Stored rules on a paint basket",
                    "value": {"basket": [{"sku": "SKU-000123", "quantity": 3}], "page": "checkout"},
                },
                "draft": {
                    "summary": "A draft rule alone",
                    "value": {
                        "basket": [{"sku": "SKU-000123"}],
                        "draft": s.EXAMPLE_RULE,
                        "only_draft": True,
                    },
                },
            }
        ),
    ],
) -> s.PreviewOut:
    engine = service.preview_engine(runtime, view, body.draft, body.only_draft)
    controls = service.preview_controls(runtime, view, body)
    return service.preview(runtime, view, engine, body, controls)


@router.post(
    "/replay",
    response_model=s.ReplayOut,
    summary="Replay a draft rule or control over recent baskets",
    responses={**INVALID, 503: {"description": "No model (catalog) loaded."}},
)
def replay(
    runtime: RulesRuntimeDep,
    view: CatalogViewDep,
    events: EventLogDep,
    body: Annotated[
        s.ReplayIn,
        Body(
            openapi_examples={
                "rule": {
                    "summary": "A draft rule over last week's baskets",
                    "value": {"days": 7, "draft": s.EXAMPLE_RULE},
                }
            }
        ),
    ],
) -> s.ReplayOut:
    if body.draft is None and body.draft_control is None:
        raise RuleValidationError(
            [FieldError("draft", "send a draft rule, a draft_control or both")]
        )
    since = datetime.now(UTC) - timedelta(days=body.days)
    return service.replay(runtime, view, body, events.to_interactions(since))


@router.get(
    "/suggestions", response_model=s.SuggestionList, summary="Rules mined from order history"
)
def suggestions(
    runtime: RulesRuntimeDep,
    limit: Annotated[int, Query(ge=1, le=5000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Skip this many matches (paging).")] = 0,
    pending: Annotated[bool, Query(description="Only those not accepted yet.")] = False,
    uncovered: Annotated[bool, Query(description="Only those no enabled rule covers yet.")] = False,
    category: Annotated[
        str | None,
        Query(
            max_length=128, description="Anchor or accessory category.", examples=["tile-adhesive"]
        ),
    ] = None,
    min_support: Annotated[int, Query(ge=0, description="At least this many anchor orders.")] = 0,
    min_lift: Annotated[float, Query(ge=0)] = 0.0,
    min_forgotten: Annotated[
        float, Query(ge=0, le=1, description="Share that came back for it later.")
    ] = 0.0,
    sort: Annotated[
        Literal["evidence", "completion", "forgotten", "lift", "support"],
        Query(
            description="evidence: the miner's order (strongest first); others: that figure, highest first."
        ),
    ] = "evidence",
) -> s.SuggestionList:
    return service.find_suggestions(
        runtime,
        pending=pending,
        uncovered=uncovered,
        category=category,
        min_support=min_support,
        min_lift=min_lift,
        min_forgotten=min_forgotten,
        sort=sort,
        offset=offset,
        limit=limit,
    )


@router.post(
    "/suggestions/{suggestion_id}/accept",
    status_code=201,
    response_model=s.RuleOut,
    summary="Turn a mined suggestion into a rule, or add it to an existing rule",
    responses={**NOT_FOUND, **CONFLICT},
)
def accept_suggestion(
    runtime: RulesRuntimeDep,
    suggestion_id: str,
    response: Response,
    author: AuthorDep,
    into: Annotated[
        str | None,
        Query(
            max_length=80,
            description=(
                "Add the accessory to this rule (one of the suggestion's `extends`) instead of a new rule."
            ),
        ),
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, description="With `into`: the version of that rule you saw.")
    ] = None,
    duplicate: Annotated[
        bool, Query(description="Create a new rule even though enabled rules cover it.")
    ] = False,
) -> s.RuleOut:
    found = next((sg for sg in runtime.suggestions() if sg.id == suggestion_id), None)
    if found is None:
        raise HTTPException(404, f"no mined suggestion {suggestion_id!r}")
    if into is not None:
        target = runtime.store.get(into)
        if found.anchor not in target.rule.trigger.categories:
            raise RuleValidationError(
                [FieldError("into", f"rule {into!r} is not triggered by {found.anchor!r}")]
            )
        doc = target.rule.to_document()
        if found.accessory not in doc["suggest"]["categories"]:
            doc["suggest"]["categories"] = [*doc["suggest"]["categories"], found.accessory]
        rule = service.validated_rule(runtime, doc, check_catalog=False)
        stored = runtime.store.update(
            rule, version if version is not None else target.version, author
        )
        response.status_code = 200
        return _written(runtime, stored, response)
    covered = service.covering_rules([st.rule for st in runtime.store.list()], found)
    if covered and not duplicate:
        raise HTTPException(
            409,
            f"already covered by {', '.join(covered)}: nothing to add "
            "(send duplicate=true to create a separate rule anyway)",
        )
    return _written(runtime, runtime.store.create(found.to_rule(), author), response)


@router.get(
    "/export",
    response_class=PlainTextResponse,
    summary="All rules as YAML",
    responses={
        200: {
            "content": {"application/yaml": {"example": "version: 1\nrules:\n- id: paint-gloves\n"}}
        }
    },
)
def export_rules(runtime: RulesRuntimeDep) -> PlainTextResponse:
    stored = runtime.store.list()  # versions let an import detect edits made since
    text = dump_rules_yaml(
        [st.rule for st in stored], versions={st.rule.id: st.version for st in stored}
    )
    return PlainTextResponse(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="rules.yaml"'},
    )


@router.post(
    "/import",
    response_model=s.ImportOut,
    summary="Load rules from YAML (all or nothing)",
    description="A rule carrying `version` (as `/export` writes it) is only overwritten if it "
    "is still stored at that version; otherwise 409 names the rules and nothing is written.",
    responses={**INVALID, 409: {"description": "Rules changed since the file was exported."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {
                    "schema": {"type": "string"},
                    "example": "version: 1\nrules:\n- id: wallpaper-paste\n  name: Wallpaper needs paste\n"
                    "  trigger: {categories: [wallpaper]}\n  suggest: {categories: [wallpaper-paste]}\n",
                }
            },
        }
    },
)
async def import_rules(
    runtime: RulesRuntimeDep,
    request: Request,
    author: AuthorDep,
    mode: Annotated[
        str,
        Query(
            pattern="^(merge|replace)$",
            description=(
                "merge: create/update the listed rules; replace: also delete rules not in the file."
            ),
        ),
    ] = "merge",
    dry_run: Annotated[bool, Query(description="Validate and report, write nothing.")] = False,
    check_catalog: Annotated[
        bool, Query(description="Reject names the served catalog lacks.")
    ] = True,
) -> Any:
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"import larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleValidationError([FieldError("", "the body must be UTF-8 YAML text")]) from None
    view = runtime.catalog_view() if check_catalog else None

    def check(rule: Rule) -> list[FieldError]:
        return service.catalog_errors(view, rule)

    base_versions: dict[str, int] = {}
    # parsing and checking are CPU work: off the event loop
    rules = await run_in_threadpool(parse_rules_yaml, text, check, versions=base_versions)
    if dry_run:
        return service.import_diff(
            {st.rule.id: st.rule for st in runtime.store.list()}, rules, mode
        )
    try:
        result = await run_in_threadpool(
            runtime.store.import_rules,
            rules,
            author,
            mode=mode,  # type: ignore[arg-type]
            base_versions=base_versions,
        )
    except ImportConflict as exc:
        return JSONResponse(
            {
                "detail": str(exc),
                "conflicts": [
                    {"id": rid, "file_version": base, "stored_version": now}
                    for rid, base, now in exc.stale
                ],
            },
            status_code=409,
        )
    runtime.refresh()
    return s.ImportOut(dry_run=False, **result.__dict__)


@router.get(
    "/products", response_model=s.ProductList, summary="Search the served catalog (for the page)"
)
def products(
    view: CatalogViewDep,
    q: Annotated[str, Query(min_length=1, max_length=200, examples=["wall paint"])],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> s.ProductList:
    rows = view.catalog.search(q)
    return s.ProductList(
        items=[service.product_out(view.catalog, int(r)) for r in rows[:limit]],
        total=int(len(rows)),
    )


@router.get(
    "/categories", response_model=s.CategoryList, summary="Categories of the served catalog"
)
def categories(runtime: RulesRuntimeDep) -> s.CategoryList:
    view = runtime.catalog_view()
    return s.CategoryList(categories=list(view.catalog.categories) if view else [])


@router.get(
    "/{rule_id}/effect",
    response_model=s.EffectOut,
    summary="A rule's effect: impressions, attach rate, revenue over a window",
    description=EFFECT_DOC,
    responses={**NOT_FOUND, **INVALID},
)
def rule_effect(
    runtime: RulesRuntimeDep, rule_id: str, window: EffectWindowDep, effects: EffectReaderDep
) -> s.EffectOut:
    require_stored(runtime.store, rule_id, "/v1/rules")
    return effects("rule", window, [rule_id])[rule_id]


def require_stored(store: Any, source_id: str, listing: str) -> None:
    """404 unless ``source_id`` was ever stored (a deleted one keeps its effect)."""
    try:
        store.history(source_id)
    except RuleNotFound as exc:
        raise HTTPException(404, f"{exc}: GET {listing} lists the ids") from None


@router.get("/{rule_id}", response_model=s.RuleOut, summary="One rule", responses=NOT_FOUND)
def get_rule(runtime: RulesRuntimeDep, rule_id: str, response: Response) -> s.RuleOut:
    stored = runtime.store.get(rule_id)
    response.headers["ETag"] = f'"{stored.version}"'
    return service.rule_out(runtime, stored)


@router.put(
    "/{rule_id}",
    response_model=s.RuleOut,
    summary="Replace a rule (send the version it was based on)",
    responses={**INVALID, **CONFLICT, **NOT_FOUND, 428: {"description": "No version sent."}},
)
def put_rule(
    runtime: RulesRuntimeDep,
    rule_id: str,
    response: Response,
    document: Annotated[dict[str, Any], Body(openapi_examples=s.RULE_UPDATE_EXAMPLES)],
    author: AuthorDep,
    if_match: IfMatchHeader = None,
) -> s.RuleOut:
    doc = dict(document)
    base = _require_version(if_match, doc.pop("version", None))
    doc.setdefault("id", rule_id)
    if doc["id"] != rule_id:
        raise RuleValidationError(
            [
                FieldError(
                    "id", f"must equal the id in the URL ({rule_id!r}); rules cannot be renamed"
                )
            ]
        )
    rule = service.validated_rule(runtime, doc)
    out = _written(runtime, runtime.store.update(rule, base, author), response)
    out.warnings = service.overlap_warnings([st.rule for st in runtime.store.list()], rule)
    return out


@router.delete(
    "/{rule_id}",
    response_model=s.DeletedOut,
    summary="Delete a rule (kept in history)",
    responses={**CONFLICT, **NOT_FOUND, 428: {"description": "No version sent."}},
)
def delete_rule(
    runtime: RulesRuntimeDep,
    rule_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[int | None, Query(ge=1, description="Or send If-Match.")] = None,
) -> s.DeletedOut:
    base = _require_version(if_match, version)
    new_version = runtime.store.delete(rule_id, base, author)
    runtime.refresh()
    return s.DeletedOut(id=rule_id, version=new_version)


@router.post(
    "/{rule_id}/enable",
    response_model=s.RuleOut,
    summary="Enable a rule",
    responses={**CONFLICT, **NOT_FOUND},
)
def enable_rule(
    runtime: RulesRuntimeDep,
    rule_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[
        int | None, Query(ge=1, description="Optional: refuse if the rule changed since.")
    ] = None,
) -> s.RuleOut:
    stored = runtime.store.set_enabled(rule_id, True, author, _parse_version(if_match, version))
    return _written(runtime, stored)


@router.post(
    "/{rule_id}/disable",
    response_model=s.RuleOut,
    summary="Disable a rule",
    responses={**CONFLICT, **NOT_FOUND},
)
def disable_rule(
    runtime: RulesRuntimeDep,
    rule_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[
        int | None, Query(ge=1, description="Optional: refuse if the rule changed since.")
    ] = None,
) -> s.RuleOut:
    stored = runtime.store.set_enabled(rule_id, False, author, _parse_version(if_match, version))
    return _written(runtime, stored)


@router.get(
    "/{rule_id}/history",
    response_model=s.HistoryOut,
    summary="Every version of a rule",
    responses=NOT_FOUND,
)
def history(runtime: RulesRuntimeDep, rule_id: str) -> s.HistoryOut:
    versions = runtime.store.history(rule_id)
    current = versions[0].version if versions and versions[0].document is not None else None
    return s.HistoryOut(id=rule_id, current_version=current, versions=service.history_out(versions))


@router.post(
    "/{rule_id}/rollback",
    response_model=s.RuleOut,
    summary="Make an old version current again (as a new version)",
    responses={**CONFLICT, **NOT_FOUND, 422: {"description": "The target version is a deletion."}},
)
def rollback(
    runtime: RulesRuntimeDep,
    rule_id: str,
    body: Annotated[
        s.RollbackIn,
        Body(
            openapi_examples={
                "undo": {"summary": "Back to version 2", "value": {"to_version": 2, "version": 3}}
            }
        ),
    ],
    author: AuthorDep,
) -> s.RuleOut:
    try:
        stored = runtime.store.rollback(rule_id, body.to_version, body.version, author)
    except RuleValidationError:
        raise
    except ValueError as exc:  # the target version is a deletion
        raise RuleValidationError([FieldError("to_version", str(exc))]) from None
    return _written(runtime, stored)
