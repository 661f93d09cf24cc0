"""`roomguard doctor`: each fault gets the right verdict and fix (pure judging, injected facts and clock),
and the real command reports a healthy simulated box, then names mosquitto, then InfluxDB, once stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.broker_acl import broker_acl
from roomguard.doctor import DOCTOR_MEASUREMENT, doctor_topic, gather_broker, gather_database
from roomguard.doctor_judge import (
    BrokerProbe,
    Check,
    ClockFacts,
    DatabaseFacts,
    DeviceConf,
    Report,
    ServiceFact,
    StateDirFacts,
    exit_code,
    http_skew_bound,
    judge_broker,
    judge_clock,
    judge_config,
    judge_database,
    judge_devices,
    judge_services,
    judge_state_dir,
    render,
)
from siteconfig.config import load_site
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.services import Influxd, Mosquitto, VictoriaMetrics, serve
from tests.pipeline_support import log_tails, simulator_up, spawn, wait_for

NOW = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def _ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


# -- pure judging -----------------------------------------------------------------------------------------


def test_config_failure_lists_the_errors_and_points_at_check_config() -> None:
    ok = judge_config(0, "summary", "site.yaml")
    assert ok.status == "ok"
    bad = judge_config(
        2, "site.yaml:3: mqtt.password: secret environment variable X is not set\n1 error", "s.yaml"
    )
    assert bad.status == "fail"
    assert "roomguard check-config s.yaml" in bad.fix
    assert any("X is not set" in d for d in bad.details)


def test_services_by_snapshot_name_the_stale_dead_and_missing_ones() -> None:
    facts = [
        ServiceFact("collector", snapshot={"written": _ago(1), "pid": 10}, liveness="alive"),
        ServiceFact("ingest", snapshot={"written": _ago(60), "pid": 11}, liveness="alive"),
        ServiceFact("alerts", snapshot={"written": _ago(1), "pid": 12}, liveness="dead"),
        ServiceFact("compliance"),
    ]
    c = judge_services("snapshots", facts, NOW)
    assert c.status == "fail"
    assert "ingest, alerts, compliance" in c.en
    assert "collector" not in c.en.split(":")[1]
    assert "status snapshots" in c.en  # says which mode judged
    text = "\n".join(c.details)
    assert "stale" in text
    assert "no longer runs" in text
    assert "no status snapshot" in text
    healthy = judge_services("snapshots", facts[:1], NOW)
    assert healthy.status == "ok"


def test_services_under_systemd_give_the_units_to_start() -> None:
    facts = [ServiceFact("collector", systemd_state="active"), ServiceFact("ingest", systemd_state="failed")]
    c = judge_services("systemd", facts, NOW)
    assert c.status == "fail"
    assert c.fix.startswith("systemctl start roomguard-ingest; journalctl -u roomguard-ingest")
    assert "systemctl is-active" in c.en


def test_broker_down_names_mosquitto() -> None:
    probes = [BrokerProbe(r, f"u-{r}", "unreachable", "connection refused") for r in ("collector", "ingest")]
    c = judge_broker("127.0.0.1", 1883, probes, "t")
    assert c.status == "fail"
    assert "mosquitto" in c.en
    assert "mosquitto" in c.zh
    assert "systemctl start mosquitto" in c.fix
    assert "journalctl -u mosquitto" in c.fix


def test_broker_refused_account_names_the_role_and_its_password_variable() -> None:
    probes = [
        BrokerProbe("collector", "roomguard-collector", "connected", acl="ok"),
        BrokerProbe("ingest", "roomguard-ingest", "refused", "CONNACK 'Not authorized'"),
    ]
    c = judge_broker("h", 1, probes, "t")
    assert c.status == "fail"
    assert "roomguard-ingest" in c.en
    assert "Not authorized" in c.en
    assert "ROOMGUARD_MQTT_INGEST_PASSWORD" in c.fix


def test_broker_acl_denial_and_unknown_protocol() -> None:
    denied = judge_broker(
        "h", 1, [BrokerProbe("collector", "c", "connected", acl="PUBACK 'Not authorized'")], "t/x"
    )
    assert denied.status == "fail"
    assert "roomguard broker-acl" in denied.fix
    v311 = judge_broker(
        "h", 1, [BrokerProbe("collector", "c", "connected", acl="unknown", protocol="3.1.1")], "t"
    )
    assert v311.status == "warn"
    tls = judge_broker("h", 1, [BrokerProbe("collector", "c", "tls", "TLS: certificate verify failed")], "t")
    assert tls.status == "fail"
    assert "ca_file" in tls.fix
    ok = judge_broker("h", 1, [BrokerProbe("collector", "c", "connected", acl="ok")], "t")
    assert ok.status == "ok"


def _db(**kw: Any) -> DatabaseFacts:
    return DatabaseFacts(**{"url": "http://db:8086", "kind": "InfluxDB 1.x", "target": "rg", **kw})


def test_database_faults_each_get_their_fix() -> None:
    down = judge_database(_db(ping_error="connection refused"), NOW, "m")
    assert down.status == "fail"
    assert "InfluxDB" in down.en
    assert "systemctl start influxdb" in down.fix
    missing = judge_database(_db(exists=False), NOW, "m")
    assert missing.status == "fail"
    assert "CREATE DATABASE rg" in missing.fix
    denied = judge_database(_db(exists=True, write_status=403, write_error="forbidden"), NOW, "m")
    assert denied.status == "fail"
    assert "GRANT WRITE ON rg" in denied.fix
    lagging = judge_database(_db(exists=True, last_write=NOW - timedelta(seconds=120)), NOW, "m")
    assert lagging.status == "warn"
    assert "120 s" in lagging.en
    stalled = judge_database(_db(exists=True, last_write=NOW - timedelta(seconds=900)), NOW, "m")
    assert stalled.status == "fail"
    current = judge_database(
        _db(exists=True, last_write=NOW - timedelta(seconds=3), outbox_oldest_s=2), NOW, "m"
    )
    assert current.status == "ok"
    ingest_sees_error = judge_database(
        _db(last_write=NOW, ingest_db_state="down", ingest_db_error="timeout"), NOW, "m"
    )
    assert ingest_sees_error.status == "fail"


def test_devices_fail_warn_and_name_the_address() -> None:
    devices = [
        DeviceConf("ups-1", "snmp 10.0.0.5:161", 5),
        DeviceConf("th-a01", "modbus 10.0.0.6:502 unit 1", 5),
        DeviceConf("crac-1", "modbus 10.0.0.7:502 unit 2", 5),
        DeviceConf("gen-1", "modbus 10.0.0.8:502 unit 10", 2),
        DeviceConf("new-1", "snmp 10.0.0.9:161", 5),
    ]
    snap = {
        "devices": {
            "ups-1": {"last_poll": _ago(2), "quality": "good"},
            "th-a01": {"last_poll": _ago(2), "quality": "comm_error", "error": "timeout"},
            "crac-1": {"last_poll": _ago(3), "quality": "partial"},
            "gen-1": {"last_poll": _ago(600), "quality": "good"},
        }
    }
    c = judge_devices(devices, snap, NOW)
    assert c.status == "fail"
    assert "th-a01 @ modbus 10.0.0.6:502 unit 1" in c.en
    assert "comm_error" in c.en
    assert "gen-1" in c.en
    assert "600 s" in c.en
    assert "new-1" in c.en
    assert "never polled" in c.en
    assert "ups-1" not in c.en
    only_partial = judge_devices(devices[2:3], snap, NOW)
    assert only_partial.status == "warn"
    assert judge_devices(devices[:1], snap, NOW).status == "ok"
    assert judge_devices(devices, None, NOW).status == "fail"


def test_clock_thresholds_and_the_date_header_bound() -> None:
    sent = datetime(2026, 12, 2, 8, 0, 0, 300_000, tzinfo=UTC)
    received = sent + timedelta(milliseconds=20)
    # The server's second 08:00:00 covers our send time: no provable skew.
    assert http_skew_bound(sent, received, sent.replace(microsecond=0)) == 0.0
    # The server says 08:00:03: its clock read ≥ 3 s while ours read ≤ 0.32 s → at least 2.68 s behind.
    behind = http_skew_bound(sent, received, sent.replace(second=3, microsecond=0))
    assert behind == pytest.approx(-2.68)
    # The server says 07:59:58 (up to 07:59:59): ours is ≥ 1.3 s ahead.
    assert http_skew_bound(sent, received, datetime(2026, 12, 2, 7, 59, 58, tzinfo=UTC)) == pytest.approx(1.3)
    fails = judge_clock(ClockFacts(http_sent=sent, http_received=received, http_date=sent.replace(second=3)))
    assert fails.status == "fail"
    assert "timedatectl set-ntp true" in fails.fix
    assert judge_clock(ClockFacts(chrony_offset_s=-0.8)).status == "warn"
    assert judge_clock(ClockFacts(chrony_offset_s=0.001)).status == "ok"
    assert judge_clock(ClockFacts(ntp_synchronized=False)).status == "fail"
    assert judge_clock(ClockFacts(ntp_synchronized=True)).status == "ok"
    assert judge_clock(ClockFacts()).status == "warn"


GIB = 1024**3


def _sd(
    mode: int = 0o700, free: int | None = 10 * GIB, owner: str = "roomguard", expect: str | None = None
) -> Check:
    return judge_state_dir(
        StateDirFacts("/var/lib/roomguard", True, mode, owner, expect, free, outbox_max_bytes=GIB)
    )


def test_state_dir_mode_owner_and_space() -> None:
    assert _sd().status == "ok"
    wide = _sd(mode=0o755)
    assert wide.status == "warn"
    assert "chmod 0700" in wide.fix
    other = _sd(owner="root", expect="roomguard")
    assert other.status == "fail"
    assert "chown -R roomguard" in other.fix
    full = _sd(free=GIB // 2)
    assert full.status == "fail"
    assert "outbox" in full.en
    assert _sd(free=GIB + GIB // 2).status == "warn"
    assert judge_state_dir(StateDirFacts("/nope", False)).status == "fail"


def test_exit_code_and_rendering() -> None:
    ok = Check("clock", "ok", "時鐘", "clock")
    warn = Check("devices", "warn", "設備", "devices", "fix it", ("WARN x",))
    fail = Check("broker", "fail", "代理", "broker down", "systemctl start mosquitto")
    assert exit_code([ok, warn]) == 0
    assert exit_code([ok, fail]) == 1
    text = render(Report("tpe-hq", [ok, warn, fail]))
    assert "✓ clock" in text
    assert "! devices" in text
    assert "✗ broker" in text
    assert "fix 修正: systemctl start mosquitto" in text
    assert "WARN x" in text
    doc = Report("tpe-hq", [ok, fail]).as_dict()
    assert doc["status"] == "fail"
    assert doc["exit_code"] == 1
    assert doc["checks"][1]["fix"]


# -- the real command against a running simulated box --------------------------------------------------

PASSWORDS = {
    "roomguard": "pw-observer",
    "roomguard-collector": "pw-collector",
    "roomguard-ingest": "pw-ingest",
    "roomguard-alerts": "pw-alerts",
    "roomguard-compliance": "pw-compliance",
}
ENV_OF = {
    "roomguard": "ROOMGUARD_MQTT_PASSWORD",
    "roomguard-collector": "ROOMGUARD_MQTT_COLLECTOR_PASSWORD",
    "roomguard-ingest": "ROOMGUARD_MQTT_INGEST_PASSWORD",
    "roomguard-alerts": "ROOMGUARD_MQTT_ALERTS_PASSWORD",
    "roomguard-compliance": "ROOMGUARD_MQTT_COMPLIANCE_PASSWORD",
}


class RoleMosquitto(Mosquitto):
    """mosquitto with the example site's role accounts and the ACL `roomguard broker-acl` makes for it."""

    def __init__(self, workdir: Path, port: int, acl: str) -> None:
        super().__init__(workdir, port, acl=acl)
        for user, password in PASSWORDS.items():
            # mosquitto_passwd(1) -b: password on the command line; without -c the file is updated.
            subprocess.run(
                ["mosquitto_passwd", "-b", str(workdir / "passwd"), user, password],
                check=True,
                capture_output=True,
            )


