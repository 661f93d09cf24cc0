"""`GET /metrics`: parsed with prometheus_client's own parser and checked against what was published on
a real broker, written as process snapshots and stored as alerts; 401 without a token, 200 with a
viewer's, anonymous only with `api.metrics_public`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from alerts.store import Alert
from api.app import create_app
from api.live_model import CheckLive, CollectorLive, DeviceLive, LiveSnapshot, MetricLive, StaticLive
from bus.status_file import process_identity, write_snapshot
from devices.wire import (
    DeviceStatus,
    encode_status,
    topic_collector_status,
    topic_compliance,
    topic_readings,
)
from records.db import session_factory
from siteconfig.api_config import ApiConfig
from testkit.services import Mosquitto
from tests.api_support import ADMIN_CLI, FAST_HASHER, T0, fresh_engine, migrated_template, store_with_users
from tests.test_api_live import PASSWORD_ENV, PREFIX, Publisher, _check, _poll, _site, wait_for

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics text: (name, sorted labels) → value (Prometheus's own parser)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError naming what the text has of that name)."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        have = [k for k in samples if k[0] == name]
        raise KeyError(f"{key} not in /metrics; of {name} it has {have}")
    return samples[key]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = fresh_engine(migrated_template(tmp_path), tmp_path)
    store_with_users(engine)
    yield engine
    engine.dispose()


def _token(engine: Engine, user: str = "vera") -> dict[str, str]:
    from api.store import ApiStore

    token = ApiStore(session_factory(engine), hasher=FAST_HASHER).create_token(
        f"prom-{user}", user, ADMIN_CLI, T0
    )
    return {"Authorization": f"Bearer {token}"}


def _app(engine: Engine, state_dir: Path, live: StaticLive, settings: ApiConfig | None = None) -> FastAPI:
    return create_app(
        settings or ApiConfig(), records_url=engine, state_dir=state_dir, live=live, hasher=FAST_HASHER
    )


def _alert(
    key: str, severity: str, *, acked: bool = False, suppressed: str | None = None, resolved: bool = False
) -> Alert:
    return Alert(
        dedup_key=key,
        rule_id=key.split(":")[0],
        severity=severity,
        state="resolved" if resolved else "firing",
        labels={"device": "th-1"},
        value=31.0,
        limit=30.0,
        started_at=T0,
        resolved_at=T0 if resolved else None,
        last_event_at=T0,
        texts={},
        acked_by="otto" if acked else None,
        acked_at=T0 if acked else None,
        suppressed=suppressed,
        escalation_level=0,
        notify_count=0,
        fire_notices=[],
    )


SNAP = LiveSnapshot(
    taken_at=T0,
    connected=True,
    devices=(
        DeviceLive(
            "th-1",
            "溫濕度一",
            "env",
            "mr1",
            "cold-a",
            "r01",
            "sht20-xy-md02",
            at=T0 - timedelta(seconds=4),
            quality="good",
            metrics={"temp_c": MetricLive(22.0, "good", "°C")},
            duration_s=0.25,
            status="online",
        ),
        DeviceLive(
            "ups-1",
            "UPS",
            "ups",
            "mr1",
            None,
            None,
            "apc-smartups-modbus",
            at=T0,
            quality="comm_error",
            duration_s=2.0,
        ),
        DeviceLive("th-2", "溫濕度二", "env", "mr1", None, None, "sht20-xy-md02"),
    ),
    collectors=(CollectorLive("edge-1", "offline", T0, "lost"),),
    checks=(
        CheckLive("cc16000-05-ups-test", "warn", T0, {"days_to_due": 3}),
        CheckLive("cc16000-01-doors", "pass", T0),
    ),
    messages=12,
    rejected=2,
)


def test_metrics_carry_the_live_view_the_process_snapshots_and_the_alert_counts(
    engine: Engine, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    me = process_identity()
    write_snapshot(
        state,
        "collector",
        {
            **me,
            "running": True,
            "outbox": {"depth": 7, "bytes": 900, "oldest_age_s": 3.5, "dropped_total": 1},
        },
    )
    last_write = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    write_snapshot(state, "ingest", {**me, "running": True, "backlog": 11, "last_write_ts": last_write})
    write_snapshot(state, "alerts", {**me, "running": False})
    with session_factory(engine).begin() as s:
        s.add_all(
            [
                _alert("hot:th-1", "critical"),
                _alert("hot:th-2", "critical", acked=True),
                _alert("hum:th-1", "warning", suppressed="silence:3"),
                _alert("hum:th-2", "warning", acked=True, suppressed="maintenance:1"),
                _alert("flap:th-3", "warning", suppressed="flapping"),
                _alert("old:th-1", "critical", resolved=True),
            ]
        )
    with TestClient(_app(engine, state, StaticLive(SNAP))) as client:
        r = client.get("/metrics", headers=_token(engine))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    m = parse(r.text)
    dev = {"device": "th-1", "room": "mr1", "class": "env"}
    ups = {"device": "ups-1", "room": "mr1", "class": "ups"}
    assert value(m, "roomguard_device_poll_duration_seconds", **dev) == 0.25
    assert value(m, "roomguard_device_poll_duration_seconds", **ups) == 2.0
    assert value(m, "roomguard_device_reading_age_seconds", **dev) == 4.0
    assert value(m, "roomguard_device_quality", **dev, quality="good") == 1
    assert value(m, "roomguard_device_quality", **dev, quality="comm_error") == 0
    assert value(m, "roomguard_device_quality", **ups, quality="comm_error") == 1
    assert value(m, "roomguard_device_online", **dev) == 1
    assert value(m, "roomguard_devices", quality="good") == 1
    assert value(m, "roomguard_devices", quality="comm_error") == 1
    assert value(m, "roomguard_devices", quality="none") == 1  # th-2: nothing heard yet
    assert value(m, "roomguard_collector_online", collector="edge-1") == 0
    ups_test = {"item": "cc16000-05-ups-test", "code": "CC-16000 (五)"}
    assert value(m, "roomguard_check_status", **ups_test, status="warn") == 1
    assert value(m, "roomguard_check_status", **ups_test, status="pass") == 0
    assert value(m, "roomguard_check_days_to_due", item="cc16000-05-ups-test") == 3
    assert value(m, "roomguard_api_broker_connected") == 1
    assert value(m, "roomguard_api_bus_messages_total") == 12
    assert value(m, "roomguard_api_bus_rejected_total") == 2
    assert value(m, "roomguard_outbox_depth") == 7
    assert value(m, "roomguard_ingest_lag_seconds") == 3.5
    assert value(m, "roomguard_outbox_dropped_total") == 1
    assert value(m, "roomguard_ingest_backlog", process="ingest") == 11
    assert 29 <= value(m, "roomguard_ingest_last_write_age_seconds", process="ingest") < 300
    assert value(m, "roomguard_process_up", process="collector") == 1
    assert value(m, "roomguard_process_up", process="alerts") == 0  # stopped cleanly
    assert value(m, "roomguard_alerts", state="open", severity="critical") == 2  # not the resolved one
    assert value(m, "roomguard_alerts", state="acknowledged", severity="critical") == 1
    assert value(m, "roomguard_alerts", state="open", severity="warning") == 3
    assert (
        value(m, "roomguard_alerts", state="silenced", severity="warning") == 2
    )  # flapping is not a silence
    assert value(m, "roomguard_alerts", state="acknowledged", severity="warning") == 1
    assert value(m, "roomguard_alerts", state="open", severity="info") == 0


def test_metrics_need_a_token_unless_the_site_makes_them_public(engine: Engine, tmp_path: Path) -> None:
    live = StaticLive(SNAP)
    with TestClient(_app(engine, tmp_path, live)) as client:
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "unauthenticated"
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer rgt_nope"}).status_code == 401
        for user in ("vera", "audrey"):  # every role reads status
            assert client.get("/metrics", headers=_token(engine, user)).status_code == 200
    with TestClient(_app(engine, tmp_path, live, ApiConfig(metrics_public=True))) as client:
        r = client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert value(parse(r.text), "roomguard_api_bus_messages_total") == 12
        # A Prometheus that prefers OpenMetrics gets it (Accept as Prometheus sends it).
        om = client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        families = {f.name: f for f in openmetrics_families(om.text)}  # type: ignore[no-untyped-call]
        assert families["roomguard_api_bus_messages"].samples[0].value == 12


def test_metrics_public_is_a_validated_boolean() -> None:
    assert ApiConfig().metrics_public is False
    assert ApiConfig.model_validate({"metrics_public": True}).metrics_public is True
    with pytest.raises(ValueError, match="metrics_public"):
        ApiConfig.model_validate({"metrics_public": "sometimes"})


@pytest.mark.integration
def test_published_readings_and_check_results_reach_the_metrics(
    mosquitto: Mosquitto, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, Mosquitto.password)
    site = _site(tmp_path, mosquitto.port)
    sid = site.site.id
    app = create_app(
        ApiConfig(metrics_public=True), records_url=engine, state_dir=tmp_path / "state", site=site
    )
    with TestClient(app) as client:
        last: list[str] = [""]

        def scrape() -> Samples:
            r = client.get("/metrics")
            assert r.status_code == 200, r.text
            last[0] = r.text
            return parse(r.text)

        def diagnosis() -> str:
            return f"last /metrics:\n{last[0][-3000:]}\nbroker:\n{mosquitto.log_tail(2000)}"

        wait_for("API connected", lambda: value(scrape(), "roomguard_api_broker_connected") == 1, diagnosis)
        pub = Publisher(mosquitto)
        try:
            now = datetime.now(UTC)
            pub.publish(topic_readings(PREFIX, sid, "mr1", "th-1"), _poll(sid, "th-1", now, 21.0))
            pub.publish(
                topic_compliance(PREFIX, sid, "cc16000-05-ups-test"),
                _check(sid, "cc16000-05-ups-test", now, "fail", -2),
            )
            pub.publish(
                topic_collector_status(PREFIX, sid, f"c-{uuid.uuid4().hex[:4]}"),
                encode_status(DeviceStatus("online", now)),
                True,
            )
            pub.publish(topic_readings(PREFIX, sid, "mr1", "th-2"), b"\xff\xfe broken")

            def arrived() -> Samples | None:
                m = scrape()
                done = ("roomguard_check_days_to_due", (("item", "cc16000-05-ups-test"),)) in m
                return m if done and value(m, "roomguard_api_bus_rejected_total") == 1 else None

            m = wait_for("the published messages on /metrics", arrived, diagnosis)
        finally:
            pub.close()
    dev = {"device": "th-1", "room": "mr1", "class": "env"}
    assert value(m, "roomguard_device_poll_duration_seconds", **dev) == 0.042  # the message's duration_s
    assert value(m, "roomguard_device_quality", **dev, quality="good") == 1
    th2 = {"device": "th-2", "room": "mr1", "class": "env"}
    assert value(m, "roomguard_device_quality", **th2, quality="none") == 1
    assert value(m, "roomguard_devices", quality="none") == 1
    ups_test = {"item": "cc16000-05-ups-test", "code": "CC-16000 (五)"}
    assert value(m, "roomguard_check_status", **ups_test, status="fail") == 1
    assert value(m, "roomguard_check_days_to_due", item="cc16000-05-ups-test") == -2
