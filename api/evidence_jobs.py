"""Evidence-pack jobs: one at a time in a worker thread, their progress, and the finished packs kept in
the state dir (`evidence-packs/JOB.zip` with `JOB.json`), so a restart still lists and serves them."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
FOLDER = "evidence-packs"
# The job's work: given a (step, of steps, text) callback, build the zip at the given path.
Work = Callable[[Callable[[int, int, str], None], Path], None]
# Called once the job ended (done or failed), from the worker thread: audit it.
Finished = Callable[["PackJob"], None]


class JobRunning(RuntimeError):
    """Another pack is being generated (one at a time: it reads the whole records database)."""

    def __init__(self, job: PackJob) -> None:
        super().__init__(
            f"已有佐證包產生中 evidence pack {job.id} ({job.period_from} to {job.period_to}, "
            f"by {job.requested_by}) is {job.state}: wait for it"
        )
        self.job = job


@dataclass(frozen=True, slots=True)
class PackJob:
    """One generation: period, who asked, where it stands, and the finished zip's name and digest."""

    id: str
    state: JobState
    period_from: date
    period_to: date
    requested_by: str
    requested_at: datetime
    step: int = 0
    steps: int = 0
    message: str = ""
    error: str | None = None
    finished_at: datetime | None = None
    filename: str = ""
    sha256: str | None = None
    size: int | None = None

    @property
    def percent(self) -> int:
        """Done steps as a percentage (100 when done)."""
        if self.state == "done":
            return 100
        if not self.steps:
            return 0
        return min(99, round(100 * max(0, self.step - 1) / self.steps))

    def to_json(self) -> dict[str, Any]:
        """The job as stored beside its zip."""
        out = asdict(self)
        for k in ("period_from", "period_to", "requested_at", "finished_at"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackJob:
        """A job read back from its JSON file."""
        data = dict(data)
        for k in ("period_from", "period_to"):
            data[k] = date.fromisoformat(data[k])
        for k in ("requested_at", "finished_at"):
            data[k] = datetime.fromisoformat(data[k]) if data.get(k) else None
        return cls(**data)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class PackJobs:
    """The jobs of one app: started one at a time, each in its own daemon thread, state kept on disk."""

    def __init__(self, folder: Path, clock: Callable[[], datetime]) -> None:
        self.folder = folder
        self.clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, PackJob] = {}
        self._threads: dict[str, threading.Thread] = {}
        if folder.is_dir():
            for meta in sorted(folder.glob("*.json")):
                try:
                    job = PackJob.from_json(json.loads(meta.read_text(encoding="utf-8")))
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("evidence pack job file %s unreadable: %s", meta, exc)
                    continue
                if job.state in ("queued", "running"):  # the process that ran it ended
                    job = replace(job, state="failed", error="中斷 interrupted: the server stopped")
                self._jobs[job.id] = job

    def zip_path(self, job: PackJob) -> Path:
        """Where the job's zip is (once done)."""
        return self.folder / f"{job.id}.zip"

    def get(self, job_id: str) -> PackJob | None:
        """A job by id."""
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[PackJob]:
        """Every job, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (j.requested_at, j.id), reverse=True)

    def running(self) -> PackJob | None:
        """The job being generated, if any."""
        with self._lock:
            return next((j for j in self._jobs.values() if j.state in ("queued", "running")), None)

    def start(
        self, period_from: date, period_to: date, by: str, filename: str, work: Work, finished: Finished
    ) -> PackJob:
        """Queue a job and start its thread; JobRunning while another one runs."""
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.state in ("queued", "running")), None)
            if busy is not None:
                raise JobRunning(busy)
            job = PackJob(
                id=secrets.token_hex(8),
                state="queued",
                period_from=period_from,
                period_to=period_to,
                requested_by=by,
                requested_at=self.clock(),
                filename=filename,
            )
            self._put(job)
            thread = threading.Thread(
                target=self._run, args=(job.id, work, finished), name=f"evidence-pack-{job.id}", daemon=True
            )
            self._threads[job.id] = thread
        thread.start()
        return job

    def wait(self, job_id: str, timeout: float) -> None:
        """Wait for a job's thread (tests, shutdown)."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)

    def _put(self, job: PackJob) -> None:
        """Keep and store a job's new state (the caller holds the lock)."""
        self._jobs[job.id] = job
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / f"{job.id}.json"
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(job.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(meta)

    def _update(self, job_id: str, **changes: Any) -> PackJob:
        with self._lock:
            job = replace(self._jobs[job_id], **changes)
            self._put(job)
            return job

    def _run(self, job_id: str, work: Work, finished: Finished) -> None:
        self._update(job_id, state="running")

        def step(n: int, of: int, text: str) -> None:
            self._update(job_id, step=n, steps=of, message=text)

        target = self.folder / f"{job_id}.zip"
        try:
            work(step, target)
            final = replace(
                self._jobs[job_id],
                state="done",
                finished_at=self.clock(),
                sha256=sha256_file(target),
                size=target.stat().st_size,
                message="完成 done",
            )
        except Exception as exc:  # any failure ends the job as failed, with its reason kept
            log.exception("evidence pack %s failed", job_id)
            final = replace(
                self._jobs[job_id],
                state="failed",
                finished_at=self.clock(),
                error=f"{type(exc).__name__}: {exc}",
            )
        try:
            finished(final)  # before the job shows as ended: whoever sees it ended finds it audited
        except Exception:  # the audit of the end must not leave the job running forever
            log.exception("evidence pack %s: recording its end failed", job_id)
        with self._lock:
            self._put(final)