Box = tuple[Path, RoleMosquitto, Influxd, dict[str, str]]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    """The example site (free ports, this test's database) with its broker: role accounts and ACL."""
    db = Influxd(tmp_path / "influxd", database="doctor")
    # The test database has no authentication: the example's InfluxDB account is left out.
    section = f"influxdb: {{url: '{db.url}', api: v1, database: doctor}}\n"
    site, _ = example_site(tmp_path / "site.yaml", influxdb=section)
    loaded = load_site(site)
    broker = RoleMosquitto(tmp_path / "mosquitto", loaded.mqtt.port, broker_acl(loaded))
    env = {**os.environ, **SECRETS, **{ENV_OF[u]: pw for u, pw in PASSWORDS.items()}}
    for mq in serve(broker):
        for influx in serve(db):
            yield site, mq, influx, env


def _doctor(
    site: Path, state: Path, env: dict[str, str], *, as_json: bool = True
) -> tuple[int, dict[str, Any], str]:
    """`python -m roomguard doctor`: exit code, its JSON document (with `as_json`), all its output."""
    out = subprocess.run(
        [sys.executable, "-m", "roomguard", "doctor", str(site), "--state-dir", str(state)]
        + (["--json"] if as_json else []),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # every probe is bounded by 5 s; this only keeps a hung doctor from hanging the suite
    )
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        doc = {}
    return out.returncode, doc, out.stdout + out.stderr


