"""Acceptance of the alerts: the simulator's scenarios end to end over a real mosquitto, with the shipped
machine-room rule pack.

`roomguard simulate` (its `--speed` runs the physics fast) serves the devices of a small site file of the
example's kinds, `roomguard collect` polls them and publishes to the broker, the alerts process (in this
process, so the test can read its records) judges what arrives, and its `duty-webhook` channel posts to a
local receiver (signatures checked). Each test has its own site, simulator, collector and records:

* `crac_failure`: the over-temperature alert (temp-high, warning, [ASHRAE-R] 27 °C) is delivered with a
  forecast, reminded while nobody acknowledges it, no longer after `roomguard alerts ack`, and resolved
  once the room has cooled down again;
* `utility_outage`: the UPS on-battery alert fires once, with the power-chain margin; the input-voltage
  alert it inhibits is stored suppressed and never delivered;
* `door_forced`: a critical door-forced alert;
* `device_silent`: the device goes offline, and the metric alerts of that device (only) are inhibited.

Time: `--speed` accelerates the simulated room only. The alerts process keeps the wall clock, and the
poll timestamps it judges are wall-clock times too, so every `hold_for_s` of the pack is wall time. Two
pack rules hold a minute (temp-high and device-offline, 60 s): the site here replaces each by the pack's
own rule with a shorter hold (SHORT_HOLD; everything else as shipped) to keep the file within about two
minutes. temp-high keeps 30 s: its forecast needs a trend of three points, which the engine keeps
window/32 = 28 s apart, so the probe must have been read for 28 s when the alert fires (hold_for itself is
covered by tests/test_alerts_engine.py). group_wait_s is 0 and the rate limit generous, so each notice
goes out on its own at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pipeline_support import simulator_up, spawn
from test_notify_channels import Receiver, _serve

from alerts.engine import EngineState
from alerts.lifecycle import AlertView
from alerts.notify.webhook import verify_signature
from alerts.pack import pack_path
from alerts.run import AlertsProcess
from alerts.store import AlertStore
from collector.scenario_cli import call
from devices.yamlload import read_yaml
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import ROOT, free_port
from testkit.services import Mosquitto

pytestmark = pytest.mark.integration

KEY = "scenario-hook-key-7Qx"
KEY_ENV = "ROOMGUARD_TEST_SCENARIO_HOOK_KEY"
PASSWORD_ENV = "ROOMGUARD_TEST_SCENARIO_MQTT_PASSWORD"
# Pack rules whose one-minute hold would dominate the run: the same rule, held shorter (see the docstring).
SHORT_HOLD = {"temp-high": 30.0, "device-offline": 5.0}
T = TypeVar("T")

# Device blocks of the site file, by name; {ports} filled in per run (one free port per Modbus gateway).
DEVICES = {
    # Two InRow coolers (N+1 for the pack's crac-redundancy-lost) and two SHT20 probes on one gateway, in
    # the zone of crac-1: a crac-1 failure heats both.
    "cooling": """\
  - {{id: crac-1, name: 精密空調 1, room: mr1, zone: row-a, profile: schneider-inrow-sc, poll_interval_s: 2,
     modbus: {{host: 127.0.0.1, port: {cool}, unit_id: 1}}}}
  - {{id: crac-2, name: 精密空調 2, room: mr1, zone: row-b, profile: schneider-inrow-sc, poll_interval_s: 2,
     modbus: {{host: 127.0.0.1, port: {cool}, unit_id: 2}}}}
  - {{id: th-1, name: 溫濕度 1, room: mr1, zone: row-a, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: {env}, unit_id: 1}}}}
  - {{id: th-2, name: 溫濕度 2, room: mr1, zone: row-a, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: {env}, unit_id: 2}}}}
""",
    # The UPS, and the generator in its own room as in the example site (the power chain finds it there).
    "power": """\
  - {{id: ups-1, name: UPS 1, room: mr1, zone: power, profile: apc-smartups-modbus,
     modbus: {{host: 127.0.0.1, port: {ups}, unit_id: 1}}}}
  - {{id: gen-1, name: 柴油發電機, room: gen1, profile: dse-gencomm,
     modbus: {{host: 127.0.0.1, port: {gen}, unit_id: 10}}}}
