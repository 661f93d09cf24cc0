# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Create, update and void one record the way people do it (CLI `compliance record|update|void`, the web
API): checked against what is stored in the same transaction as the audited write.

Rules: a new record's natural key must not be a live record's (a void one is recorded anew over it, as
`compliance record` does); an update changes fields of a live record but never its key (void it and
record it anew); a void record is not updated or voided again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.importing import ImportFailed, RowProblem, parse_objects, resolve_field
from compliance.kinds import RecordModel
from compliance.store import PutResult, RecordNotFound, RecordRow, Records, put, void
from records.audit import Actor

M = TypeVar("M", bound=RecordModel)


class RecordExists(ValueError):
    """A live record of that kind already has the key."""


class UpdateRefused(ValueError):
    """The record does not allow that change (its key, or it is void); the message says why."""


def _row(session: Session, kind_name: str, ref: str) -> RecordRow | None:
    return session.scalars(
        select(RecordRow).where(RecordRow.kind == kind_name, RecordRow.ref == ref)
    ).one_or_none()


def create_record(records: Records, record: RecordModel, actor: Actor, now: datetime) -> PutResult:
    """Write a new record (audited `create`); RecordExists when a live one has its key."""
    with records.sessions.begin() as s:
        row = _row(s, record.KIND, record.ref())
        if row is not None and row.voided_at is None:
            raise RecordExists(
                f"{record.KIND} {record.ref()!r} 已存在 already exists: update it, or void it first"
            )
        return put(s, record, actor, now)


def changed_record(model: type[M], current: M, changes: Mapping[str, Any], tz: tzinfo, source: str) -> M:
    """`current` with `changes` applied (keys: field names or zh labels; values as a JSON body or CLI
    text gives them, "" or None clears), validated as `model`; ImportFailed names every bad field."""
    data = current.model_dump(mode="json")
    unknown: list[RowProblem] = []
    for key, value in changes.items():
        name = resolve_field(model, key)
        if name is None:
            valid = tuple(model.model_fields)
            unknown.append(RowProblem(1, None, key, f"unknown field {key!r} of {model.KIND}", valid))
        else:
            data[name] = value
    if unknown:
        raise ImportFailed(source, unknown, unit="record")
    (changed,) = parse_objects([data], model, source, tz)
    return changed


def update_record(
    records: Records,
    model: type[M],
    ref: str,
    changes: Mapping[str, Any],
    actor: Actor,
    now: datetime,
    tz: tzinfo,
    *,
    source: str = "update",
) -> PutResult:
    """Change fields of a live record (audited `update`, before and after); RecordNotFound, ImportFailed
    (bad fields), UpdateRefused (a void record, or a change of its key)."""
    with records.sessions.begin() as s:
        row = _row(s, model.KIND, ref)
        if row is None:
            raise RecordNotFound(f"no {model.KIND} record {ref!r}")
        if row.voided_at is not None:
            raise UpdateRefused(
                f"{model.KIND} {ref!r} 已作廢 is void ({row.void_reason}): record it anew instead"
            )
        changed = changed_record(model, model.model_validate(row.data), changes, tz, source)
        if changed.ref() != ref:
            raise UpdateRefused(
                f"that changes the record's key ({ref} → {changed.ref()}): void it and record it anew "
                "此變更會改變紀錄鍵值：請作廢後重新登錄"
            )
        return put(s, changed, actor, now, action="update")


def void_record(records: Records, kind_name: str, ref: str, actor: Actor, reason: str, now: datetime) -> None:
    """Void a live record (audited `void`, with its data as before); RecordNotFound, UpdateRefused when it
    is void already, ValueError without a reason."""
    if not reason.strip():
        raise ValueError("a void needs a reason 作廢須說明原因")
    with records.sessions.begin() as s:
        row = _row(s, kind_name, ref)
        if row is not None and row.voided_at is not None:
            raise UpdateRefused(f"{kind_name} {ref!r} 已作廢 is void already ({row.void_reason})")
        void(s, kind_name, ref, actor, reason.strip(), now)
