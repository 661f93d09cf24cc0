# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The CC-16000 board, the checks and their history, the test schedule and the duty operator on shift.

The board is what `roomguard compliance status` prints (`compliance.board.latest_board`: the newest
stored result of every item), the recent tests what `roomguard compliance tests` prints
(`compliance.board.timeline`). The status page and door display call `board_lines`, `upcoming_tests` and
`duty_now` directly (blocking: from a worker thread) and get the same models the REST answers carry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.compliance_support import IsoTime, compliance_config, record_url, records_of, site_tz
from api.context import AppContext, Ctx
from api.errors import ApiError, ErrorBody
from api.roles import Permission
from compliance.board import BoardLine, latest_board, timeline
from compliance.items import BY_KEY, GENERATOR_TEST, Item
from compliance.kinds import DutyShift, Person
from compliance.result import CheckResult, Status

router = APIRouter(tags=["board"])
StatusReader = Annotated[Principal, Depends(require(Permission.STATUS_READ))]
Reader = Annotated[Principal, Depends(require(Permission.RECORDS_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not logged in."},
    422: {"model": ErrorBody, "description": "Invalid query."},
    403: {"model": ErrorBody, "description": "Needs status.read or records.read."},
}
# Board items that recur on a cadence: what the test schedule lists as due or overdue.
SCHEDULED = (
    "cc16000-01-fire",
    "cc16000-01-emergency-lighting",
    GENERATOR_TEST.key,
    "cc16000-05-ups-test",
    "cc16000-13-access-review",
    "cc20000-06-drills",
)
NOT_EVALUATED = ("尚未評估", "not evaluated yet")


class EvidenceOut(BaseModel):
    """What a result rests on: a record (with its API address), an alert, a reading or the config."""

    kind: str
    ref: str
    at: datetime | None = None
    note: str | None = None
    url: str | None = Field(None, description="The record's API address (records only).")


class CheckOut(BaseModel):
    """A check's newest result (status unknown and no time: never evaluated)."""

    item: str
    code: str
    title_zh: str
    title_en: str
    status: Status
    reason_zh: str
    reason_en: str
    evaluated_at: datetime | None
    last_evidence_at: datetime | None = None
    next_due: datetime | None = None
    evidence: list[EvidenceOut] = Field(default_factory=list)


class BoardLineOut(CheckOut):
    """One line of the board with the link to what is behind it."""

    link: str = Field(description="API address of the line's first record, else of the item's history.")


class BoardOut(BaseModel):
    """The CC-16000 board, one line per item in board order."""

    evaluated: bool = Field(description="False until the compliance process stored a first result.")
    note_zh: str | None = None
    note_en: str | None = None
    lines: list[BoardLineOut]


class CheckAt(BaseModel):
    """A stored result and when it took effect."""

    at: datetime
    status: Status
    reason_zh: str
    reason_en: str
    last_evidence_at: datetime | None = None
    next_due: datetime | None = None
    evidence: list[EvidenceOut] = Field(default_factory=list)


class CheckHistory(BaseModel):
    """An item's results in [since, until), with the one in force at `since`, oldest first."""

    item: str
    code: str
    title_zh: str
    title_en: str
    results: list[CheckAt]


class DueOut(BaseModel):
    """A recurring test or review and where its cadence stands."""

    item: str
    code: str
    title_zh: str
    title_en: str
    status: Status
    state: Literal["overdue", "due_soon", "ok", "unknown"]
    next_due: datetime | None
    days_left: float | None = Field(None, description="Negative: overdue by that many days.")
    reason_zh: str
    reason_en: str
    link: str


class PastTest(BaseModel):
    """One test or inspection on the timeline (as `roomguard compliance tests` prints it)."""

    at: datetime
    kind: str
    subject: str
    status: Status
    text: str
    url: str | None


class ScheduleOut(BaseModel):
    """Upcoming and overdue tests (most urgent first) and the tests of the look-back period."""

    now: datetime
    timezone: str
    due: list[DueOut]
    recent: list[PastTest]


class DutyOut(BaseModel):
    """A duty shift with the operator's person record, if one matches."""

    operator: str
    name: str | None = Field(None, description="From the Person record whose id or name is the operator.")
    organisation: str | None = None
    phone: str | None = None
    room: str | None
    starts_at: datetime
    ends_at: datetime
    ref: str
    url: str


class DutyNow(BaseModel):
    """Who is the duty operator now (null with the reason when no one is on the roster)."""

    at: datetime
    timezone: str
    room: str | None
    on_duty: DutyOut | None
    also_on_duty: list[DutyOut] = Field(default_factory=list)
    next: DutyOut | None = Field(None, description="The next shift starting after now.")
    reason_zh: str | None = None
    reason_en: str | None = None


def _evidence(result: CheckResult | None) -> list[EvidenceOut]:
    if result is None:
        return []
    return [
        EvidenceOut(kind=e.kind, ref=e.ref, at=e.at, note=e.note, url=record_url(e.kind, e.ref))
        for e in result.evidence
    ]


def history_url(item: str) -> str:
    """The API address of an item's result history."""
    return f"/api/v1/checks/{item}/history"


def check_out(line: BoardLine) -> CheckOut:
    """A board line as the checks endpoint shows it."""
    r, item = line.result, line.item
    return CheckOut(
        item=item.key,
        code=item.code,
        title_zh=item.title_zh,
        title_en=item.title_en,
        status=r.status if r else "unknown",
        reason_zh=r.reason_zh if r else NOT_EVALUATED[0],
        reason_en=r.reason_en if r else NOT_EVALUATED[1],
        evaluated_at=line.at,
        last_evidence_at=r.last_evidence_at if r else None,
        next_due=r.next_due if r else None,
        evidence=_evidence(r),
    )


def board_lines(ctx: AppContext) -> BoardOut:
    """The CC-16000 board as `roomguard compliance status` shows it (blocking: call from a thread)."""
    lines = latest_board(records_of(ctx))
    out = []
    for line in lines:
        check = check_out(line)
        first = next((e.url for e in check.evidence if e.url), None)
        out.append(BoardLineOut(**check.model_dump(), link=first or history_url(line.item.key)))
    evaluated = any(line.result for line in lines)
    note = (
        (None, None)
        if evaluated
        else ("尚無查核結果（查核程序是否執行中？）", "no results yet: is the compliance process running?")
    )
    return BoardOut(evaluated=evaluated, note_zh=note[0], note_en=note[1], lines=out)


def _due_state(
    status: Status, next_due: datetime | None, now: datetime
) -> Literal["overdue", "due_soon", "ok", "unknown"]:
    if next_due is None:
        return "unknown"
    if next_due < now:
        return "overdue"
    return "due_soon" if status in ("warn", "fail") else "ok"


def upcoming_tests(ctx: AppContext) -> ScheduleOut:
    """What is due or overdue (the cadence items of the board, most urgent first) and the look-back
    period's tests as `roomguard compliance tests` lists them (blocking: call from a thread)."""
    now, tz = ctx.clock(), site_tz(ctx)
    records = records_of(ctx)
    due = []
    for line in latest_board(records):
        if line.item.key not in SCHEDULED:
            continue
        c = check_out(line)
        days = line.result.days_to_due(now) if line.result else None
        due.append(
            DueOut(
                item=c.item,
                code=c.code,
                title_zh=c.title_zh,
                title_en=c.title_en,
                status=c.status,
                state=_due_state(c.status, c.next_due, now),
                next_due=c.next_due,
                days_left=days,
                reason_zh=c.reason_zh,
                reason_en=c.reason_en,
                link=history_url(c.item),
            )
        )
    order = {"overdue": 0, "due_soon": 1, "unknown": 2, "ok": 3}
    due.sort(key=lambda d: (order[d.state], d.next_due or datetime.max.replace(tzinfo=now.tzinfo)))
    start = now - timedelta(days=compliance_config(ctx).lookback_days)
    recent = [
        PastTest(
            at=e.at.astimezone(tz),
            kind=e.kind,
            subject=e.subject,
            status=e.status,
            text=e.text,
            url=record_url(e.kind, e.ref),
        )
        for e in timeline(records, start, now + timedelta(seconds=1))
    ]
    return ScheduleOut(now=now.astimezone(tz), timezone=tz.key, due=due, recent=recent)


def _duty_out(shift: DutyShift, people: list[Person], ctx: AppContext) -> DutyOut:
    tz = site_tz(ctx)
    person = next((p for p in people if shift.operator in (p.person_id, p.name)), None)
    return DutyOut(
        operator=shift.operator,
        name=person.name if person else None,
        organisation=person.organisation if person else None,
        phone=shift.phone or (person.phone if person else None),
        room=shift.room,
        starts_at=shift.starts_at.astimezone(tz),
        ends_at=shift.ends_at.astimezone(tz),
        ref=shift.ref(),
        url=record_url(shift.KIND, shift.ref()) or "",
    )


def duty_now(ctx: AppContext, room: str | None = None) -> DutyNow:
    """The duty operator on shift now (for `room`: its shifts and the all-rooms ones) from the DutyShift
    and Person records, times in the site's zone (blocking: call from a thread)."""
    now, tz = ctx.clock(), site_tz(ctx)
    records = records_of(ctx)
    shifts = [
        s
        for s in records.of_kind(DutyShift, since=now - timedelta(days=2), until=now + timedelta(days=14))
        if room is None or s.room is None or s.room == room
    ]
    people = records.of_kind(Person)
    on = sorted(
        (s for s in shifts if s.starts_at <= now < s.ends_at), key=lambda s: (s.room is None, s.starts_at)
    )
    upcoming = sorted((s for s in shifts if s.starts_at > now), key=lambda s: s.starts_at)
    nxt = _duty_out(upcoming[0], people, ctx) if upcoming else None
    base = {"at": now.astimezone(tz), "timezone": tz.key, "room": room, "next": nxt}
    if on:
        return DutyNow(
            **base,
            on_duty=_duty_out(on[0], people, ctx),
            also_on_duty=[_duty_out(s, people, ctx) for s in on[1:]],
        )
    where_zh, where_en = (f"機房 {room} ", f" for room {room}") if room else ("", "")
    if not shifts and not upcoming:
        zh, en = f"{where_zh}值班表無紀錄", f"no duty roster recorded{where_en}"
    else:
        zh, en = f"{where_zh}目前無人值班（值班表空缺）", f"no one is on the duty roster now{where_en}"
    return DutyNow(**base, on_duty=None, reason_zh=zh, reason_en=en)


def _item(key: str) -> Item:
    item = BY_KEY.get(key)
    if item is None:
        raise ApiError(
            404, "unknown_item", f"未知查核項目 unknown check item {key!r}; valid: {', '.join(BY_KEY)}"
        )
    return item


@router.get("/api/v1/checks", response_model=list[CheckOut], responses=ERRORS)
async def checks(_: Reader, ctx: Ctx) -> list[CheckOut]:
    """The newest result of every check with its status, reasons and evidence. 查核結果。"""

    def read() -> list[CheckOut]:
        return [check_out(line) for line in latest_board(records_of(ctx))]

    return await run_in_threadpool(read)


@router.get(
    "/api/v1/checks/{item}/history",
    response_model=CheckHistory,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "Unknown item (the valid ones named)."}},
)
async def check_history(
    _: Reader,
    ctx: Ctx,
    item: Annotated[str, Path(description="Item key, e.g. cc16000-05-generator-test.")],
    since: Annotated[IsoTime | None, Query(description="From (the result in force then included).")] = None,
    until: Annotated[IsoTime | None, Query(description="Up to (excluded).")] = None,
) -> CheckHistory:
    """An item's stored results over time (a result is stored when it changes). 查核結果歷程。"""
    found = _item(item)

    def read() -> list[CheckAt]:
        out = []
        for entry in records_of(ctx).check_history(since=since, until=until):
            r = entry.result
            if r.item == found.key:
                out.append(
                    CheckAt(
                        at=entry.at,
                        status=r.status,
                        reason_zh=r.reason_zh,
                        reason_en=r.reason_en,
                        last_evidence_at=r.last_evidence_at,
                        next_due=r.next_due,
                        evidence=_evidence(r),
                    )
                )
        return out

    results = await run_in_threadpool(read)
    return CheckHistory(
        item=found.key, code=found.code, title_zh=found.title_zh, title_en=found.title_en, results=results
    )


@router.get("/api/v1/board", response_model=BoardOut, responses=ERRORS)
async def board(_: StatusReader, ctx: Ctx) -> BoardOut:
    """The CC-16000 board: one line per item, status, reason, evidence link. 查核看板。"""
    return await run_in_threadpool(board_lines, ctx)


@router.get("/api/v1/tests/schedule", response_model=ScheduleOut, responses=ERRORS)
async def schedule(_: StatusReader, ctx: Ctx) -> ScheduleOut:
    """Upcoming and overdue tests, and the recent ones. 測試排程。"""
    return await run_in_threadpool(upcoming_tests, ctx)


@router.get("/api/v1/duty/current", response_model=DutyNow, responses=ERRORS)
async def duty_current(
    _: StatusReader,
    ctx: Ctx,
    room: Annotated[str | None, Query(max_length=100, description="A room id (default: any room).")] = None,
) -> DutyNow:
    """The duty operator on shift now, from the duty roster. 目前值班人員。"""
    return await run_in_threadpool(duty_now, ctx, room)