def _by_check(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in doc.get("checks", [])}


@pytest.mark.integration
async def test_doctor_reports_a_healthy_box_then_names_mosquitto_then_influxdb(
    box: Box, tmp_path: Path
) -> None:
    site, broker, db, env = box
    simulator = load_site(site).simulator
    assert simulator is not None
    sim_port = simulator.http_port
    state = tmp_path / "state"
    logs = [tmp_path / "sim.log", tmp_path / "run.log"]
    last: list[str] = [""]

    def healthy() -> dict[str, Any] | None:
        code, doc, out = _doctor(site, state, env)
        last[0] = out
        return doc if code == 0 and all(c["status"] == "ok" for c in doc.get("checks", [])) else None

    def diagnosis() -> str:
        return f"last doctor output:\n{last[0][-4000:]}\n{log_tails(logs)}\n{broker.log_tail(2000)}"

    with spawn(["simulate", str(site), "--http-port", str(sim_port)], env, logs[0]) as sim:
        await simulator_up(f"http://127.0.0.1:{sim_port}", sim, logs[0])
        with spawn(["run", str(site), "--state-dir", str(state)], env, logs[1]):
            doc = await wait_for(healthy, "doctor: every check ok", diagnosis, limit_s=240)
            assert {c["check"] for c in doc["checks"]} == {
                "config",
                "services",
                "broker",
                "database",
                "devices",
                "clock",
                "state-dir",
            }
            assert "status snapshots" in _by_check(doc)["services"]["message_en"]  # no systemd here
            code, _, human = _doctor(site, state, env, as_json=False)
            marks = [ln[0] for ln in human.splitlines()[1:] if ln and not ln.startswith(" ")]
            # Healthy a moment ago: exit 0, or an ✗ that says why not; one line per check either way.
            assert code == 0 or "✗" in marks, human
            assert len(marks) == 7, human

            broker.stop()

            def broker_named() -> dict[str, Any] | None:
                code, doc, out = _doctor(site, state, env)
                last[0] = out
                return doc if code == 1 and _by_check(doc)["broker"]["status"] == "fail" else None

            doc = await wait_for(broker_named, "doctor: broker fails", diagnosis, limit_s=120)
            check = _by_check(doc)["broker"]
            assert "mosquitto" in check["message_en"]
            assert "mosquitto" in check["message_zh"]
            assert "systemctl start mosquitto" in check["fix"]
            assert _by_check(doc)["database"]["status"] != "fail"  # the fault is named where it is

            broker.start()

            def broker_back() -> dict[str, Any] | None:
                _code, doc, out = _doctor(site, state, env)
                last[0] = out
                return doc if _by_check(doc).get("broker", {}).get("status") == "ok" else None

            await wait_for(broker_back, "doctor: broker ok again", diagnosis, limit_s=120)

            db.stop()

            def db_named() -> dict[str, Any] | None:
                code, doc, out = _doctor(site, state, env)
                last[0] = out
                return doc if code == 1 and _by_check(doc)["database"]["status"] == "fail" else None

            doc = await wait_for(db_named, "doctor: database fails", diagnosis, limit_s=120)
            check = _by_check(doc)["database"]
            assert "InfluxDB" in check["message_en"]
            assert "InfluxDB" in check["message_zh"]
            assert "systemctl start influxdb" in check["fix"]
            assert _by_check(doc)["broker"]["status"] == "ok"  # the fault is named where it is


