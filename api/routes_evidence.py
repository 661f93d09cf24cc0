"""Evidence packs over REST: generate one for a period in a worker thread (`compliance.pack.build_pack`,
what `roomguard compliance evidence-pack` runs), follow its progress, list them, download the zip.

Generating is audited `evidence.generate` when asked and `evidence.generated` / `evidence.failed` when
it ends; every download `evidence.download` (who took which pack, with its SHA-256).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, audit_actor, require
from api.compliance_support import records_of
from api.context import AppContext, Ctx
from api.errors import ApiError, ErrorBody
from api.evidence_jobs import FOLDER, JobRunning, JobState, PackJob, PackJobs
from api.roles import Permission
from compliance.pack import StepHook, build_pack, day_period
from records.audit import Actor, append
from records.db import session_factory

router = APIRouter(tags=["evidence"])
Generator = Annotated[Principal, Depends(require(Permission.EVIDENCE_GENERATE))]
Downloader = Annotated[Principal, Depends(require(Permission.EVIDENCE_DOWNLOAD))]
Reader = Annotated[Principal, Depends(require(Permission.RECORDS_READ))]
JobPath = Annotated[str, Path(max_length=64, description="The job id POST returned.")]
SHA256_HEADER = "X-Content-SHA256"
ENTITY = "evidence_pack"
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A body that is not UTF-8 JSON."},
    401: {"model": ErrorBody, "description": "Not logged in."},
    422: {"model": ErrorBody, "description": "Invalid request."},
    403: {"model": ErrorBody, "description": "Needs the permission the route names."},
    404: {"model": ErrorBody, "description": "No such job."},
}
_jobs_lock = threading.Lock()


class PackRequest(BaseModel):
    """The period of a pack: whole local days of the site, `to` included (as the CLI's --from/--to)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    period_from: date = Field(alias="from", description="First day, YYYY-MM-DD.")
    period_to: date = Field(alias="to", description="Last day (included), YYYY-MM-DD.")


class JobOut(BaseModel):
    """A pack's generation: its state, step and percentage, and once done its file and SHA-256."""

    id: str
    state: JobState
    period_from: date
    period_to: date
    requested_by: str
    requested_at: str
    step: int
    steps: int
    percent: int
    message: str
    error: str | None
    finished_at: str | None
    filename: str
    sha256: str | None
    size: int | None
    url: str
    download_url: str | None


async def jobs_of(request: Request) -> PackJobs:
    """The app's pack jobs (made on first use, over STATE_DIR/evidence-packs)."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    with _jobs_lock:
        jobs = getattr(request.app.state, "evidence_jobs", None)
        if jobs is None:
            jobs = PackJobs(ctx.state_dir / FOLDER, ctx.clock)
            request.app.state.evidence_jobs = jobs
    assert isinstance(jobs, PackJobs)
    return jobs


Jobs = Annotated[PackJobs, Depends(jobs_of)]


def job_out(job: PackJob) -> JobOut:
    """A job as the API shows it."""
    url = f"/api/v1/evidence-packs/{job.id}"
    return JobOut(
        id=job.id,
        state=job.state,
        period_from=job.period_from,
        period_to=job.period_to,
        requested_by=job.requested_by,
        requested_at=job.requested_at.isoformat(),
        step=job.step,
        steps=job.steps,
        percent=job.percent,
        message=job.message,
        error=job.error,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        filename=job.filename,
        sha256=job.sha256,
        size=job.size,
        url=url,
        download_url=f"{url}/download" if job.state == "done" else None,
    )


def _audit(ctx: AppContext, actor: Actor, action: str, job: PackJob, **kw: Any) -> None:
    with session_factory(ctx.engine).begin() as s:
        append(s, actor, action, ENTITY, job.id, at=ctx.clock(), **kw)


def _job(jobs: PackJobs, job_id: str) -> PackJob:
    job = jobs.get(job_id)
    if job is None:
        raise ApiError(404, "no_job", f"查無佐證包 no evidence pack job {job_id!r}")
    return job


@router.post(
    "/api/v1/evidence-packs",
    response_model=JobOut,
    status_code=202,
    responses={
        **ERRORS,
        409: {"model": ErrorBody, "description": "One is being generated already (named), or no site."},
        422: {"model": ErrorBody, "description": "Invalid period."},
    },
)
async def generate(principal: Generator, ctx: Ctx, jobs: Jobs, request: Request, body: PackRequest) -> JobOut:
    """Start generating the evidence pack of a period; poll the job for its progress. 產生查核佐證包。"""
    site = ctx.site
    if site is None:
        raise ApiError(409, "no_site", "未載入場域設定 the API runs without a site file: no pack to make")
    try:
        start, end = day_period(body.period_from, body.period_to, ZoneInfo(site.site.timezone))
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"期間不符 {exc}") from None
    actor = audit_actor(principal, request)
    filename = f"cc16000-{site.site.id}-{body.period_from}-{body.period_to}.zip"
    records = records_of(ctx)
    prepared_by = principal.user.display_name or principal.user.username

    def work(step: StepHook, target: FilePath) -> None:
        asyncio.run(
            build_pack(
                site, records, start, end, target, prepared_by=prepared_by, now=ctx.clock(), on_step=step
            )
        )

    def finished(job: PackJob) -> None:
        if job.state == "done":
            after = {"file": job.filename, "sha256": job.sha256, "size": job.size}
            _audit(ctx, actor, "evidence.generated", job, after=after)
        else:
            _audit(ctx, actor, "evidence.failed", job, note=job.error)

    def begin() -> PackJob:
        job = jobs.start(body.period_from, body.period_to, principal.user.username, filename, work, finished)
        period = {"from": body.period_from.isoformat(), "to": body.period_to.isoformat(), "file": filename}
        _audit(ctx, actor, "evidence.generate", job, after=period)
        return job

    try:
        job = await run_in_threadpool(begin)
    except JobRunning as exc:
        raise ApiError(409, "pack_running", str(exc)) from None
    return job_out(job)


@router.get("/api/v1/evidence-packs", response_model=list[JobOut], responses=ERRORS)
async def list_packs(_: Reader, jobs: Jobs) -> list[JobOut]:
    """Every generation, newest first: running, failed and finished packs. 佐證包清單。"""
    return [job_out(j) for j in jobs.all()]


@router.get("/api/v1/evidence-packs/{job}", response_model=JobOut, responses=ERRORS)
async def pack_job(_: Reader, jobs: Jobs, job: JobPath) -> JobOut:
    """A generation's progress: state, step, percent, error. 佐證包進度。"""
    return job_out(_job(jobs, job))


@router.get(
    "/api/v1/evidence-packs/{job}/download",
    response_class=FileResponse,
    responses={
        **ERRORS,
        200: {"content": {"application/zip": {}}, "description": f"The zip; its SHA-256 in {SHA256_HEADER}."},
        409: {"model": ErrorBody, "description": "Not finished (or failed)."},
    },
)
async def download(
    principal: Downloader, ctx: Ctx, jobs: Jobs, request: Request, job: JobPath
) -> FileResponse:
    """The pack's zip as `compliance evidence-pack` writes it (audited `evidence.download`). 下載佐證包。"""
    found = _job(jobs, job)
    if found.state != "done" or found.sha256 is None:
        raise ApiError(409, "pack_not_ready", f"佐證包尚未完成 evidence pack {job} is {found.state}")
    path = jobs.zip_path(found)
    if not path.is_file():
        raise ApiError(404, "no_job", f"佐證包檔案已不存在 the zip of {job} is gone")
    after = {"file": found.filename, "sha256": found.sha256}
    await run_in_threadpool(
        _audit, ctx, audit_actor(principal, request), "evidence.download", found, after=after
    )
    return FileResponse(
        path, media_type="application/zip", filename=found.filename, headers={SHA256_HEADER: found.sha256}
    )