""",
    "door": """\
  - {{id: door-main, name: 主門, room: mr1, profile: modbus-door-io, timeout_s: 0.8,
     door: {{held_open_after_s: 60, access_grant_window_s: 10}},
     modbus: {{host: 127.0.0.1, port: {door}, unit_id: 1}}}}
""",
}


def _pack_rule(rule_id: str, **changes: object) -> str:
    """A rule of the shipped pack with some fields changed, as one flow-style YAML (JSON) line."""
    rules = read_yaml(pack_path())["rules"]
    rule = next(r for r in rules if r["id"] == rule_id)
    return json.dumps({**rule, **changes}, ensure_ascii=False)


def _site_text(
    site_id: str, broker: Mosquitto, hook_url: str, http_port: int, groups: list[str], renotify_s: float
) -> str:
    ports = {name: free_port() for name in ("cool", "env", "ups", "gen", "door")}
    devices = "".join(DEVICES[g].format(**ports) for g in groups)
    overrides = "".join(
        f"    - {_pack_rule(rule_id, hold_for_s=hold)}\n" for rule_id, hold in SHORT_HOLD.items()
    )
    return f"""\
site: {{id: {site_id}, name: 情境測試 Scenario test}}
rooms:
  - id: mr1
    name: 主機房
    zones:
      - {{id: row-a, name: A 列}}
      - {{id: row-b, name: B 列}}
      - {{id: power, name: 電力區}}
  - {{id: gen1, name: 發電機室}}
defaults: {{poll_interval_s: 1, timeout_s: 0.5, retries: 0, jitter_pct: 10, backoff_max_s: 2}}
devices:
{devices}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, password: {{env: {PASSWORD_ENV}}}}}
alerts:
  default_rules: true
  generator_transfer_s: 30
  rules:
{overrides}  channels:
    duty-webhook: {{type: webhook, url: "{hook_url}", key: {{env: {KEY_ENV}}}, timeout_s: 5}}
  routes:
    - {{severities: [warning, critical], channels: [duty-webhook]}}
  escalation: {{renotify_every_s: {renotify_s}, max_renotify: 20}}
  # Reminders every few seconds would soon spend the default budget (20 per 10 min) and fold the rest
  # into rate-limit summaries: this test counts single notices.
  rate_limit: {{max_messages: 1000, window_s: 600}}
  group_wait_s: 0
