"""The alerts process over a real mosquitto: readings in, a signed webhook out, ack, resolve; a killed
process restarted neither pushes twice nor forgets; a receiver that is down gets the message later; and
the CLI (`roomguard alerts SITE`, `list`, `ack`) works on the same records."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_notify_channels import Receiver, _serve

from alerts.notify.webhook import verify_signature
from alerts.run import AlertsProcess
from bus.status_report import format_status
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.wire import encode_poll, topic_readings
from siteconfig.config import SiteConfig, load_site
from testkit.services import Mosquitto

pytestmark = pytest.mark.integration

KEY = "hook-key-Zq9"
KEY_ENV = "ROOMGUARD_TEST_HOOK_KEY"
PASSWORD_ENV = "ROOMGUARD_TEST_MQTT_PASSWORD"


def _site(tmp: Path, broker: Mosquitto, hook_url: str, second_url: str | None = None) -> SiteConfig:
    site_id = "a" + uuid.uuid4().hex[:8]
    text = f"""\
site: {{id: {site_id}, name: 測試站}}
rooms: [{{id: mr1, name: 機房一}}]
devices:
  - {{id: th-1, name: T, room: mr1, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: 1502, unit_id: 1}}}}
  - {{id: th-2, name: T2, room: mr1, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: 1502, unit_id: 2}}}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, password: {{env: {PASSWORD_ENV}}}}}
alerts:
  default_rules: false
  rules:
    - {{id: hot, kind: threshold, severity: critical, scope: {{classes: [env]}}, metric: temp_c,
       op: above, value: 30, clear: 28}}
  channels:
    hook: {{type: webhook, url: "{hook_url}", key: {{env: {KEY_ENV}}}, timeout_s: 3}}
{{second}}  routes:
    - {{severities: [critical], channels: [{{channels}}]}}
  group_wait_s: 0
