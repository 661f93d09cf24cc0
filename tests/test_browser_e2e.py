"""Acceptance of the web pages against the real pipeline, in headless Debian Chromium.

The example site (free ports, the test's mosquitto and influxd, `api: {enabled: true}` with a short page
refresh) is simulated by `roomguard simulate` and run by `roomguard run` (collector, ingest, alerts,
compliance and the API as its children), set up as a site would be: users added with `roomguard users …
add --password-file`, the duty shift recorded with `roomguard compliance … record duty`. In the browser the
operator logs in through the form, sees the room's readings arrive live from MQTT, `roomguard scenario
… crac_failure` makes crac-1 report a critical status, the status page (reloading itself) shows the
CRAC alert, the operator acknowledges it with the page's button and sees it acknowledged; the audit log
(`roomguard audit … show`) holds the ack from `api:127.0.0.1`; the door display (no login) shows the
roster's operator and the room alerting. Every page is checked by axe-core and screenshotted (e2e-*).

Waits are generous upper limits that end with a diagnosis (the run log's tail and the page's text).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from collector.scenario_cli import call
from testkit.browser import axe_check, launch, login, screenshot
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.ports import reserve_port
from testkit.services import Influxd, Mosquitto
from tests.pipeline_support import log_tails, spawn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

T = TypeVar("T")
PASSWORD = "e2e-pass-42"
OPERATOR, OPERATOR_NAME = "otto", "歐陽奧托"
APPROVER = "april"
DUTY_PHONE = "0912-000-111"
# The page reloads itself this often (the smallest the settings allow is 5 s; 10 s leaves the ack form
# time to be filled and posted between two reloads on a slow box).
REFRESH_S = 10
# The simulated room runs fast (the CRAC's failure heats the room within seconds, so temperature alerts
# with forecasts come too), as the alert scenario tests do.
SPEED = 20
# crac-1 (liebert-gp-crac, SNMPv3) reports unit_state off once failed: the pack's crac-redundancy-lost
# (critical, the room's N+1, held 30 s wall time) fires, naming the failed unit.
CRAC_ALERT = re.compile(r"crac 正常運轉 1/2 台，少於所需 2 台（crac-1）")  # noqa: RUF001 (the shipped zh-TW text)


def until(cond: Callable[[], T | None], what: str, diagnosis: Callable[[], str], limit_s: float) -> T:
    """Poll `cond` (synchronously: Playwright's sync API runs no asyncio loop beside it) until truthy."""
    start = time.monotonic()
    while not (value := cond()):
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}\n{diagnosis()}")
        time.sleep(0.5)
    print(f"{what}: {time.monotonic() - start:.1f} s")
    return value


