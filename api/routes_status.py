"""The room now: newest readings and quality per device, the device list, and the status of the
collectors and of the box's processes (what `roomguard status` shows, as JSON)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.context import Ctx
from api.errors import ApiError, ErrorBody
from api.live_model import DeviceLive, Live, LiveSnapshot, Value
from api.roles import Permission
from bus.status_report import ProcessFigures, ProcessState, state_dir_figures

router = APIRouter(tags=["status"])
Viewer = Annotated[Principal, Depends(require(Permission.STATUS_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not logged in."},
    403: {"model": ErrorBody, "description": "Needs status.read (every role)."},
}


class MetricOut(BaseModel):
    """One metric of a device's newest reading."""

    name: str
    value: Value = Field(description="Null unless quality is good.")
    unit: str | None = Field(description="°C, %, V, … (null for states, flags and counts).")
    quality: str = Field(description="good, stale, comm_error, decode_error, auth_error, unavailable.")


class DeviceReadingOut(BaseModel):
    """A device of the site file and its newest reading (none yet: `at` null, quality `none`)."""

    device: str
    name: str
    device_class: str = Field(description="ups, genset, crac, env, door, contact, … ('' until known).")
    room: str
    zone: str | None
    rack: str | None
    model: str = Field(description="The device's profile.")
    at: datetime | None = Field(description="Time of the newest reading (poll time, UTC).")
    age_s: float | None = Field(description="Seconds since `at`.")
    quality: str = Field(description="The poll's quality (good, partial, comm_error, …); none: no reading.")
    poll_s: float | None = Field(description="How long the newest poll took, seconds.")
    status: str | None = Field(description="online/offline as the collector says; null: not heard.")
    metrics: list[MetricOut]


class ReadingsOut(BaseModel):
    """Every device of the site file with its newest reading."""

    taken_at: datetime
    connected: bool = Field(description="Whether the API hears the broker now (else the values age).")
    devices: list[DeviceReadingOut]


class DeviceOut(BaseModel):
    """A device of the site file: where it is and how it is doing."""

    device: str
    name: str
    device_class: str
    room: str
    zone: str | None
    rack: str | None
    model: str
    status: str | None = Field(description="online/offline (retained device status); null: not heard.")
    status_reason: str | None
    status_at: datetime | None
    quality: str = Field(description="The newest poll's quality; none: no reading since the API started.")
    last_seen: datetime | None = Field(description="Time of the newest reading.")
    age_s: float | None


class CollectorOut(BaseModel):
    """A collector's connection as its retained status says (its last will says offline)."""

    collector: str
    state: str
    at: datetime
    reason: str | None


class ProcessOut(BaseModel):
    """A process of the box as its status snapshot in the state directory says (`roomguard status`)."""

    name: str = Field(description="collector, ingest, alerts, compliance, …")
    state: ProcessState = Field(
        description="running; stopped (cleanly); dead (killed or crashed); stale (no snapshot for 15 s); "
        "unknown; unreadable."
    )
    alive: bool = Field(description="state is running.")
    snapshot_age_s: float | None
    pid: int | None
    broker_connected: bool | None = Field(description="Its MQTT link (null: not running or not told).")
    outbox_depth: int | None = Field(description="Collector: messages held until ingest confirms them.")
    outbox_oldest_age_s: float | None = Field(
        description="Collector: age of the oldest reading not yet confirmed stored (the ingest lag)."
    )
    outbox_dropped: int | None
    backlog: int | None = Field(description="Ingest: received, not yet written.")
    last_write_age_s: float | None = Field(description="Ingest: seconds since its last database write.")
    db_state: str | None = Field(description="Ingest: ok, or why not.")


class StatusOut(BaseModel):
    """The collectors' connections, the API's own broker link and the box's processes."""

    taken_at: datetime
    broker_connected: bool = Field(description="The API's own live view hears the broker.")
    messages: int = Field(description="Bus messages the live view received since the API started.")
    rejected: int = Field(description="Of them, messages that broke the wire contract (dropped).")
    collectors: list[CollectorOut]
    processes: list[ProcessOut]
    outbox_depth: int | None = Field(description="The collector's outbox depth (null: no collector).")
    ingest_lag_s: float | None = Field(
        description="Age of the oldest reading the database has not confirmed (null: no collector)."
    )


def _age(snap: LiveSnapshot, at: datetime | None) -> float | None:
    return None if at is None else round((snap.taken_at - at).total_seconds(), 3)