simulator: {{host: 127.0.0.1, http_port: {http_port}}}
"""


# ------------------------------------------------------------------------------------------ plumbing


def _alert_payloads(recv: Receiver) -> list[dict[str, Any]]:
    """Every roomguard.alert/1 object the receiver got, in order (summaries unpacked), signature checked."""
    out: list[dict[str, Any]] = []
    for r in recv.got:
        ts = r.headers["X-Roomguard-Timestamp"]
        assert verify_signature(KEY, ts, r.body, r.headers["X-Roomguard-Signature"], now=float(ts))
        payload = json.loads(r.body)
        if payload.get("schema") == "roomguard.alert-summary/1":
            # A group notification (alerts of one room firing together; on a slow box the CRAC's and the
            # probes' alerts can coincide): each member is that alert's first notice.
            out += [{**m["alert"], "notice": {"kind": m["kind"], "level": 0}} for m in payload["alerts"]]
        else:
            out.append(payload)
    return out


def _received(recv: Receiver, rule: str, state: str | None = None, device: str | None = None) -> list[Any]:
    return [
        p
        for p in _alert_payloads(recv)
        if p["rule"] == rule
        and (state is None or p["state"] == state)
        and (device is None or p["labels"].get("device") == device)
    ]


@dataclass
class Room:
    """One running pipeline: simulator and collector subprocesses, the alerts process, the receiver."""

    site: SiteConfig
    path: Path
    alerts_state: Path
    control: str
    alerts: AlertsProcess
    recv: Receiver
    logs: list[Path]

    async def scenario(self, name: str, device: str | None = None, *, clear: bool = False) -> Any:
        """Start (or clear) a scenario through the simulator's control API, as `roomguard scenario` does."""
        return await asyncio.to_thread(call, self.control, "DELETE" if clear else "POST", name, device)

    def open_alerts(self, rule: str | None = None, device: str | None = None) -> list[AlertView]:
        return [
            a
            for a in self.alerts.service.list_open()
            if a.state == "firing"
            and (rule is None or a.rule_id == rule)
            and (device is None or a.labels.get("device") == device)
        ]

    def diagnosis(self) -> str:
        """What the pipeline looked like (for a failed wait)."""
        lines = ["open alerts:"]
        lines += [
            f"  {a.key} {a.severity} value={a.value} suppressed={a.suppressed} acked={a.acked_by}"
            for a in self.alerts.service.list_open()
        ]
        lines.append("received:")
        lines += [f"  {p['id']} {p['state']} acked={bool(p['acked'])}" for p in _alert_payloads(self.recv)]
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(self.control + "/state", timeout=2) as resp:
                state = json.loads(resp.read())
            lines.append(f"simulator: active={state['active']} silent={state['silent']}")
            for dev, d in state["devices"].items():
                vals = d["values"]
                brief = {
                    k: vals[k] for k in ("temp_c", "on_battery", "input_voltage_v", "door_open") if k in vals
                }
                lines.append(f"  {dev}: {brief}")
        for log in self.logs:
            with contextlib.suppress(OSError):
                lines.append(f"--- {log.name} (tail)\n" + log.read_text(errors="replace")[-1500:])
        return "\n".join(lines)

    async def until(self, cond: Callable[[], T | None], what: str, limit_s: float = 60.0) -> T:
        """Wait for `cond` to return something truthy (and return it), or fail with a diagnosis."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not (value := cond()):
            if loop.time() - start > limit_s:
                raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}\n{self.diagnosis()}")
            await asyncio.sleep(0.1)
        print(f"{what}: {loop.time() - start:.1f} s")  # shown with -s, or with a failure
        return value


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto) -> dict[str, str]:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.password)
    return {**os.environ, KEY_ENV: KEY, PASSWORD_ENV: mosquitto.password}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for recv in _serve():
        yield recv


@contextlib.asynccontextmanager
async def _room(
    tmp: Path,
    broker: Mosquitto,
    env: dict[str, str],
    recv: Receiver,
    groups: list[str],
    *,
    speed: float,
    renotify_s: float = 900.0,
) -> AsyncIterator[Room]:
    """The site of `groups`, simulated at `speed`, polled, judged; stopped in reverse order."""
    http_port = free_port()
    path = tmp / "site.yaml"
    site_id = "sc" + uuid.uuid4().hex[:8]  # the broker is shared: a site of its own per test
    path.write_text(_site_text(site_id, broker, recv.url, http_port, groups, renotify_s), encoding="utf-8")
    site = load_site(path)
    control = f"http://127.0.0.1:{http_port}"
    sim_log, collect_log = tmp / "simulate.log", tmp / "collect.log"
    alerts_state = tmp / "alerts"
    simulate = ["simulate", str(path), "--http-port", str(http_port), "--speed", str(speed)]
    with spawn(simulate, env, sim_log) as sim:
        # The alerts process is built (records database migrated) while the simulator starts.
        building = asyncio.create_task(asyncio.to_thread(AlertsProcess, site, alerts_state))
        await simulator_up(control, sim, sim_log)
        collect = ["collect", str(path), "--state-dir", str(tmp / "collector")]
        with spawn(collect, env, collect_log):
            alerts = await building
            stop = asyncio.Event()
            task = asyncio.create_task(alerts.run(stop))
            room = Room(site, path, alerts_state, control, alerts, recv, [sim_log, collect_log])
            try:
                await room.until(alerts.consumer.connected.is_set, "the alerts process connected", 30)
                yield room
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)


def _engine_state(room: Room) -> EngineState:
    """The alert engine's stored state (what it has seen of every series)."""
    with room.alerts.service._sessions() as session:
        state = AlertStore(session).load_engine_state()
    return state if state is not None else EngineState()


