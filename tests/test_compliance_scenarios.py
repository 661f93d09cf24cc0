"""Acceptance of the compliance evidence from telemetry, end to end over real services.

`roomguard simulate` (its `--speed` runs the room fast) serves a small site, `roomguard collect` polls it
and publishes to mosquitto, `roomguard ingest` writes to InfluxDB, and the compliance process (in this
process, so the test can read its records and move its clock) turns what arrives into records:

* the generator: the monthly test on load becomes a counted test record and the generator-test item
  turns `pass` (its result reaches InfluxDB as a `compliance` reading); a 20-minute run and a run at
  20 % load are recorded and do not count; the counted record, deleted, is rebuilt the same from
  InfluxDB history;
* the UPS: the self-test result the simulator serves over SNMP (RFC 1628 upsTestResultsSummary) is
  recorded once with its time unknown (it does not start the cadence); a self-test run on the simulated
  UPS (`ups_self_test`: in progress, then passed) becomes a record with its time;
* `utility_outage`: the critical on-battery alert (the alerts process publishes it on the retained
  alert topic) opens an incident review; the item is `warn` while the review is open within its due
  date, `fail` after, `pass` once it is closed with cause and measures.

Time: the simulator runs at SPEED, the collector stamps wall-clock times, so the detector sees the
30-minute test as 32 s. The site scales the rule the same way (generator_tests.min_minutes 0.4 = 24
simulated minutes at SPEED 60): the 32-minute test counts, the 20-minute one does not, and the load rule
(30 %) is untouched, so the 20 % run fails on load alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from pipeline_support import log_tails, simulator_up, spawn, wait_for
from sqlalchemy import delete

from alerts.run import AlertsProcess
from collector.scenario_cli import call
from compliance.kinds import GeneratorTest, Incident, UpsTest
from compliance.process import ComplianceProcess
from compliance.rebuild import rebuild_tests
from compliance.result import CheckResult
from compliance.store import RecordRow
from records.audit import Actor
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import free_port
from testkit.services import Influxd, Mosquitto

pytestmark = pytest.mark.integration

SPEED = 60
PASSWORD_ENV = "ROOMGUARD_TEST_COMPLIANCE_MQTT_PASSWORD"
COMMUNITY_ENV = "ROOMGUARD_TEST_COMPLIANCE_COMMUNITY"
COMMUNITY = "ups-ro-test"
T = TypeVar("T")


def _site_text(site_id: str, broker: Mosquitto, influx: Influxd, database: str, http_port: int) -> str:
    ups, gen, snmp = free_port(), free_port(), free_port()
    return f"""\
site: {{id: {site_id}, name: 查核情境測試 Compliance scenario test}}
rooms:
  - {{id: mr1, name: 主機房}}
  - {{id: gen1, name: 發電機室}}
defaults: {{poll_interval_s: 1, timeout_s: 0.5, retries: 0, jitter_pct: 10, backoff_max_s: 2}}
devices:
  - {{id: ups-1, name: UPS 1, room: mr1, profile: apc-smartups-modbus,
     modbus: {{host: 127.0.0.1, port: {ups}, unit_id: 1}}}}
  - {{id: ups-snmp, name: UPS 2 (RFC 1628), room: mr1, profile: rfc1628-ups,
     snmp: {{host: 127.0.0.1, port: {snmp}, version: v2c, community: {{env: {COMMUNITY_ENV}}}}}}}
  - {{id: gen-1, name: 柴油發電機, room: gen1, profile: dse-gencomm,
     modbus: {{host: 127.0.0.1, port: {gen}, unit_id: 10}}}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, password: {{env: {PASSWORD_ENV}}}}}
influxdb: {{url: "http://127.0.0.1:{influx.port}", api: v1, database: {database}}}
alerts:
  default_rules: true
  generator_transfer_s: 30
  channels:
    bus: {{type: mqtt}}
  routes:
    - {{severities: [critical], channels: [bus]}}
compliance:
  evaluate_every_s: 2
  generator_tests: {{min_minutes: 0.4}}
  incidents: {{review_days: 14}}