def reading_out(snap: LiveSnapshot, d: DeviceLive) -> DeviceReadingOut:
    """One device's newest reading as the API shows it."""
    return DeviceReadingOut(
        device=d.device,
        name=d.name,
        device_class=d.device_class,
        room=d.room,
        zone=d.zone,
        rack=d.rack,
        model=d.model,
        at=d.at,
        age_s=_age(snap, d.at),
        quality=d.quality,
        poll_s=d.duration_s,
        status=d.status,
        metrics=[
            MetricOut(name=n, value=m.value, unit=m.unit, quality=m.quality) for n, m in d.metrics.items()
        ],
    )


def process_out(p: ProcessFigures) -> ProcessOut:
    """A process snapshot's figures as the API shows them."""
    return ProcessOut(
        name=p.name,
        state=p.state,
        alive=p.state == "running",
        snapshot_age_s=None if p.snapshot_age_s is None else round(p.snapshot_age_s, 3),
        pid=p.pid,
        broker_connected=p.broker_connected,
        outbox_depth=p.outbox_depth,
        outbox_oldest_age_s=p.outbox_oldest_age_s,
        outbox_dropped=p.outbox_dropped,
        backlog=p.backlog,
        last_write_age_s=None if p.last_write_age_s is None else round(p.last_write_age_s, 3),
        db_state=p.db_state,
    )


def processes(state_dir: Path, now: datetime) -> list[ProcessFigures]:
    """The state directory's process snapshots (blocking file reads: call in a worker thread)."""
    return state_dir_figures(state_dir, now)


@router.get("/api/v1/readings", response_model=ReadingsOut, responses=ERRORS)
async def readings(_: Viewer, live: Live, request: Request) -> Response:
    """Every device's newest values with units and quality, reading time and age. 即時讀值。"""
    snap = live.snapshot()
    # The body is a function of the snapshot alone (ages are as of its time), and a live source hands
    # out the same snapshot until a message arrives: serialized once per snapshot, not per request (the
    # most polled route; bench/api.py). Returned as a model, FastAPI would also dump it, validate the
    # dump against the same model and serialize that.
    held = getattr(request.app.state, "readings_body", None)
    if held is None or held[0] is not snap:
        out = ReadingsOut(
            taken_at=snap.taken_at,
            connected=snap.connected,
            devices=[reading_out(snap, d) for d in snap.devices],
        )
        held = (snap, out.model_dump_json().encode())
        request.app.state.readings_body = held
    return Response(held[1], media_type="application/json")


@router.get(
    "/api/v1/readings/{device}",
    response_model=DeviceReadingOut,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "No such device in the site file."}},
)
async def device_readings(
    _: Viewer, live: Live, device: Annotated[str, PathParam(description="Device id (site file).")]
) -> DeviceReadingOut:
    """One device's newest values. 單一設備讀值。"""
    snap = live.snapshot()
    found = snap.device(device)
    if found is None:
        known = ", ".join(d.device for d in snap.devices) or "(none: no site file)"
        raise ApiError(404, "unknown_device", f"沒有這個設備 no device {device!r}; known devices: {known}")
    return reading_out(snap, found)


@router.get("/api/v1/devices", response_model=list[DeviceOut], responses=ERRORS)
async def devices(_: Viewer, live: Live) -> list[DeviceOut]:
    """Every device of the site file with its status, quality and when it was last heard. 設備清單。"""
    snap = live.snapshot()
    return [
        DeviceOut(
            device=d.device,
            name=d.name,
            device_class=d.device_class,
            room=d.room,
            zone=d.zone,
            rack=d.rack,
            model=d.model,
            status=d.status,
            status_reason=d.status_reason,
            status_at=d.status_at,
            quality=d.quality,
            last_seen=d.at,
            age_s=_age(snap, d.at),
        )
        for d in snap.devices
    ]


@router.get("/api/v1/status", response_model=StatusOut, responses=ERRORS)
async def status(_: Viewer, ctx: Ctx, live: Live) -> StatusOut:
    """Collectors' connections, the API's broker link, and the box's processes (as `roomguard
    status`): alive or not, outbox depth, ingest lag. 系統狀態。"""
    snap = live.snapshot()
    procs = await run_in_threadpool(processes, ctx.state_dir, ctx.clock())
    collector = next((p for p in procs if p.name == "collector"), None)
    return StatusOut(
        taken_at=snap.taken_at,
        broker_connected=snap.connected,
        messages=snap.messages,
        rejected=snap.rejected,
        collectors=[
            CollectorOut(collector=c.collector, state=c.state, at=c.at, reason=c.reason)
            for c in snap.collectors
        ],
        processes=[process_out(p) for p in procs],
        outbox_depth=collector.outbox_depth if collector else None,
        ingest_lag_s=collector.outbox_oldest_age_s if collector else None,
    )
