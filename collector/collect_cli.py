"""`roomguard collect | ingest | run | status`: the long-running pipeline processes and their status."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from collector.config import SiteConfig

SiteArg = Annotated[Path, typer.Argument(help="Site configuration YAML.", exists=False)]
StateDir = Annotated[
    Path, typer.Option("--state-dir", help="Outbox, sequence numbers and status snapshots live here.")
]
DEFAULT_STATE = Path("var/state")
CollectorId = Annotated[
    str | None, typer.Option("--collector-id", help="Collector id in topics and client id (default: host).")
]
Verbose = Annotated[bool, typer.Option("-v", help="Log at debug level.")]
Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def _logging(verbose: bool) -> None:
    from collector.logs import configure_logging

    configure_logging(verbose)


def _load(path: Path, *, secrets: bool = True) -> SiteConfig:
    from collector.cli import _load as load  # the same check-config gate as every other command

    return load(path, secrets=secrets)


async def _until_signal(
    jobs: list[Job], seconds: float = 0
) -> None:
    """Run `jobs` with one shared stop event, set by SIGINT/SIGTERM or after `seconds`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    timer = loop.call_later(seconds, stop.set) if seconds > 0 else None
    tasks = [asyncio.create_task(job(stop)) for job in jobs]
    try:
        # One job failing (config, locked outbox) stops the others too, then its error is raised.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            t.result()
    finally:
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def _collector_job(
    site: SiteConfig, state_dir: Path, collector_id: str | None
) -> Job:
    from collector.collect import run_collector

    return lambda stop: run_collector(site, state_dir, stop, collector_id=collector_id)


def _ingest_job(
    site: SiteConfig, state_dir: Path, index: int, shared: str | None
) -> Job:
    # Imported when the command runs, so the other commands work without the ingest dependencies.
    from collector.ingest_run import run_ingest

    return lambda stop: run_ingest(site, state_dir, stop, client_index=index, shared_group=shared)


def _fail(exc: Exception) -> typer.Exit:
    # The exception text names files and hosts, never a secret (SecretRef and BrokerSettings redact).
    typer.echo(f"roomguard: {type(exc).__name__}: {exc}", err=True)
    return typer.Exit(1)


def collect(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    collector_id: CollectorId = None,
    verbose: Verbose = False,
) -> None:
    """Poll the site and publish every reading to MQTT through the durable outbox. 收集並發佈讀值。"""
    _logging(verbose)
    site = _load(path)
    try:
        asyncio.run(_until_signal([_collector_job(site, state_dir, collector_id)]))
    except Exception as exc:
        raise _fail(exc) from None


def ingest(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    index: Annotated[int, typer.Option("--index", help="Ingest process number (client id suffix).")] = 0,
    shared: Annotated[
        str | None, typer.Option("--shared", help="Shared-subscription group to split the load.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Subscribe to the site's readings and write them to InfluxDB. 將讀值寫入 InfluxDB。"""
    _logging(verbose)
    site = _load(path)
    try:
        asyncio.run(_until_signal([_ingest_job(site, state_dir, index, shared)]))
    except Exception as exc:
        raise _fail(exc) from None


def run(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0,
    collector_id: CollectorId = None,
    verbose: Verbose = False,
) -> None:
    """Collector and ingest with one command (a single edge box); ingest runs as a child process so that
    writing a backlog never slows polling down. 收集與寫入一併執行。"""
    from collector.ingest_child import run_ingest_child

    _logging(verbose)
    site = _load(path)
    jobs: list[Job] = [
        _collector_job(site, state_dir, collector_id),
        lambda stop: run_ingest_child(path, state_dir, stop, verbose=verbose),
    ]
    try:
        asyncio.run(_until_signal(jobs, seconds))
    except Exception as exc:
        raise _fail(exc) from None


def status(path: SiteArg, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show per-device last poll and quality, outbox and drops, broker and database state. 顯示狀態。"""
    from collector.collect_status import format_status

    site = _load(path, secrets=False)  # reads snapshots only: no secret needed to look
    typer.echo(format_status(state_dir, site.site.id, tz=ZoneInfo(site.site.timezone)))


def register(app: typer.Typer) -> None:
    """Mount the pipeline commands."""
    app.command("collect")(collect)
    app.command("ingest")(ingest)
    app.command("run")(run)
    app.command("status")(status)
