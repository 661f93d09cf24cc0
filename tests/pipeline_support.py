"""Running roomguard processes for end-to-end tests: subprocesses with their logs, a simulator that is
up, and waiting for a condition with a diagnosis when it does not come."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from collector.scenario_cli import call
from testkit.example_site import ROOT

T = TypeVar("T")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def spawn(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m roomguard ARGV` with its output in `log`; stopped on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roomguard", *argv], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        try:
            yield proc
        finally:
            stop_process(proc)


async def simulator_up(control: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float = 30) -> None:
    """Wait until the simulator's control API answers (fail with its log if it exits or takes too long)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        try:
            await asyncio.to_thread(call, control, "GET")
            return
        except Exception:
            assert proc.poll() is None, f"simulator exited: {log_tails([log], 2000)}"
            assert loop.time() < deadline, f"simulator not up in {limit_s:g} s: {log_tails([log], 2000)}"
            await asyncio.sleep(0.2)


async def wait_for(
    cond: Callable[[], T | None], what: str, diagnosis: Callable[[], str], limit_s: float = 60.0
) -> T:
    """Wait for `cond` to return something truthy (and return it), or fail with `diagnosis()`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not (value := cond()):
        if loop.time() - start > limit_s:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}\n{diagnosis()}")
        await asyncio.sleep(0.2)
    print(f"{what}: {loop.time() - start:.1f} s")  # shown with -s, or with a failure
    return value


def log_tails(logs: list[Path], chars: int = 1500) -> str:
    """The end of each log, for a diagnosis."""
    out = []
    for log in logs:
        with contextlib.suppress(OSError):
            out.append(f"--- {log.name} (tail)\n" + log.read_text(errors="replace")[-chars:])
    return "\n".join(out)