@dataclass
class Pipeline:
    """The running site: its file, state directory, environment, API URL and logs."""

    site: Path
    state: Path
    env: dict[str, str]
    url: str
    logs: list[Path]

    def roomguard(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """One `roomguard` command on this site, as a person at the box runs it; must succeed."""
        out = subprocess.run(
            [sys.executable, "-m", "roomguard", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = f"{out.returncode}\n{out.stdout}\n{out.stderr}"
        assert out.returncode == 0, f"roomguard {' '.join(argv)}: {said}"
        return out

    def diagnosis(self, page: Page | None = None) -> str:
        """The logs' tails and what the page shows, for a wait that failed."""
        text = ""
        if page is not None:
            try:
                text = f"--- page {page.url}\n{page.inner_text('body')[:3000]}"
            except Exception as exc:  # the page may be mid-reload: say so rather than hide the logs
                text = f"--- page {page.url}: unreadable ({exc})"
        return f"{log_tails(self.logs, 3000)}\n{text}"


def _site(folder: Path, broker: Mosquitto, influxd: Influxd, api_port: int) -> tuple[Path, int]:
    influxd.create_database("browser_e2e")
    site, http_port = example_site(
        folder / "site.yaml",
        mqtt=(
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},"
            " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        ),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{influxd.port}', api: v1, database: browser_e2e}}\n",
    )
    with site.open("a", encoding="utf-8") as fh:
        fh.write(f"\napi:\n  enabled: true\n  port: {api_port}\n  page_refresh_s: {REFRESH_S}\n")
    return site, http_port


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _simulator_answers(control: str) -> bool:
    try:
        call(control, "GET")
    except Exception:
        return False
    return True


@pytest.fixture
def pipeline(mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path) -> Iterator[Pipeline]:
    api_port = reserve_port()
    site, http_port = _site(tmp_path, mosquitto, influxd, api_port)
    state = tmp_path / "state"
    env = {**os.environ, **SECRETS, "ROOMGUARD_MQTT_PASSWORD": mosquitto.password}
    sim_log, run_log = tmp_path / "simulate.log", tmp_path / "run.log"
    p = Pipeline(site, state, env, f"http://127.0.0.1:{api_port}", [sim_log, run_log])
    # Set up as a site is: users and the duty roster through the CLI, before the services start.
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    s = ("--state-dir", str(state))
    p.roomguard("users", str(site), "add", OPERATOR, "--role", "operator", "--display-name", OPERATOR_NAME,
                "--password-file", str(secret), "--by", "admin", *s)  # fmt: skip
    p.roomguard("users", str(site), "add", APPROVER, "--role", "approver", "--password-file", str(secret),
                "--by", "admin", *s)  # fmt: skip
    now = datetime.now(ZoneInfo("Asia/Taipei"))  # the example site's time zone

    def local(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M")

    p.roomguard("compliance", str(site), "record", "duty", f"operator={OPERATOR_NAME}",
                f"starts_at={local(now - timedelta(hours=1))}", f"ends_at={local(now + timedelta(hours=11))}",
                "room=mr1", f"phone={DUTY_PHONE}", "--by", APPROVER, *s)  # fmt: skip
    control = f"http://127.0.0.1:{http_port}"
    simulate = ["simulate", str(site), "--http-port", str(http_port), "--speed", str(SPEED)]
    with spawn(simulate, env, sim_log) as sim:
        until(lambda: _simulator_answers(control) or sim.poll() is not None, "the simulator", p.diagnosis, 60)
        assert sim.poll() is None, p.diagnosis()
        with spawn(["run", str(site), *s], env, run_log) as run:
            until(lambda: _healthy(p.url) or run.poll() is not None, "the API of run", p.diagnosis, 120)
            assert run.poll() is None, p.diagnosis()
            yield p


def _row_with_values(page: Page, device: str) -> bool:
    """Reload; True once the device's row shows a number and the quality 正常 (good)."""
    page.reload()
    row = page.locator(f"#device-{device}")
    if row.count() == 0:
        return False
    text = row.inner_text()
    return "正常" in text and bool(re.search(r"temp_c \d+(\.\d+)?", text))


def test_the_operator_sees_the_live_room_acknowledges_the_crac_alert_and_the_door_shows_it(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(locale="zh-TW")
        page = context.new_page()
        page.set_default_timeout(30_000)

        # Log in through the form; the room's readings arrive live (MQTT → the API's live view).
        login(page, p.url, OPERATOR, PASSWORD)
        assert OPERATOR in page.locator("header").inner_text(), p.diagnosis(page)

        def seen() -> str:
            return p.diagnosis(page)

        until(lambda: _row_with_values(page, "th-a01"), "th-a01's live reading", seen, 90)
        axe_check(page, "status page with live readings 即時讀值")
        screenshot(page, "e2e-status-live")

        # The CRAC fails; the page, reloading itself, shows the alert.
        p.roomguard("scenario", str(p.site), "crac_failure", "--device", "crac-1")
        alert = page.locator("tr[id^='alert-']").filter(has_text=CRAC_ALERT)

        def shown() -> bool:
            return alert.count() == 1

        until(shown, "the CRAC alert on the status page", seen, 120)
        axe_check(page, "status page with the CRAC alert 空調告警")
        screenshot(page, "e2e-status-alert")

        # Acknowledge it with the page's button (right after a fresh load: the next reload is REFRESH_S away).
        page.goto(f"{p.url}/")
        alert.get_by_label("備註").fill("e2e 已通知空調廠商")
        alert.get_by_role("button", name="確認").click()
        page.wait_for_url(re.compile(r"msg=flash\.acked"))
        assert "已確認告警" in page.get_by_role("status").first.inner_text(), p.diagnosis(page)
        acked = alert.inner_text()
        assert OPERATOR in acked, p.diagnosis(page)
        assert alert.get_by_role("button", name="確認").count() == 0, acked
        axe_check(page, "status page after the ack 確認後")
        screenshot(page, "e2e-status-acked")

        # The audit log has the ack, by the operator, from the browser's address.
        shown_log = p.roomguard("audit", str(p.site), "show", "--state-dir", str(p.state)).stdout
        entries = [json.loads(line) for line in shown_log.splitlines() if line.strip()]
        acks = [e for e in entries if e["action"] == "alert.ack"]
        assert acks, shown_log[-3000:]
        assert any(
            e["actor"] == OPERATOR
            and e["source"] == "api:127.0.0.1"
            and "crac-redundancy-lost" in e["entity_id"]  # the alert's dedup key names its rule
            and e["after"]["acked_by"] == OPERATOR
            for e in acks
        ), acks

        # The door display, without a login: the roster's operator and the room alerting.
        door = browser.new_context(locale="zh-TW").new_page()
        door.goto(f"{p.url}/door/mr1")
        main = door.inner_text("main")
        assert OPERATOR_NAME in main, p.diagnosis(door)
        assert DUTY_PHONE in main, main
        # Alerting, with a critical one: crac-redundancy-lost (the temperature alerts are warnings first).
        assert re.search(r"告警中: 嚴重 [1-9]", main), main
        assert "登出" not in door.inner_text("body")
        axe_check(door, "door display 門口看板")
        screenshot(door, "e2e-door")
        browser.close()
