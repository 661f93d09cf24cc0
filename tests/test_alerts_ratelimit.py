"""The alerts process over a real mosquitto and local webhook receivers: a channel's rate limit summarises
what exceeds its budget (nothing is lost, and a restart keeps the spent budget), and a route with
on_call reaches the on-call channel only inside the shift (an injected clock)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_alerts_process import KEY, KEY_ENV, PASSWORD_ENV, Publisher, _payloads, _until
from test_notify_channels import Receiver, _serve

from alerts.run import AlertsProcess
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.wire import encode_poll, topic_readings
from siteconfig.config import SiteConfig, load_site
from testkit.services import Mosquitto

pytestmark = pytest.mark.integration

SENSORS = [f"th-{i}" for i in range(1, 7)]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.password)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for recv in _serve():
        yield recv


def _site(tmp: Path, broker: Mosquitto, alerts: str) -> SiteConfig:
    devices = "\n".join(
        f"  - {{id: {d}, name: {d}, room: mr1, profile: sht20-xy-md02, settings: {{resolution: x10}},\n"
        f"     modbus: {{host: 127.0.0.1, port: 1502, unit_id: {i}}}}}"
        for i, d in enumerate(SENSORS, 1)
    )
    text = f"""\
site: {{id: a{uuid.uuid4().hex[:8]}, name: 測試站, timezone: Asia/Taipei}}
rooms: [{{id: mr1, name: 機房一}}]
devices:
{devices}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, password: {{env: {PASSWORD_ENV}}}}}
alerts:
  default_rules: false
{alerts}"""
    path = tmp / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return load_site(path)


def _hook(name: str, url: str) -> str:
    return f'    {name}: {{type: webhook, url: "{url}", key: {{env: {KEY_ENV}}}, timeout_s: 3}}\n'


async def _start(
    site: SiteConfig, state: Path, **kw: object
) -> tuple[AlertsProcess, asyncio.Event, asyncio.Task[None]]:
    proc = AlertsProcess(site, state, **kw)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(proc.run(stop))
    await _until(proc.consumer.connected.is_set, what="alerts connected")
    return proc, stop, task


async def test_a_storm_over_the_budget_is_summarised_nothing_lost_and_a_restart_keeps_the_budget(
    mosquitto: Mosquitto, env: None, receiver: Receiver, tmp_path: Path
) -> None:
    # One rule per sensor: six separate notifications (one rule would group them into one message).
    rules = "".join(
        f"    - {{id: hot-{d}, kind: threshold, severity: critical, scope: {{devices: [{d}]}}, "
        "metric: temp_c, op: above, value: 30, clear: 28}\n"
        for d in SENSORS
    )
    alerts = (
        f"  rules:\n{rules}  channels:\n{_hook('hook', receiver.url)}"
        "  routes: [{severities: [critical], channels: [hook]}]\n"
        "  rate_limit: {max_messages: 2, window_s: 600}\n"
        "  group_wait_s: 0\n"
    )
    site = _site(tmp_path, mosquitto, alerts)
    state = tmp_path / "state"
    pub = Publisher(mosquitto, site)
    try:
        proc, stop, task = await _start(site, state, summary_wait_s=1.0)
        for d in SENSORS:
            pub.temp(35.0, d)
        await _until(lambda: len(receiver.got) >= 3, what="3 messages")
        await asyncio.sleep(2.5)  # nothing more comes
        got = _payloads(receiver)
        assert len(got) == 3, got
        singles = [p for p in got if p["schema"] == "roomguard.alert/1"]
        summaries = [p for p in got if p["schema"] == "roomguard.alert-summary/1"]
        assert len(singles) == 2
        assert len(summaries) == 1
        summary = summaries[0]
        assert summary["count"] == 4
        assert summary["labels"] == {"site": site.site.id, "room": "mr1"}
        assert summary["kinds"] == {"firing": 4}
        named = [a["id"] for a in summary["alerts"]]
        assert all(a["alert"]["state"] == "firing" for a in summary["alerts"])
        # Nothing lost: every sensor's alert is either sent on its own or named in the summary.
        keys = sorted([str(p["id"]) for p in singles] + named)
        assert len(set(keys)) == 6
        assert sorted(k.split(":")[0] for k in keys) == sorted(f"hot-{d}" for d in SENSORS)

        # The outbox: the 4 folded deliveries are settled by the summary, which was sent.
        rows = proc.service.deliveries()
        assert {r.status for r in rows} == {"sent"}
        limit_rows = [r for r in rows if r.kind == "limit_summary"]
        assert len(limit_rows) == 1
        assert sorted(limit_rows[0].alert_keys) == sorted(named)
        assert proc.snapshot()["summarised"] == 4
        for key in named:
            whats = [h.what for h in proc.service.history(key)]
            assert "summarised" in whats
            assert whats[-1] == "notified"

        # Restarted, the process reads the channel's 3 sends back from the outbox: a 4th message in the
        # same window is summarised too, not sent on its own.
        stop.set()
        await asyncio.wait_for(task, 15)
        proc, stop, task = await _start(site, state, summary_wait_s=1.0)
        assert len(proc._sent_at["hook"]) == 3
        pub.temp(20.0, "th-1")  # resolved
        await _until(lambda: len(receiver.got) >= 4, what="the resolution, summarised")
        last = _payloads(receiver)[3]
        assert last["schema"] == "roomguard.alert-summary/1"
        assert last["count"] == 1
        assert last["kinds"] == {"resolved": 1}
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pub.close()


def temp_at(pub: Publisher, value: float, device: str, at: datetime) -> None:
    """A reading of `device` stamped `at` (the process's injected clock), as Publisher.temp sends it."""
    ref = DeviceRef(pub.site.site.id, "mr1", device, DeviceClass.ENV, "sht20-xy-md02")
    poll = PollResult(ref, at, (Metric("temp_c", value), Metric("rh_pct", 45.0)))
    topic = topic_readings(pub.site.mqtt.topic_prefix, pub.site.site.id, "mr1", device)
    pub.client.publish(topic, encode_poll(poll, pub.seq), qos=1).wait_for_publish(5)
    pub.seq += 1


async def test_an_on_call_route_reaches_the_shift_only_while_it_is_on_duty(
    mosquitto: Mosquitto, env: None, receiver: Receiver, tmp_path: Path
) -> None:
    serving = _serve()
    phone = await anext(serving)
    alerts = (
        "  rules:\n"
        "    - {id: hot, kind: threshold, severity: critical, scope: {classes: [env]}, metric: temp_c,\n"
        "       op: above, value: 30, clear: 28}\n"
        f"  channels:\n{_hook('hook', receiver.url)}{_hook('phone', phone.url)}"
        "  routes: [{severities: [critical], channels: [hook], on_call: true}]\n"
        "  on_call:\n"
        "    - {name: 夜班, days: [mon, tue, wed, thu, fri], start: '22:00', end: '06:00',\n"
        "       channels: [phone]}\n"
        "  group_wait_s: 0\n"
    )
    site = _site(tmp_path, mosquitto, alerts)
    taipei = ZoneInfo("Asia/Taipei")
    # Monday 2025-11-03 23:00 in Taipei (the night shift), then Tuesday 12:00 (nobody on call).
    night = datetime(2025, 11, 3, 23, 0, tzinfo=taipei)
    noon = datetime(2025, 11, 4, 12, 0, tzinfo=taipei)
    offset = [night - datetime.now(UTC)]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC) + offset[0]  # noqa: E731
    pub = Publisher(mosquitto, site)
    try:
        _, stop, task = await _start(site, tmp_path / "state", clock=clock)
        temp_at(pub, 35.0, "th-1", clock())
        await _until(lambda: _payloads(phone), what="the on-call push at night")
        await _until(lambda: _payloads(receiver), what="the route's own push")
        assert [p["id"] for p in _payloads(phone)] == [p["id"] for p in _payloads(receiver)]
        assert "th-1" in str(_payloads(phone)[0]["id"])

        offset[0] = noon - datetime.now(UTC)
        temp_at(pub, 35.0, "th-2", clock())
        # th-1's reminder (13 hours on, unacknowledged) may reach the route first: wait for th-2's push.
        daytime = lambda: any("th-2" in str(p["id"]) for p in _payloads(receiver))  # noqa: E731
        await _until(daytime, what="the daytime push")
        await asyncio.sleep(1.5)
        assert len(phone.got) == 1, "the on-call channel is told only during the shift"
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pub.close()
        await serving.aclose()