simulator: {{host: 127.0.0.1, http_port: {http_port}}}
"""


@dataclass
class Pipeline:
    """The running site: simulator, collector and ingest subprocesses, the compliance process."""

    site: SiteConfig
    control: str
    compliance: ComplianceProcess
    influx: Influxd
    database: str
    logs: list[Path]

    async def scenario(self, name: str) -> None:
        """Start a scenario through the simulator's control API."""
        await asyncio.to_thread(call, self.control, "POST", name, None)

    def tests_of(self, device: str) -> list[GeneratorTest]:
        return [t for t in self.compliance.records.of_kind(GeneratorTest) if t.device == device]

    def diagnosis(self) -> str:
        lines = ["records:"]
        for model in (GeneratorTest, UpsTest, Incident):
            lines += [
                f"  {r.KIND} {r.ref()} {r.model_dump(mode='json')}"
                for r in self.compliance.records.of_kind(model)
            ]
        lines.append(
            f"alerts seen: {sorted(self.compliance.alerts)}; undecodable {self.compliance.undecodable}"
        )
        for dev in ("gen-1", "ups-1"):
            state = self.compliance.telemetry.devices.get(dev)
            brief = {k: v for k, v in (state.metrics if state else {}).items() if not k.startswith("alarm_")}
            lines.append(f"{dev} now: {brief}")
        tails: str = log_tails(self.logs)
        return "\n".join(lines) + "\n" + tails

    async def until_record(self, what: str, cond: Callable[[], T | None], limit_s: float = 90.0) -> T:
        value: T = await wait_for(cond, what, self.diagnosis, limit_s)
        return value

    def evaluate(self, now: datetime) -> dict[str, CheckResult]:
        return {r.item: r for r in self.compliance.evaluate_now(now)}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.password)
    monkeypatch.setenv(COMMUNITY_ENV, COMMUNITY)
    return {**os.environ, PASSWORD_ENV: mosquitto.password, COMMUNITY_ENV: COMMUNITY}


@contextlib.asynccontextmanager
async def _pipeline(
    tmp: Path,
    broker: Mosquitto,
    influx: Influxd,
    env: dict[str, str],
    *,
    speed: float = SPEED,
    alerts: bool = False,
) -> AsyncIterator[Pipeline]:
    http_port = free_port()
    site_id = "cc" + uuid.uuid4().hex[:8]  # the broker is shared: a site of its own per test
    database = f"db_{site_id}"
    influx.create_database(database)
    path = tmp / "site.yaml"
    path.write_text(_site_text(site_id, broker, influx, database, http_port), encoding="utf-8")
    site = load_site(path)
    control = f"http://127.0.0.1:{http_port}"
    logs = [tmp / "simulate.log", tmp / "collect.log", tmp / "ingest.log"]
    simulate = ["simulate", str(path), "--http-port", str(http_port), "--speed", str(speed)]
    with spawn(simulate, env, logs[0]) as sim:
        building = asyncio.create_task(asyncio.to_thread(ComplianceProcess, site, tmp / "compliance"))
        await simulator_up(control, sim, logs[0])
        with (
            spawn(["collect", str(path), "--state-dir", str(tmp / "collector")], env, logs[1]),
            spawn(["ingest", str(path), "--state-dir", str(tmp / "ingest")], env, logs[2]),
        ):
            process = await building
            stop = asyncio.Event()
            tasks = [asyncio.create_task(process.run(stop))]
            if alerts:
                alerts_process = await asyncio.to_thread(AlertsProcess, site, tmp / "alerts")
                tasks.append(asyncio.create_task(alerts_process.run(stop)))
            pipe = Pipeline(site, control, process, influx, database, logs)
            try:
                await wait_for(process.consumer.connected.is_set, "compliance connected", pipe.diagnosis, 30)
                yield pipe
            finally:
                stop.set()
                for t in tasks:
                    await asyncio.wait_for(t, 30)