"""
    path = tmp / "site.yaml"
    second = (
        f'    broken: {{type: webhook, url: "{second_url}", key: {{env: {KEY_ENV}}}, timeout_s: 3}}\n'
        if second_url
        else ""
    )
    path.write_text(
        text.replace("{second}", second).replace("{channels}", "broken, hook" if second_url else "hook"),
        encoding="utf-8",
    )
    return load_site(path)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.password)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for recv in _serve():
        yield recv


class Publisher:
    """Publishes readings of th-1 the way the collector does (QoS 1, roomguard.readings/1)."""

    def __init__(self, broker: Mosquitto, site: SiteConfig) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.site = site
        self.seq = 0
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:6]}"
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def temp(self, value: float, device: str = "th-1") -> None:
        ref = DeviceRef(self.site.site.id, "mr1", device, DeviceClass.ENV, "sht20-xy-md02")
        poll = PollResult(ref, datetime.now(UTC), (Metric("temp_c", value), Metric("rh_pct", 45.0)))
        topic = topic_readings(self.site.mqtt.topic_prefix, self.site.site.id, "mr1", device)
        self.client.publish(topic, encode_poll(poll, self.seq), qos=1).wait_for_publish(5)
        self.seq += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _until(cond, limit_s: float = 30.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + limit_s
    while not (value := cond()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def _payloads(recv: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in recv.got]


async def _start(site: SiteConfig, state: Path) -> tuple[AlertsProcess, asyncio.Event, asyncio.Task[None]]:
    proc = AlertsProcess(site, state)
    stop = asyncio.Event()
    task = asyncio.create_task(proc.run(stop))
    await _until(proc.consumer.connected.is_set, what="alerts connected")
    return proc, stop, task


async def test_breach_is_pushed_signed_once_acked_and_resolved(
    mosquitto: Mosquitto, env: None, receiver: Receiver, tmp_path: Path
) -> None:
    site = _site(tmp_path, mosquitto, receiver.url)
    state = tmp_path / "state"
    pub = Publisher(mosquitto, site)
    try:
        proc, stop, task = await _start(site, state)
        pub.temp(24.0)
        pub.temp(33.5)
        firing = await _until(
            lambda: [p for p in _payloads(receiver) if p.get("state") == "firing"], what="push"
        )
        got = receiver.got[0]
        ts = got.headers["X-Roomguard-Timestamp"]
        assert verify_signature(KEY, ts, got.body, got.headers["X-Roomguard-Signature"], now=float(ts))
        assert firing[0]["rule"] == "hot"
        assert firing[0]["labels"]["device"] == "th-1"
        # The snapshot `roomguard status` reads shows it.
        snap = await _until(
            lambda: (f := state / "alerts.json").exists() and json.loads(f.read_text())["open"], what="status"
        )
        assert snap[0]["rule"] == "hot"
        report = await _until(
            lambda: "sent 已送 1" in (r := format_status(state, site.site.id)) and r, what="status report"
        )
        assert "alerts 告警程序: running" in report
        assert "CRITICAL hot th-1" in report
        assert "channel 通知管道 hook: sent 已送 1, pending 待送 0, failed 失敗 0" in report

        # Killed mid-incident (no clean stop) and restarted on the same records: no second push.
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proc, stop, task = await _start(site, state)
        pub.temp(34.0)  # still hot: nothing new
        await asyncio.sleep(2.0)
        assert len([p for p in _payloads(receiver) if p.get("state") == "firing"]) == 1

        key = str(firing[0]["id"])
        proc.service.ack(key, "值班 A", "checking the CRAC", datetime.now(UTC))
        pub.temp(27.0)  # below clear: resolved, pushed once
        resolved = await _until(
            lambda: [p for p in _payloads(receiver) if p.get("state") == "resolved"], what="resolved push"
        )
        assert resolved[0]["id"] == key
        assert resolved[0]["acked"]["by"] == "值班 A"
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pub.close()


async def test_a_receiver_that_is_down_gets_the_message_when_it_is_back(
    mosquitto: Mosquitto, env: None, tmp_path: Path
) -> None:
    from testkit.services import free_tcp_port

    port = free_tcp_port()
    site = _site(tmp_path, mosquitto, f"http://127.0.0.1:{port}/hook")
    pub = Publisher(mosquitto, site)
    try:
        proc, stop, task = await _start(site, tmp_path / "state")
        pub.temp(35.0)
        await _until(lambda: proc.failed_attempts >= 1, what="a failed attempt while the receiver is down")
        assert proc.service.deliveries("pending"), "kept for a retry"
        # The receiver comes up on that port; the next attempt (backoff 10 s) reaches it.
        from aiohttp import web

        recv = Receiver(port)
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", recv.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await _until(lambda: recv.got, limit_s=45, what="delivery after the receiver is back")
            assert json.loads(recv.got[0].body)["state"] == "firing"
        finally:
            await runner.cleanup()
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pub.close()


def test_cli_lists_and_acks_on_the_same_records(mosquitto: Mosquitto, env: None, tmp_path: Path) -> None:
    site = _site(tmp_path, mosquitto, "http://127.0.0.1:9/hook")
    path = tmp_path / "site.yaml"
    state = tmp_path / "state"
    run = [sys.executable, "-m", "roomguard", "alerts"]
    out = subprocess.run([*run, "list", str(path), "--state-dir", str(state)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "no open alerts" in out.stdout
    bad = subprocess.run(
        [*run, "ack", str(path), "nope", "--by", "x", "--state-dir", str(state)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "no alert 'nope'" in bad.stderr
    # `roomguard alerts SITE` is the process (serve): it starts and stops on a signal.
    proc = subprocess.Popen([*run, str(path), "--state-dir", str(state)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = 30.0
        import time

        start = time.monotonic()
        while not (state / "alerts.json").exists() and time.monotonic() - start < deadline:
            time.sleep(0.1)
        assert (state / "alerts.json").exists(), "the alerts process wrote its status"
        assert site.site.id in (state / "alerts.json").read_text()
    finally:
        proc.terminate()
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""


async def test_a_channel_that_always_fails_is_shown_and_does_not_hold_the_others(
    mosquitto: Mosquitto, env: None, receiver: Receiver, tmp_path: Path
) -> None:
    serving = _serve()
    broken = await anext(serving)
    broken.status = 400  # refuses every delivery: not retryable
    site = _site(tmp_path, mosquitto, receiver.url, second_url=broken.url)
    state = tmp_path / "state"
    pub = Publisher(mosquitto, site)
    try:
        _, stop, task = await _start(site, state)
        pub.temp(36.0)
        await _until(lambda: _payloads(receiver), what="delivery through the working channel")
        report = await _until(
            lambda: "failed 失敗 1" in (r := format_status(state, site.site.id)) and r, what="failure shown"
        )
        assert (
            "channel 通知管道 broken: sent 已送 0, pending 待送 0, failed 失敗 1  ⚠ NOT DELIVERED 未送達"
            in report
        )
        assert "400" in report
        assert "channel 通知管道 hook: sent 已送 1" in report
        assert KEY not in report
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pub.close()
        await serving.aclose()


async def test_sigkill_mid_incident_neither_pushes_twice_nor_loses_what_arrived_meanwhile(
    mosquitto: Mosquitto, env: None, receiver: Receiver, tmp_path: Path
) -> None:
    """The real process, killed with SIGKILL while an alert fires; readings published while it is down are
    kept by its durable session and evaluated after the restart."""
    import os
    import signal

    site = _site(tmp_path, mosquitto, receiver.url)
    path, state = tmp_path / "site.yaml", tmp_path / "state"
    argv = [sys.executable, "-m", "roomguard", "alerts", str(path), "--state-dir", str(state)]
    environ = {**os.environ}
    pub = Publisher(mosquitto, site)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def firing(device: str) -> list[dict[str, object]]:
        return [p for p in _payloads(receiver) if p.get("state") == "firing" and device in str(p.get("id"))]

    proc = start()
    try:
        # The first run subscribes (its session then keeps what arrives while it is down).
        await _until(lambda: (state / "alerts.json").exists(), what="alerts up")
        await asyncio.sleep(1.0)
        pub.temp(35.0)
        await _until(lambda: firing("th-1"), what="first push")

        # Mid-incident: the push is recorded as sent (a kill between a channel's send and that record is
        # the one at-least-once window; receivers dedup by id, state and started_at, docs/alerts.md).
        def recorded() -> bool:
            channels = json.loads((state / "alerts.json").read_text())["channels"]
            return bool(channels.get("hook", {}).get("sent") == 1)

        await _until(recorded, what="the push recorded as sent")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        pub.temp(36.0)  # th-1 still hot: must not be pushed again
        pub.temp(37.0, "th-2")  # a new breach while alerts is down: must not be lost
        proc = start()
        await _until(lambda: firing("th-2"), what="the breach that arrived while alerts was down")
        await asyncio.sleep(2.0)
        assert len(firing("th-1")) == 1, "a restart pushed an alert again"
    finally:
        proc.terminate()
        proc.wait(20)
        pub.close()
