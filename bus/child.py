"""A supervised child process that dies with its parent (`roomguard run` runs ingest this way).

Why ingest is a child of `run`: writing a backlog must never slow polling down.

In one process, decoding and writing a backlog of thousands of readings shares the event loop (and the
GIL) with the poller: every poll waits behind slices of ingest work at each of its awaits, and the polls
of devices behind one Modbus gateway, which take turns, fall seconds behind (measured: 3.5 s between
polls of a 1 s device while 5,000 genset-sized readings were written). As its own process ingest runs on
the other core and polling keeps its cadence.

For `run` the child is `roomguard ingest` with the same site file and state directory. It dies with its
parent (Linux PR_SET_PDEATHSIG), so a killed `run` never leaves an ingest behind to fight the next one for
its MQTT client id; it is restarted, with backoff, if it exits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys

_LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # prctl(2)
RESTART_FIRST_S = 1.0
RESTART_CAP_S = 30.0
STOP_TIMEOUT_S = 30.0


def _in_child(nice: int) -> None:
    """In the child before exec: get SIGTERM when the parent dies (prctl(2) PR_SET_PDEATHSIG), and
    lower its CPU priority by `nice`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)


def roomguard_argv(*args: str) -> list[str]:
    """The command line of a `roomguard` sub-command run by this interpreter."""
    return [sys.executable, "-m", "roomguard", *args]


async def supervise_child(argv: list[str], name: str, stop: asyncio.Event, *, nice: int = 0) -> None:
    """Run `argv` as a child, restarting it with backoff if it exits, until `stop`; then stop it cleanly.

    Exit code 2 (bad input: site file, secret) is not restarted: it raises instead. `nice` lowers the
    child's CPU priority (nice(2)): for `run`, polling keeps the CPU first when the box is starved and
    ingest catches up after (the broker holds what it has not acked)."""
    delay = RESTART_FIRST_S
    while not stop.is_set():
        # stdout/stderr are inherited: the child logs where `run` logs.
        proc = await asyncio.create_subprocess_exec(*argv, preexec_fn=functools.partial(_in_child, nice))
        waiter = asyncio.create_task(proc.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            await _stop(proc, waiter)
            return
        code = waiter.result()
        if code == 2:  # bad input (site file, secret): restarting cannot help
            raise RuntimeError(f"{name} exited with code 2 (configuration); see its message above")
        _LOG.error("%s child exited with code %s; restarting it in %g s", name, code, delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        delay = min(delay * 2, RESTART_CAP_S)


async def _stop(proc: asyncio.subprocess.Process, waiter: asyncio.Task[int]) -> None:
    """SIGTERM (ingest writes what it holds, then exits), SIGKILL if it takes too long."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await asyncio.shield(waiter)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await waiter


__all__ = ["roomguard_argv", "supervise_child"]
