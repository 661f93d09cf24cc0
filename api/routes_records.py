# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Compliance records over REST: the kinds and their fields, list, read, create, update, void — through
`compliance.edit` and `compliance.store`, the functions `roomguard compliance record|update|void` call,
so every write is audited with its before and after in the same transaction.

Bodies: one generic JSON object per request with the kind in the path, validated by the kind's model
(`compliance.kinds`) through `compliance.importing.parse_objects` — the reader of a JSON import file, so
keys may be field names or zh labels and a time without an offset is the site's wall clock. The OpenAPI
body schema is the `oneOf` of every kind's model (a discriminated union would need a `kind` field in
the body that the models do not have and the path already says).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, audit_actor, require
from api.compliance_support import IsoTime, record_url, records_of, site_tz
from api.context import Ctx
from api.errors import ApiError, ErrorBody, request_id
from api.roles import Permission
from compliance.edit import RecordExists, UpdateRefused, create_record, update_record, void_record
from compliance.importing import ImportFailed, RowProblem, field_choices, parse_objects
from compliance.kinds import KINDS, RecordModel, labels
from compliance.store import RecordNotFound, RecordRow, rows

router = APIRouter(tags=["records"])
Reader = Annotated[Principal, Depends(require(Permission.RECORDS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.RECORDS_WRITE))]
KindPath = Annotated[str, Path(description=f"Record kind: {', '.join(KINDS)}.")]
RefPath = Annotated[str, Path(description="The record's natural key (its `ref`).")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A body that is not UTF-8 JSON."},
    401: {"model": ErrorBody, "description": "Not logged in."},
    422: {"model": ErrorBody, "description": "Invalid query or path."},
    403: {"model": ErrorBody, "description": "Needs records.read (reads) or records.write (writes)."},
    404: {"model": ErrorBody, "description": "Unknown kind (the message names the valid ones) or record."},
}


class KindField(BaseModel):
    """One field of a record kind."""

    name: str
    zh: str = Field(description="Traditional Chinese label (also accepted as the key).")
    en: str = Field(description="English label.")
    required: bool
    type: str = Field(description="JSON schema type, e.g. string, number, boolean, array.")
    format: str | None = Field(None, description="date-time for times.")
    choices: list[str] | None = Field(None, description="The valid values, for a choice.")
    default: Any = None


class KindOut(BaseModel):
    """A record kind: its names, fields and JSON schema (the body of a create)."""

    kind: str
    zh: str
    en: str
    fields: list[KindField]
    json_schema: dict[str, Any]


class RecordOut(BaseModel):
    """A stored record with its key, version, who wrote it, and whether it is void."""

    kind: str
    ref: str
    url: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    void: bool
    voided_at: datetime | None = None
    voided_by: str | None = None
    void_reason: str | None = None


class RecordPage(BaseModel):
    """A page of records, oldest first; `next_offset` fetches the next (null: this was the last)."""

    records: list[RecordOut]
    total: int
    next_offset: int | None


class FieldProblem(BaseModel):
    """One invalid field of a body (field null: the record as a whole, e.g. end before start)."""

    field: str | None
    zh: str | None
    en: str | None
    value: str | None = Field(None, description="The value as given.")
    message: str
    valid: list[str] = Field(default_factory=list, description="The valid choices, when there are some.")


class RecordInvalid(ErrorBody):
    """A 422 of a record body: every problem with the field's zh/en label and the valid choices."""

    problems: list[FieldProblem] = Field(default_factory=list, description="Empty when the body is not JSON.")


class VoidIn(BaseModel):
    """Why a record is void (kept, shown void, left out of the checks)."""

    reason: str = Field(min_length=1, max_length=2000, description="Why (recorded in the audit log).")


WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorBody, "description": "Exists already / the record does not allow the change."},
    422: {"model": RecordInvalid, "description": "Invalid fields, each named with its labels and choices."},
}


def _json_type(prop: dict[str, Any]) -> tuple[str, str | None]:
    options = prop.get("anyOf", [prop])
    typed = [o for o in options if o.get("type") not in (None, "null")] or options
    return str(typed[0].get("type", "string")), typed[0].get("format")