async def test_generator_runs_become_test_records_rebuilt_from_history(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, env: dict[str, str]
) -> None:
    started = datetime.now(UTC)
    async with _pipeline(tmp_path, mosquitto, influxd, env) as pipe:
        await pipe.until_record("gen-1 heard", lambda: "gen-1" in pipe.compliance.telemetry.devices, 30)
        before = pipe.evaluate(datetime.now(UTC))["cc16000-05-generator-test"]
        assert before.status == "unknown", before  # nothing recorded yet: never pass

        await pipe.scenario("generator_monthly_test")
        (monthly,) = await pipe.until_record("the monthly test record", lambda: pipe.tests_of("gen-1"))
        assert monthly.counts, monthly
        assert monthly.trigger == "test_mode"
        assert monthly.source == "telemetry"
        assert monthly.min_load_pct is not None
        assert monthly.min_load_pct >= 30
        assert "counts" in (monthly.reason or "")
        board = pipe.evaluate(datetime.now(UTC))
        assert board["cc16000-05-generator-test"].status == "pass", board["cc16000-05-generator-test"]

        await pipe.scenario("generator_short_test")
        await pipe.until_record("the short run's record", lambda: len(pipe.tests_of("gen-1")) >= 2)
        await pipe.scenario("generator_light_test")
        await pipe.until_record("the light run's record", lambda: len(pipe.tests_of("gen-1")) >= 3)
        monthly_, short, light = pipe.tests_of("gen-1")
        assert monthly_ == monthly
        assert not short.counts, short
        assert "only" in (short.reason or ""), short
        assert not light.counts, light
        assert "below 30 %" in (light.reason or ""), light
        assert light.avg_load_pct is not None
        assert light.avg_load_pct < 30

        # The board's result reached InfluxDB as a reading of class compliance.
        def stored_status() -> object:
            result = influxd.query(
                "SELECT last(status) FROM compliance WHERE device = 'cc16000-05-generator-test'",
                database=pipe.database,
            )
            series = result["results"][0].get("series") or []
            return bool(series) and series[0]["values"][0][1] == "pass"

        await pipe.until_record("the generator-test item stored as pass", stored_status, 30)

    # The monthly record, lost, comes back from the database's history with the same key and verdict.
    with pipe.compliance.records.sessions.begin() as s:
        s.execute(delete(RecordRow).where(RecordRow.kind == "generator_test", RecordRow.ref == monthly.ref()))
    assert pipe.compliance.records.get(GeneratorTest, monthly.ref()) is None
    results = await rebuild_tests(
        pipe.site,
        pipe.compliance.records,
        started - timedelta(minutes=1),
        datetime.now(UTC),
        Actor("t", "test"),
    )
    assert [(r.kind, r.ref, r.outcome) for r in results] == [("generator_test", monthly.ref(), "created")]
    rebuilt = pipe.compliance.records.get(GeneratorTest, monthly.ref())
    assert rebuilt is not None
    assert rebuilt.source == "history"
    assert rebuilt.counts
    assert rebuilt.trigger == "test_mode"
    assert abs(rebuilt.on_load_minutes - monthly.on_load_minutes) < 0.05


async def test_ups_self_test_and_outage_incident_review(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, env: dict[str, str]
) -> None:
    # Real time: the generator takes the load over within ~15 s, so the UPS is on battery only that long.
    async with _pipeline(tmp_path, mosquitto, influxd, env, speed=1, alerts=True) as pipe:
        # The result the SNMP UPS already shows (upsTestResultsSummary) is recorded once, its time unknown:
        # it does not start the cadence. A self-test run now is a record with its time.
        def snmp_ups_tests() -> list[UpsTest]:
            return [t for t in pipe.compliance.records.of_kind(UpsTest) if t.device == "ups-snmp"]

        (first,) = await pipe.until_record("the UPS's standing result recorded", snmp_ups_tests, 30)
        assert first.result == "passed"
        assert not first.time_known
        assert pipe.evaluate(datetime.now(UTC))["cc16000-05-ups-test"].status == "unknown"
        await asyncio.to_thread(call, pipe.control, "POST", "ups_self_test", "ups-snmp")
        _, test = await pipe.until_record(
            "the UPS self-test record", lambda: snmp_ups_tests()[1:] and snmp_ups_tests(), 30
        )
        assert test.result == "passed"
        assert test.time_known
        assert test.source == "telemetry"

        await pipe.scenario("utility_outage")
        incidents = await pipe.until_record(
            "an incident review opened by the critical on-battery alert",
            lambda: [i for i in pipe.compliance.records.of_kind(Incident) if i.rule == "ups-on-battery"],
        )
        incident = incidents[0]
        assert incident.severity == "critical"
        assert incident.due_at == incident.started_at + timedelta(days=14)
        assert any("fired" in line for line in incident.timeline)

        item = "cc20000-05-incident-review"
        now = datetime.now(UTC)
        assert pipe.evaluate(now)[item].status == "warn"
        late = pipe.evaluate(incident.due_at + timedelta(hours=1))[item]
        assert late.status == "fail", late
        # Every review the outage opened (each UPS on battery is its own critical alert), closed.
        closing = {
            "cause": "市電中斷 Utility outage",
            "corrective_action": "確認 UPS 與發電機切換正常 Checked the transfer",
            "preventive_action": "每月發電機帶載測試 Monthly generator test on load",
            "closed_at": now,
            "closed_by": "王小明",
        }
        opened = pipe.compliance.records.of_kind(Incident)
        pipe.compliance.records.put_all(
            [Incident.model_validate({**i.model_dump(), **closing}) for i in opened],
            Actor("王小明", "test"),
            now,
        )
        done = pipe.evaluate(incident.due_at + timedelta(hours=1))[item]
        assert done.status == "pass", done