@pytest.mark.integration
def test_broker_probes_name_a_refused_account_and_a_denied_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a real mosquitto with the site's accounts: all pass; a wrong password is refused by name;
    an ACL without the collector's write grant is caught by the PUBACK of the test publish."""
    site_path, _ = example_site(tmp_path / "site.yaml")
    site = load_site(site_path)
    for user, password in PASSWORDS.items():
        monkeypatch.setenv(ENV_OF[user], password)
    acl = broker_acl(site)
    topic = doctor_topic(site)
    with contextmanager(serve)(RoleMosquitto(tmp_path / "mosquitto", site.mqtt.port, acl)) as broker:

        def check() -> Check:
            return judge_broker(broker.host, broker.port, gather_broker(site), topic)

        ok = check()
        assert ok.status == "ok", ok
        assert {p.split(" ")[1] for p in ok.details} >= {
            "collector",
            "ingest",
            "alerts",
            "compliance",
            "observer",
        }

        monkeypatch.setenv("ROOMGUARD_MQTT_INGEST_PASSWORD", "wrong")
        refused = check()
        assert refused.status == "fail"
        assert "REFUSED ingest (roomguard-ingest)" in refused.en, refused
        assert "ROOMGUARD_MQTT_INGEST_PASSWORD" in refused.fix
        monkeypatch.setenv("ROOMGUARD_MQTT_INGEST_PASSWORD", PASSWORDS["roomguard-ingest"])

        # The collector's write grant taken away (mosquitto re-reads the ACL on SIGHUP, mosquitto(8)).
        broker.acl_path.write_text(acl.replace(f"topic write {topic.rsplit('/', 2)[0]}/#", "# no write"))
        broker.reload()
        denied = _wait_until(lambda: (c := check()).status == "fail" and c)
        assert f"DENIED collector (roomguard-collector): publish to {topic} refused" in denied.en, denied
        assert "roomguard broker-acl" in denied.fix