def kind_out(name: str, model: type[RecordModel]) -> KindOut:
    """A kind as the API describes it, from its model."""
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    fields = []
    for field, zh, en in labels(model):
        info = model.model_fields[field]
        typ, fmt = _json_type(props.get(field, {}))
        choices = field_choices(model, field)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append(
            KindField(
                name=field,
                zh=zh,
                en=en,
                required=info.is_required(),
                type=typ,
                format=fmt,
                choices=list(choices) if choices else None,
                default=default,
            )
        )
    return KindOut(kind=name, zh=model.ZH, en=model.EN, fields=fields, json_schema=schema)


def _model(kind: str) -> type[RecordModel]:
    model = KINDS.get(kind)
    if model is None:
        raise ApiError(
            404, "unknown_kind", f"未知紀錄類別 unknown record kind {kind!r}; valid: {', '.join(KINDS)}"
        )
    return model


def record_out(row: RecordRow) -> RecordOut:
    """A stored row as the API shows it."""
    return RecordOut(
        kind=row.kind,
        ref=row.ref,
        url=record_url(row.kind, row.ref) or "",
        data=row.data,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        void=row.voided_at is not None,
        voided_at=row.voided_at,
        voided_by=row.voided_by,
        void_reason=row.void_reason,
    )


def problems_out(model: type[RecordModel], problems: Sequence[RowProblem]) -> list[FieldProblem]:
    """Import problems with the fields' labels."""
    names = {name: (zh, en) for name, zh, en in labels(model)}
    out = []
    for p in problems:
        zh, en = names.get(p.field, (None, None)) if p.field else (None, None)
        out.append(
            FieldProblem(field=p.field, zh=zh, en=en, value=p.value, message=p.message, valid=list(p.valid))
        )
    return out


def invalid(request: Request, model: type[RecordModel], exc: ImportFailed) -> JSONResponse:
    """The 422 answer to an invalid record body."""
    found = problems_out(model, exc.problems)
    parts = []
    for p in found:
        head = f"{p.field}（{p.zh} {p.en}）" if p.field else "record 紀錄"
        parts.append(head + f": {p.message}" + (f" (valid: {', '.join(p.valid)})" if p.valid else ""))
    body = RecordInvalid(
        code="invalid_record",
        message=f"{model.KIND} 欄位不符 invalid fields: " + "; ".join(parts),
        request_id=request_id(request),
        problems=found,
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _by_ref(session: Session, kind: str, ref: str) -> RecordRow | None:
    return session.scalars(
        select(RecordRow).where(RecordRow.kind == kind, RecordRow.ref == ref)
    ).one_or_none()


def _body_schema() -> dict[str, Any]:
    schemas = []
    for name, model in KINDS.items():
        s = model.model_json_schema()
        s["title"] = f"{model.__name__} ({name})"
        schemas.append(s)
    return {"oneOf": schemas}


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _body_schema()}},
        "description": "The record: the fields of the path's kind (GET /api/v1/records/kinds).",
    }
}
_CHANGES_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        "description": "The fields to change (names or zh labels); the others keep their values.",
    }
}


@router.get("/api/v1/records/kinds", response_model=list[KindOut], responses=ERRORS)
async def record_kinds(_: Reader) -> list[KindOut]:
    """Every record kind with its fields, zh/en labels, required ones and choices. 紀錄類別。"""
    return [kind_out(name, model) for name, model in KINDS.items()]


