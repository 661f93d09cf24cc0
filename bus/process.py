"""Process plumbing shared by every long-running roomguard process: options, signals, exit on failure."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from bus.logs import configure_logging

StateDir = Annotated[
    Path, typer.Option("--state-dir", help="Outbox, sequence numbers and status snapshots live here.")
]
DEFAULT_STATE = Path("var/state")
Verbose = Annotated[bool, typer.Option("-v", help="Log at debug level.")]
Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def tune_gc_for_polling() -> None:
    """Garbage-collector settings for a process that polls devices (the whole process: call it once).

    pyasn1 allocates hundreds of short-lived objects per SNMP message (freed by refcount, not by the
    cycle collector), so the default gen-0 threshold of 700 runs a pointless collection every few
    messages; at 20,000 the 1,000-device benchmark uses ~6 points less of a core. What is alive now
    (modules, profiles) lives for the whole run: frozen, full collections never rescan it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def start_logging(verbose: bool) -> None:
    """The log format and levels of a long-running process."""
    configure_logging(verbose)


async def until_signal(jobs: list[Job], seconds: float = 0) -> None:
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


def run_jobs(jobs: list[Job], seconds: float = 0) -> None:
    """Run `jobs` until a signal (or `seconds`); a failure is one line on stderr and exit code 1."""
    try:
        asyncio.run(until_signal(jobs, seconds))
    except Exception as exc:
        # The exception text names files and hosts, never a secret (SecretRef and BrokerSettings redact).
        typer.echo(f"roomguard: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


__all__ = [
    "DEFAULT_STATE",
    "Job",
    "StateDir",
    "Verbose",
    "run_jobs",
    "start_logging",
    "tune_gc_for_polling",
    "until_signal",
]
