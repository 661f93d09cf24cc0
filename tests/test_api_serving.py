"""Serving the API as a roomguard process: `roomguard api` and `roomguard run` (api.enabled) listen,
write the `api` status snapshot `roomguard status` shows, answer doctor's /healthz probe, and a port
already taken is a clear error (exit 2) naming the address and the setting to change."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from roomguard.doctor import expected_services, gather_api
from roomguard.doctor_judge import judge_api
from siteconfig.config import load_site
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.ports import reserve_port
from tests.pipeline_support import log_tails, spawn, wait_for

pytestmark = pytest.mark.integration


def _site(tmp_path: Path, port: int, enabled: bool = True) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    site, _ = example_site(tmp_path / "site.yaml")
    with site.open("a") as fh:
        fh.write(f"\napi:\n  enabled: {'true' if enabled else 'false'}\n  port: {port}\n")
    return site


def _env() -> dict[str, str]:
    return {**os.environ, **SECRETS}


def _healthz(port: int) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return None


def _roomguard(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomguard", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_roomguard_api_serves_writes_its_snapshot_and_answers_doctor(tmp_path: Path) -> None:
    port = reserve_port()
    site = _site(tmp_path, port)
    state = tmp_path / "state"
    log = tmp_path / "api.log"
    loaded = load_site(site)
    assert "api" in expected_services(loaded)
    assert "api" not in expected_services(load_site(_site(tmp_path / "off", port, enabled=False)))
    with spawn(["api", str(site), "--state-dir", str(state)], _env(), log) as proc:
        await wait_for(
            lambda: _healthz(port) == 200,
            "api /healthz 200",
            lambda: f"exit {proc.poll()}\n{log_tails([log])}",
            limit_s=90,
        )
        snap = await wait_for(
            lambda: (state / "api.json").is_file() and json.loads((state / "api.json").read_text()),
            "api snapshot",
            lambda: log_tails([log]),
        )
        assert snap["listen"] == f"http://127.0.0.1:{port}"
        assert snap["running"] is True
        assert snap["pid"] == proc.pid
        status = await asyncio.to_thread(_roomguard, "status", str(site), "--state-dir", str(state))
        assert f"api 網頁與 API: running 執行中 (pid {proc.pid}" in status.stdout, status.stdout
        assert f"http://127.0.0.1:{port}" in status.stdout
        check = judge_api(await gather_api(loaded))
        assert check.status == "ok", check
    # Stopped (SIGTERM): a clean stop in the snapshot, and doctor's probe names the address.
    assert proc.returncode == 0, log_tails([log])
    assert json.loads((state / "api.json").read_text())["running"] is False
    check = judge_api(await gather_api(loaded))
    assert check.status == "fail"
    assert f"127.0.0.1:{port}/healthz" in check.en
    assert "roomguard-api" in check.fix


def test_a_taken_port_is_a_clear_error_of_api_and_of_run(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        site = _site(tmp_path, port)
        for argv in (["api", str(site)], ["run", str(site)]):
            out = _roomguard(*argv, "--state-dir", str(tmp_path / "state"))
            assert out.returncode == 2, out.stdout + out.stderr
            assert f"127.0.0.1:{port} is already in use" in out.stderr, out.stderr
            assert "api.port" in out.stderr


async def test_run_starts_the_api_when_the_site_file_enables_it(tmp_path: Path) -> None:
    port = reserve_port()
    site = _site(tmp_path, port)
    state = tmp_path / "state"
    log = tmp_path / "run.log"
    # No broker here: the collector and ingest keep retrying it, the API serves all the same.
    with spawn(["run", str(site), "--state-dir", str(state)], _env(), log) as proc:
        await wait_for(
            lambda: _healthz(port) == 200,
            "run's api child /healthz 200",
            lambda: f"exit {proc.poll()}\n{log_tails([log])}",
            limit_s=120,
        )
        snap = json.loads((state / "api.json").read_text())
        assert snap["pid"] != proc.pid  # a child of run, not run itself
