"""`roomguard run`'s ingest, in a child process: writing a backlog must never slow polling down.

In one process, decoding and writing a backlog of thousands of readings shares the event loop (and the
GIL) with the poller: every poll waits behind slices of ingest work at each of its awaits, and the polls
of devices behind one Modbus gateway, which take turns, fall seconds behind (measured: 3.5 s between
polls of a 1 s device while 5,000 genset-sized readings were written). As its own process ingest runs on
the other core and polling keeps its cadence.

The child is `roomguard ingest` with the same site file and state directory. It dies with its parent
(Linux PR_SET_PDEATHSIG), so a killed `run` never leaves an ingest behind to fight the next one for its
MQTT client id; it is restarted, with backoff, if it exits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from pathlib import Path

_LOG = logging.getLogger("collector.ingest")
PR_SET_PDEATHSIG = 1  # prctl(2)
RESTART_FIRST_S = 1.0
RESTART_CAP_S = 30.0
STOP_TIMEOUT_S = 30.0


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (prctl(2) PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def run_ingest_child(site_path: Path, state_dir: Path, stop: asyncio.Event, *, verbose: bool) -> None:
    """Run and supervise `roomguard ingest` for `site_path` until `stop` is set, then stop it cleanly."""
    argv = [sys.executable, "-m", "roomguard", "ingest", str(site_path), "--state-dir", str(state_dir)]
    if verbose:
        argv.append("-v")
    delay = RESTART_FIRST_S
    while not stop.is_set():
        # stdout/stderr are inherited: the child logs where `run` logs.
        proc = await asyncio.create_subprocess_exec(*argv, preexec_fn=_die_with_parent)
        waiter = asyncio.create_task(proc.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            await _stop(proc, waiter)
            return
        code = waiter.result()
        if code == 2:  # bad input (site file, secret): restarting cannot help
            raise RuntimeError("ingest exited with code 2 (configuration); see its message above")
        _LOG.error("ingest child exited with code %s; restarting it in %g s", code, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RESTART_CAP_S)


async def _stop(proc: asyncio.subprocess.Process, waiter: asyncio.Task[int]) -> None:
    """SIGTERM (ingest writes what it holds, then exits), SIGKILL if it takes too long."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(waiter), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await waiter


__all__ = ["run_ingest_child"]