def _wait_until(cond: Any, limit_s: float = 30) -> Any:
    """Poll `cond` until it returns something truthy (SIGHUP is applied asynchronously by mosquitto)."""
    deadline = time.monotonic() + limit_s
    while not (value := cond()):
        assert time.monotonic() < deadline, f"condition not met in {limit_s:g} s"
        time.sleep(0.3)
    return value


@pytest.mark.integration
async def test_database_check_writes_its_point_to_victoria_metrics_through_the_v2_api(
    victoria_metrics: VictoriaMetrics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site on VictoriaMetrics (api v2): /ping, the test write with ingest's writer, the Date clock."""
    monkeypatch.setenv("ROOMGUARD_INFLUX_TOKEN", "x")
    section = (
        f"influxdb: {{url: '{victoria_metrics.url}', api: v2, bucket: roomguard, org: o,"
        " token: {env: ROOMGUARD_INFLUX_TOKEN}}\n"
    )
    site_path, _ = example_site(tmp_path / "site.yaml", influxdb=section)
    ingest_snapshot = {"ingest": {"last_write_ts": datetime.now(UTC).isoformat()}}
    facts, clock = await gather_database(load_site(site_path), ingest_snapshot)
    check = judge_database(facts, datetime.now(UTC), DOCTOR_MEASUREMENT)
    assert check.status == "ok", check
    assert "InfluxDB/VictoriaMetrics" in check.en
    series = victoria_metrics.export(f'{{__name__=~"{DOCTOR_MEASUREMENT}.*"}}', min_series=1)
    assert series, "the test point never reached VictoriaMetrics"
    assert series[0]["metric"]["site"] == "tpe-hq"
    assert judge_clock(clock).status == "ok"  # the Date header of /ping, on this same host


@pytest.mark.integration
def test_broker_probe_names_a_tls_failure_and_a_client_certificate_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS listener: the right CA passes; an unrelated CA is a TLS error pointing at mqtt.tls; without the
    client certificate the broker requires, the probe fails instead of hanging."""
    monkeypatch.setenv("T_DOCTOR_PW", Mosquitto.password)
    with contextmanager(serve)(Mosquitto(tmp_path / "mosquitto", tls=True)) as broker:
        pki = broker.pki
        assert pki is not None
        assert broker.tls_port is not None

        def check(tls: str) -> Check:
            path = tmp_path / "site.yaml"
            path.write_text(f"""site: {{id: tls, name: TLS}}
rooms: [{{id: r1, name: R}}]
mqtt:
  host: 127.0.0.1
  port: {broker.tls_port}
  username: {broker.username}
  password: {{env: T_DOCTOR_PW}}
  tls: {tls}
""")
            site = load_site(path)
            return judge_broker("127.0.0.1", broker.tls_port or 0, gather_broker(site), doctor_topic(site))

        mutual = f"{{ca_file: {pki.ca_cert}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}"
        ok = check(mutual)
        assert ok.status == "ok", ok
        wrong_ca = check(
            f"{{ca_file: {pki.other_ca_cert}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}"
        )
        assert wrong_ca.status == "fail"
        assert "TLS collector (roomguard), ingest (roomguard), compliance (roomguard): TLS:" in wrong_ca.en
        assert "CERTIFICATE_VERIFY_FAILED" in wrong_ca.en
        assert "observer" not in wrong_ca.en  # the roles share the plain account: no separate observer
        assert "mqtt.tls.ca_file" in wrong_ca.fix
        no_cert = check(f"{{ca_file: {pki.ca_cert}}}")
        assert no_cert.status == "fail", no_cert
        assert "closed by the broker before CONNACK" in no_cert.en
        assert "cert_file" in no_cert.fix