def _series(room: Room) -> set[tuple[str, ...]]:
    """(site, room, device, metric) of every series the alert engine has seen."""
    return set(_engine_state(room).series)


def _window(room: Room, device: str, metric: str) -> int:
    """Points the engine keeps of one series for its trends (a forecast needs 3)."""
    return sum(len(pts) for key, pts in _engine_state(room).windows.items() if key[2:] == (device, metric))


def _no_other_alerts(room: Room, allowed: set[str]) -> None:
    """Nothing but the expected rules fired: a quiet room stays quiet under the shipped pack."""
    fired = {a.rule_id for a in room.alerts.service.list_open()}
    assert fired <= allowed, f"unexpected alerts: {sorted(fired - allowed)}\n{room.diagnosis()}"


# ------------------------------------------------------------------------------------------- the tests


async def test_crac_failure_over_temperature_forecast_reminders_ack_and_recovery(
    mosquitto: Mosquitto, env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    renotify_s = 2.0
    async with _room(
        tmp_path, mosquitto, env, receiver, ["cooling"], speed=120, renotify_s=renotify_s
    ) as room:
        # A quiet room first: every device reads, nothing fires.
        await room.until(
            lambda: {"th-1", "th-2", "crac-1", "crac-2"} <= {k[2] for k in _series(room)}, "first readings"
        )
        _no_other_alerts(room, set())

        await room.scenario("crac_failure", "crac-1")
        firing = await room.until(
            lambda: _received(room.recv, "temp-high", "firing", "th-1"), "temp-high of th-1 delivered", 90
        )
        first = firing[0]
        assert first["severity"] == "warning"
        assert first["limit"] == 27  # [ASHRAE-R] upper recommended dry bulb
        assert first["value"] > 27
        texts = first["texts"]
        # The forecast counts down to the pack's forecast_to (32 °C, the A1 allowable limit).
        assert _window(room, "th-1", "temp_c") >= 3
        assert texts["forecast_zh_TW"], texts
        assert texts["forecast_en"], texts
        # Fast physics: by the end of the hold the probe may be past 32 °C already, which it then says.
        assert texts["forecast_en"].startswith("+"), texts
        assert "°C/min, " in texts["forecast_en"], texts
        assert "32 °C" in texts["forecast_en"], texts
        assert texts["forecast_zh_TW"].startswith("溫度每分鐘上升"), texts
        assert "32 °C" in texts["forecast_zh_TW"], texts
        assert texts["forecast_en"] in texts["en"], texts  # the default template carries it
        key = first["id"]
        assert key == f"temp-high:{room.site.site.id}:mr1:th-1:temp_c", key

        # Nobody acknowledges: a reminder every renotify_every_s, each one the alert again (state firing).
        await room.until(
            lambda: len(_received(room.recv, "temp-high", "firing", "th-1")) >= 3, "two reminders", 30
        )
        reminders = [d for d in room.alerts.service.deliveries() if d.key == key and d.kind == "escalation"]
        assert [d.level for d in reminders[:2]] == [1, 2], reminders
        # The receiver tells the first notice from the reminders by the payload's notice.
        notices = [p["notice"] for p in _received(room.recv, "temp-high", "firing", "th-1")[:3]]
        assert notices == [
            {"kind": "firing", "level": 0},
            {"kind": "escalation", "level": 1},
            {"kind": "escalation", "level": 2},
        ], notices

        # `roomguard alerts ack` on the same records: the reminders stop.
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "roomguard", "alerts", "ack", str(room.path), key, "--by", "值班 A",
             "--note", "CRAC 1 compressor tripped, technician called", "--state-dir", str(room.alerts_state)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"acknowledged 已確認 {key}" in out.stdout
        view = room.alerts.service.get(key)
        assert view is not None
        assert view.acked_by == "值班 A"
        assert view.acked_at is not None
        acked_at = view.acked_at
        settled = len(_received(room.recv, "temp-high", "firing", "th-1"))

        # The CRAC is repaired: the room cools down (it stays above the clear level for a while, and
        # nothing reminds anybody meanwhile), then the alert resolves once, acknowledged.
        await room.scenario("crac_failure", "crac-1", clear=True)
        resolved = await room.until(
            lambda: _received(room.recv, "temp-high", "resolved", "th-1"), "temp-high of th-1 resolved", 90
        )
        view = room.alerts.service.get(key)
        assert view is not None
        assert view.resolved_at is not None
        quiet_s = (view.resolved_at - acked_at).total_seconds()
        assert quiet_s >= 2 * renotify_s, f"resolved {quiet_s:.1f} s after the ack: too soon to tell"
        late = [
            d
            for d in room.alerts.service.deliveries()
            if d.key == key and d.kind == "escalation" and d.created_at > acked_at
        ]
        assert not late, f"reminders after the ack: {late}"
        # At most one reminder queued before the ack was still on its way when it came.
        assert len(_received(room.recv, "temp-high", "firing", "th-1")) <= settled + 1
        assert len(resolved) == 1
        assert resolved[0]["id"] == key
        assert resolved[0]["acked"]["by"] == "值班 A"
        assert resolved[0]["value"] <= 26.5  # the clear level (hysteresis)
        assert resolved[0]["texts"]["en"].startswith("Resolved: ")
        whats = [h.what for h in room.alerts.service.history(key)]
        assert whats[0] == "fired", whats
        assert {"acked", "resolved"} <= set(whats), whats
        assert "escalated" not in whats[whats.index("acked") :], whats


async def test_utility_outage_on_battery_fires_once_with_the_margin_and_inhibits_input_voltage(
    mosquitto: Mosquitto, env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    # Below real time: the generator takes ~14 simulated seconds to carry the load, and the input-voltage
    # alert holds 10 wall seconds (the pack's hold_for_s): at 0.75 the UPS stays on battery ~19 s.
    async with _room(tmp_path, mosquitto, env, receiver, ["power"], speed=0.75) as room:
        await room.until(
            lambda: {("ups-1", "runtime_s"), ("gen-1", "engine_state")} <= {k[2:] for k in _series(room)},
            "first UPS and generator readings",
        )
        _no_other_alerts(room, set())

        await room.scenario("utility_outage")
        firing = await room.until(
            lambda: _received(room.recv, "ups-on-battery", "firing", "ups-1"), "ups-on-battery delivered"
        )
        alert = firing[0]
        assert alert["severity"] == "critical"
        texts = alert["texts"]
        # The power-chain margin: battery runtime against the site's generator start-and-transfer time.
        assert texts["margin_zh_TW"], texts
        assert texts["margin_en"], texts
        assert "start-and-transfer 30 s" in texts["margin_en"], texts
        assert "margin" in texts["margin_en"], texts
        assert "發電機" in texts["margin_zh_TW"], texts
        assert texts["en"] == f"UPS ups-1 (mr1) is on battery: {texts['margin_en']}", texts
        key = alert["id"]

        # The input voltage is gone too: that alert fires after its hold, stored inhibited by on-battery.
        volt = await room.until(
            lambda: room.open_alerts("ups-input-voltage-low", "ups-1"), "ups-input-voltage-low stored", 60
        )
        vkey = volt[0].key
        assert volt[0].suppressed == f"inhibited:{key}", volt
        # The generator takes the load: the UPS leaves the battery and both resolve.
        resolved = await room.until(
            lambda: _received(room.recv, "ups-on-battery", "resolved", "ups-1"), "ups-on-battery resolved", 90
        )
        assert resolved[0]["id"] == key
        await room.until(
            lambda: (v := room.alerts.service.get(vkey)) is not None and v.state == "resolved",
            "ups-input-voltage-low resolved",
        )

        assert len(_received(room.recv, "ups-on-battery", "firing")) == 1, _alert_payloads(room.recv)
        assert not _received(room.recv, "ups-input-voltage-low"), "an inhibited alert was delivered"
        assert not [d for d in room.alerts.service.deliveries() if d.key == vkey]
        history = room.alerts.service.history(vkey)
        whats = [h.what for h in history]
        assert whats[:2] == ["fired", "inhibited"], whats
        assert any(h.what == "inhibited" and h.note == f"by {key}" for h in history), history
        assert whats[-1] == "resolved", whats
        assert "never notified: inhibited:" in (history[-1].note or ""), history


async def test_door_forced_is_a_critical_alert(
    mosquitto: Mosquitto, env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    async with _room(tmp_path, mosquitto, env, receiver, ["door"], speed=1) as room:
        await room.until(
            lambda: ("door-main", "door_open") in {k[2:] for k in _series(room)}, "door readings"
        )
        await room.scenario("door_forced", "door-main")
        firing = await room.until(
            lambda: _received(room.recv, "door-forced", "firing", "door-main"), "door-forced delivered"
        )
        assert firing[0]["severity"] == "critical"
        assert firing[0]["value"] == "forced_open"
        # Closed again: resolved (the rule resolves on the door's `closed` event).
        await room.scenario("door_forced", "door-main", clear=True)
        await room.until(
            lambda: _received(room.recv, "door-forced", "resolved", "door-main"), "door-forced resolved"
        )
        assert len(_received(room.recv, "door-forced", "firing")) == 1
        _no_other_alerts(room, {"door-forced"})


async def test_device_silent_goes_offline_and_inhibits_that_devices_metric_alerts(
    mosquitto: Mosquitto, env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    async with _room(tmp_path, mosquitto, env, receiver, ["cooling"], speed=1) as room:
        # Both coolers fail: each one's status alarm (crac-alarm, a metric alert) fires at once.
        await room.until(lambda: {"crac-1", "crac-2"} <= {k[2] for k in _series(room)}, "first readings")
        await room.scenario("crac_failure", "crac-1")
        await room.scenario("crac_failure", "crac-2")
        await room.until(
            lambda: (
                _received(room.recv, "crac-alarm", "firing", "crac-1")
                and _received(room.recv, "crac-alarm", "firing", "crac-2")
            ),
            "crac-alarm delivered for both coolers",
        )
        # crac-1's controller stops answering.
        await room.scenario("device_silent", "crac-1")
        offline = await room.until(
            lambda: _received(room.recv, "device-offline", "firing", "crac-1"), "device-offline of crac-1"
        )
        okey = offline[0]["id"]
        assert okey == f"device-offline:{room.site.site.id}:mr1:crac-1", okey
        assert offline[0]["severity"] == "warning"
        assert not _received(room.recv, "device-offline", device="crac-2")

        def crac1_inhibited() -> list[AlertView] | None:
            mine = [a for a in room.open_alerts(device="crac-1") if a.rule_id != "device-offline"]
            return mine if mine and all(a.suppressed == f"inhibited:{okey}" for a in mine) else None

        inhibited = await room.until(crac1_inhibited, "crac-1's metric alerts inhibited", 15)
        assert "crac-alarm" in {a.rule_id for a in inhibited}
        for a in inhibited:
            history = room.alerts.service.history(a.key)
            assert any(h.what == "inhibited" and h.note == f"by {okey}" for h in history), history
        # The other cooler's alerts are not touched.
        others = room.open_alerts(device="crac-2")
        assert "crac-alarm" in {a.rule_id for a in others}
        assert all(a.suppressed is None for a in others), others

        # Answering again: device-offline resolves and crac-1's alerts are no longer inhibited.
        await room.scenario("device_silent", "crac-1", clear=True)
        await room.until(
            lambda: _received(room.recv, "device-offline", "resolved", "crac-1"), "device-offline resolved"
        )
        await room.until(
            lambda: (mine := room.open_alerts("crac-alarm", "crac-1")) and mine[0].suppressed is None,
            "crac-1's crac-alarm released",
            15,
        )
        assert len(_received(room.recv, "crac-alarm", "firing", "crac-1")) == 1  # told once, not again
