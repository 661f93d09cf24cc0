"""Supervised child processes (bus/child.py): restarted when they exit, stopped with the parent's stop,
run at the requested lower CPU priority, and a configuration exit (code 2) is not restarted."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bus.child import supervise_child


async def test_the_child_runs_niced_and_is_restarted_until_stopped(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    # Each run appends its niceness and exits at once: the supervisor must start it again.
    code = f"import os; open({str(out)!r}, 'a').write(str(os.nice(0) - {os.nice(0)}) + '\\n')"
    stop = asyncio.Event()
    task = asyncio.create_task(supervise_child([sys.executable, "-c", code], "test", stop, nice=5))
    async with asyncio.timeout(30):
        while not out.exists() or len(out.read_text().split()) < 2:  # noqa: ASYNC110 - a file, no event
            await asyncio.sleep(0.1)
    stop.set()
    async with asyncio.timeout(30):
        await task
    assert set(out.read_text().split()) == {"5"}


async def test_a_configuration_exit_is_not_restarted() -> None:
    stop = asyncio.Event()
    with pytest.raises(RuntimeError, match="code 2"):
        async with asyncio.timeout(30):
            await supervise_child([sys.executable, "-c", "raise SystemExit(2)"], "test", stop)
