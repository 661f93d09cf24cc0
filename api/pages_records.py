"""Record forms: `GET /records/new/{kind}` builds the form from the kind's pydantic model (fields, zh/en
labels, choices), `POST` parses it as `roomguard compliance record` does and stores it, audited."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic.fields import FieldInfo
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, audit_actor
from api.compliance_support import records_of, site_tz
from api.context import Ctx
from api.page_auth import page_require
from api.pages_render import PageError, flash, render
from api.roles import Permission
from compliance.edit import RecordExists, create_record
from compliance.importing import RecordImportError, parse_value_rows
from compliance.kinds import KINDS, RecordModel, labels

router = APIRouter(include_in_schema=False)

# Kinds with a form; the others are recorded through the JSON API or `roomguard compliance record`.
FORM_KINDS = ("generator_test", "ups_test", "vendor_visit", "duty")
Writer = Annotated[Principal, Depends(page_require(Permission.RECORDS_WRITE))]


@dataclass(frozen=True, slots=True)
class FieldView:
    """One input of a record form."""

    name: str
    zh: str
    en: str
    input: Literal["text", "number", "datetime-local", "select", "textarea"]
    required: bool
    choices: tuple[str, ...]
    value: str


def _bare(annotation: Any) -> tuple[Any, bool]:
    """The annotation without None, and whether None was allowed."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return annotation, False


def _input(
    info: FieldInfo,
) -> tuple[Literal["text", "number", "datetime-local", "select", "textarea"], tuple[str, ...]]:
    bare, _ = _bare(info.annotation)
    if typing.get_origin(bare) is Literal:
        return "select", tuple(str(a) for a in typing.get_args(bare))
    if bare is bool:
        return "select", ("true", "false")
    if bare in (int, float):
        return "number", ()
    if isinstance(bare, type) and issubclass(bare, datetime):
        return "datetime-local", ()
    if typing.get_origin(bare) is list:
        return "textarea", ()
    return "text", ()


def _default(info: FieldInfo) -> str:
    if info.is_required() or info.default is None or isinstance(info.default, list):
        return ""
    if isinstance(info.default, bool):
        return "true" if info.default else "false"
    return str(info.default)


def form_fields(model: type[RecordModel], values: dict[str, str] | None = None) -> list[FieldView]:
    """The inputs of a kind's form, in field order, with the values typed so far."""
    out = []
    for name, zh, en in labels(model):
        info = model.model_fields[name]
        kind, choices = _input(info)
        value = (values or {}).get(name, _default(info))
        out.append(FieldView(name, zh, en, kind, info.is_required(), choices, value))
    return out


def _model(kind: str) -> type[RecordModel]:
    if kind not in FORM_KINDS:
        raise PageError(
            404, "err.not_found", f"此類紀錄無表單 no form for {kind!r}; forms: {', '.join(FORM_KINDS)}"
        )
    return KINDS[kind]


def _form_page(
    request: Request,
    principal: Principal,
    kind: str,
    values: dict[str, str] | None,
    error: str | None,
    status: int,
) -> Response:
    model = _model(kind)
    context = {
        "kind": kind,
        "model": model,
        "fields": form_fields(model, values),
        "csrf_token": principal.csrf_token or "",
        "error": error,
        "user": principal.user,
        "flash": flash(request),
    }
    return render(request, "record_form.html", context, status)


@router.get("/records/new")
async def record_kinds(request: Request, principal: Writer) -> Response:
    """The kinds that have a form."""
    kinds = [(k, KINDS[k]) for k in FORM_KINDS]
    return render(
        request,
        "record_kinds.html",
        {"kinds": kinds, "user": principal.user, "csrf_token": principal.csrf_token or ""},
    )


@router.get("/records/new/{kind}")
async def record_form(kind: str, request: Request, principal: Writer) -> Response:
    """An empty form for one record kind."""
    return _form_page(request, principal, kind, None, None, 200)


@router.post("/records/new/{kind}")
async def record_create(kind: str, request: Request, principal: Writer, ctx: Ctx) -> Response:
    """Store a new record from the form (audited as the user, as `compliance record` and the JSON API do);
    the form again with the problems (422), or when a live record has its key (409)."""
    model = _model(kind)
    form = await request.form()
    names = set(model.model_fields)  # the form's csrf_token and anything else sent along are not fields
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k in names}
    row: dict[str, str | None] = {k: (v or None) for k, v in values.items()}
    tz = site_tz(ctx)
    try:
        (parsed,) = parse_value_rows([row], model, "form", tz, first_row=1)
    except RecordImportError as exc:
        return _form_page(request, principal, kind, values, str(exc).replace("form:row 1: ", ""), 422)
    actor = audit_actor(principal, request)
    try:
        await run_in_threadpool(create_record, records_of(ctx), parsed, actor, ctx.clock())
    except RecordExists as exc:  # a new record never overwrites a live one (the JSON API's update does)
        return _form_page(request, principal, kind, values, str(exc), 409)
    return RedirectResponse(f"/records/new/{kind}?msg=flash.recorded", status_code=303)