@router.get("/api/v1/records/{kind}", response_model=RecordPage, responses=ERRORS)
async def list_records(
    _: Reader,
    ctx: Ctx,
    kind: KindPath,
    since: Annotated[IsoTime | None, Query(description="Records overlapping from this time.")] = None,
    until: Annotated[IsoTime | None, Query(description="… up to this time (excluded).")] = None,
    include_void: Annotated[bool, Query(description="Void records too (marked void).")] = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecordPage:
    """Records of one kind overlapping [since, until), oldest first. 列出紀錄。"""
    _model(kind)

    def page() -> RecordPage:
        with records_of(ctx).sessions() as s:
            found = [
                r for r in rows(s, kind, since=since, until=until) if include_void or r.voided_at is None
            ]
            part = [record_out(r) for r in found[offset : offset + limit]]
        more = offset + limit < len(found)
        return RecordPage(records=part, total=len(found), next_offset=offset + limit if more else None)

    return await run_in_threadpool(page)


@router.get("/api/v1/records/{kind}/{ref}", response_model=RecordOut, responses=ERRORS)
async def get_record(_: Reader, ctx: Ctx, kind: KindPath, ref: RefPath) -> RecordOut:
    """One record by its key, void or not. 單筆紀錄。"""
    _model(kind)

    def one() -> RecordOut | None:
        with records_of(ctx).sessions() as s:
            row = _by_ref(s, kind, ref)
            return None if row is None else record_out(row)

    found = await run_in_threadpool(one)
    if found is None:
        raise ApiError(404, "no_record", f"查無紀錄 no {kind} record {ref!r}")
    return found


@router.post(
    "/api/v1/records/{kind}",
    response_model=RecordOut,
    status_code=201,
    responses=WRITE_ERRORS,
    openapi_extra=_BODY_DOC,
)
async def create(
    principal: Writer,
    ctx: Ctx,
    request: Request,
    kind: KindPath,
    body: Annotated[Any, Body(include_in_schema=False)] = None,
) -> RecordOut | JSONResponse:
    """Record one thing (a generator test, a vendor visit, …), audited `create`. 新增紀錄。"""
    model = _model(kind)
    try:
        (record,) = parse_objects([body], model, "request", site_tz(ctx))
    except ImportFailed as exc:
        return invalid(request, model, exc)
    actor, now = audit_actor(principal, request), ctx.clock()

    def write() -> RecordOut | None:
        store = records_of(ctx)
        create_record(store, record, actor, now)
        with store.sessions() as s:
            row = _by_ref(s, kind, record.ref())
            return None if row is None else record_out(row)

    try:
        out = await run_in_threadpool(write)
    except RecordExists as exc:
        raise ApiError(409, "record_exists", str(exc)) from None
    assert out is not None
    return out


@router.put(
    "/api/v1/records/{kind}/{ref}",
    response_model=RecordOut,
    responses=WRITE_ERRORS,
    openapi_extra=_CHANGES_DOC,
)
async def update(
    principal: Writer,
    ctx: Ctx,
    request: Request,
    kind: KindPath,
    ref: RefPath,
    body: Annotated[Any, Body(include_in_schema=False)] = None,
) -> RecordOut | JSONResponse:
    """Change fields of a record as `roomguard compliance update` does (never its key). 更新紀錄。"""
    model = _model(kind)
    if not isinstance(body, dict) or not body:
        raise ApiError(
            422, "invalid_request", "請求格式不符 the body must be an object of the fields to change"
        )
    actor, now = audit_actor(principal, request), ctx.clock()

    def write() -> RecordOut | None:
        store = records_of(ctx)
        update_record(store, model, ref, body, actor, now, site_tz(ctx), source="request")
        with store.sessions() as s:
            row = _by_ref(s, kind, ref)
            return None if row is None else record_out(row)

    try:
        out = await run_in_threadpool(write)
    except RecordNotFound:
        raise ApiError(404, "no_record", f"查無紀錄 no {kind} record {ref!r}") from None
    except ImportFailed as exc:
        return invalid(request, model, exc)
    except UpdateRefused as exc:
        raise ApiError(409, "update_refused", str(exc)) from None
    assert out is not None
    return out


@router.post("/api/v1/records/{kind}/{ref}/void", response_model=RecordOut, responses=WRITE_ERRORS)
async def void(
    principal: Writer, ctx: Ctx, request: Request, kind: KindPath, ref: RefPath, body: VoidIn
) -> RecordOut:
    """Void a record: kept, shown void, left out of the checks; the reason is audited. 作廢紀錄。"""
    _model(kind)
    actor, now = audit_actor(principal, request), ctx.clock()

    def write() -> RecordOut | None:
        store = records_of(ctx)
        void_record(store, kind, ref, actor, body.reason, now)
        with store.sessions() as s:
            row = _by_ref(s, kind, ref)
            return None if row is None else record_out(row)

    try:
        out = await run_in_threadpool(write)
    except RecordNotFound:
        raise ApiError(404, "no_record", f"查無紀錄 no {kind} record {ref!r}") from None
    except UpdateRefused as exc:
        raise ApiError(409, "update_refused", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    assert out is not None
    return out
