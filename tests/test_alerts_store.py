# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The alert service over a real SQLite records database in tmp_path (no database mocks): fire →
deliveries once; replays and restarts create nothing new; ack stops escalation; silences keep alerts
visible and unnotified; retry backoff and permanent failures; rendering of the stored notification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.inputs import Labels, Sample, StatusInput
from alerts.lifecycle import Policy, RetryPolicy, Route
from alerts.notify.base import DeliveryError
from alerts.service import AlertService, QueuedDelivery, scrub
from alerts.store import DeliveryAttempt, EngineStateRow
from devices.reading import DeviceClass
from records.db import make_engine, session_factory
from records.migrate import upgrade
from siteconfig.alert_rules import RuleSet

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
ENV1 = Labels("tpe1", "room-a", "env-1", DeviceClass.ENV)
ENV2 = Labels("tpe1", "room-a", "env-2", DeviceClass.ENV)
RULES = RuleSet.model_validate(
    {
        "rules": [
            {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 26,
             "severity": "critical"},
            {"id": "offline", "kind": "offline", "inhibits": ["hot"],
             "inhibit_equal": ["site", "room", "device"]},
            {"id": "quiet", "kind": "stale", "metric": "rh_pct", "after_s": 300},
        ]
    }
)  # fmt: skip
POLICY = Policy(
    routes=(Route(("mail", "line")),),
    escalation_channels=("boss",),
    group_wait_s=0,
    renotify_every_s=600,
    max_renotify=1,
)
HOT_KEY = "hot:tpe1:room-a:env-1:temp_c"


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def temp(s: float, v: float, lb: Labels = ENV1) -> Sample:
    return Sample(lb, "temp_c", at(s), v)


@pytest.fixture
def url(tmp_path: Path) -> str:
    u = f"sqlite:///{tmp_path / 'records.db'}"
    upgrade(u)
    return u


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    e = make_engine(url)
    yield e
    e.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def svc(sessions: sessionmaker[Session]) -> AlertService:
    return AlertService(sessions, RULES, POLICY)


def summary(ds: list[QueuedDelivery]) -> list[tuple[str, str, int, str]]:
    return [(d.kind, d.channel, d.level, d.key) for d in ds]


# ----------------------------------------------------------------------------------- fire, replay


def test_fire_creates_one_delivery_per_channel_once(svc: AlertService) -> None:
    assert svc.ingest([temp(0, 25.0)], at(0)) == []
    out = svc.ingest([temp(10, 28.4)], at(10))
    assert summary(out) == [("firing", "mail", 0, HOT_KEY), ("firing", "line", 0, HOT_KEY)]
    assert svc.ingest([temp(10, 28.4)], at(11)) == []  # the same reading replayed
    assert svc.ingest([temp(20, 28.9)], at(20)) == []  # still hot: not new
    (a,) = svc.list_open()
    # The value is the one it fired with (and, later, the one it resolved with).
    assert (a.key, a.state, a.value, a.limit, a.started_at) == (HOT_KEY, "firing", 28.4, 27.0, at(10))
    assert [h.what for h in svc.history(HOT_KEY)] == ["fired"]
    assert len(svc.due_deliveries(at(20))) == 2


def test_the_stored_notification_is_rendered_in_both_languages(svc: AlertService) -> None:
    svc.ingest([temp(-110, 26.0)], at(-110))
    out = svc.ingest([temp(-50, 26.9), temp(10, 28.4)], at(10))  # rising: a forecast
    n = out[0].notification
    assert (n.key, n.kind, n.severity) == (HOT_KEY, "firing", "critical")
    assert n.subject_zh.startswith("[嚴重] env-1 temp_c 28.4")
    assert n.subject_en.startswith("[CRITICAL] env-1 temp_c 28.4")
    assert "開始：2026-03-01 09:00:10 (UTC+8)" in n.body_zh  # Taiwan time in the texts
    assert "Since: 2026-03-01 09:00:10 (UTC+8)" in n.body_en
    assert f"告警編號：{HOT_KEY}" in n.body_zh
    p = n.payload
    assert p["schema"] == "roomguard.alert/1"
    assert (p["id"], p["state"], p["severity"], p["rule"]) == (HOT_KEY, "firing", "critical", "hot")
    assert (p["value"], p["limit"], p["started_at"], p["resolved_at"], p["acked"]) == (
        28.4, 27.0, "2026-03-01T01:00:10.000000Z", None, None,
    )  # fmt: skip
    assert p["labels"] == {
        "site": "tpe1",
        "room": "room-a",
        "device": "env-1",
        "class": "env",
        "metric": "temp_c",
    }
    texts = p["texts"]
    assert set(texts) == {"zh_TW", "en", "forecast_zh_TW", "forecast_en", "margin_zh_TW", "margin_en"}
    assert texts["zh_TW"].startswith("env-1 temp_c 28.4 °C，高於 27 °C")
    assert texts["forecast_en"] == "+1.2 °C/min, already past 27 °C"
    assert texts["margin_zh_TW"] is None  # no power chain on this rule
    assert n.body_en.count(texts["forecast_en"]) == 1  # once: the default template ends with it
    json.dumps(p)  # JSON as stored


def test_resolved_is_delivered_once(svc: AlertService) -> None:
    svc.ingest([temp(10, 28.4)], at(10))
    assert svc.ingest([temp(20, 26.5)], at(20)) == []  # hysteresis: not cleared above 26
    out = svc.ingest([temp(30, 25.9)], at(30))
    assert summary(out) == [("resolved", "mail", 0, HOT_KEY), ("resolved", "line", 0, HOT_KEY)]
    n = out[0].notification
    assert n.subject_zh.startswith("[嚴重][已恢復] 已恢復：")
    assert n.payload["state"] == "resolved"
    assert n.payload["resolved_at"] == "2026-03-01T01:00:30.000000Z"
    assert n.payload["texts"]["en"].startswith("Resolved: ")
    assert svc.ingest([temp(30, 25.9), temp(40, 25.0)], at(40)) == []
    assert svc.list_open() == []
    assert [h.what for h in svc.history(HOT_KEY)] == ["fired", "resolved"]


def test_alerts_of_one_rule_in_one_room_go_out_as_one_summary(sessions: sessionmaker[Session]) -> None:
    svc = AlertService(sessions, RULES, Policy(routes=(Route(("mail",)),), group_wait_s=30))
    assert svc.ingest([temp(0, 29.0), temp(0, 30.0, ENV2)], at(0)) == []
    (d,) = svc.tick(at(30))
    assert (d.kind, d.channel, d.alert_keys) == ("summary", "mail", (HOT_KEY, "hot:tpe1:room-a:env-2:temp_c"))
    n = d.notification
    assert n.subject_en == "[CRITICAL] hot: 2 alerts in room-a"
    assert n.subject_zh == "[嚴重] hot：room-a 2 項告警"
    p = n.payload
    assert (p["schema"], p["id"], p["count"], p["kinds"]) == (
        "roomguard.alert-summary/1", d.key, 2, {"firing": 2},
    )  # fmt: skip
    assert d.key == f"summary:tpe1:room-a:{int(at(30).timestamp())}:hot"
    assert (p["labels"], p["at"], p["first_at"]) == (
        {"site": "tpe1", "room": "room-a"}, "2026-03-01T01:00:30.000000Z", "2026-03-01T01:00:00.000000Z",
    )  # fmt: skip
    assert [(x["id"], x["alert"]["schema"]) for x in p["alerts"]] == [
        (k, "roomguard.alert/1") for k in d.alert_keys
    ]


# ----------------------------------------------------------------------------------------- restart


def test_a_restart_neither_fires_again_nor_forgets(url: str) -> None:
    first = make_engine(url)
    svc = AlertService(session_factory(first), RULES, POLICY)
    svc.ingest([temp(0, 25.0)], at(0))
    assert len(svc.ingest([temp(10, 28.4)], at(10))) == 2
    first.dispose()

    second = make_engine(url)  # a new process on the same file
    again = AlertService(session_factory(second), RULES, POLICY)
    assert again.ingest([temp(0, 25.0), temp(10, 28.4)], at(12)) == []  # the outbox replays both
    assert [a.key for a in again.list_open()] == [HOT_KEY]
    out = again.ingest([temp(20, 25.0)], at(20))  # the engine still knows the alert: it resolves
    assert [d.kind for d in out] == ["resolved", "resolved"]
    second.dispose()


def test_an_unreadable_engine_state_starts_afresh_without_a_second_firing(
    svc: AlertService, sessions: sessionmaker[Session]
) -> None:
    svc.ingest([temp(10, 28.4)], at(10))
    with sessions.begin() as s:
        row = s.get(EngineStateRow, 1)
        assert row is not None
        row.state = {"version": 99}
    assert svc.ingest([temp(20, 29.0)], at(20)) == []  # fires again in the engine, not news to the store
    assert [a.key for a in svc.list_open()] == [HOT_KEY]


def test_a_rule_removed_from_the_site_file_does_not_break_the_stored_state(
    svc: AlertService, sessions: sessionmaker[Session]
) -> None:
    svc.ingest([Sample(ENV1, "rh_pct", at(0), 40.0)], at(0))
    assert [d.key for d in svc.tick(at(400))][:1] == ["quiet:tpe1:room-a:env-1:rh_pct"]
    fewer = AlertService(sessions, RuleSet(rules=RULES.rules[:2]), POLICY)
    assert fewer.tick(at(500)) == []


# ------------------------------------------------------------------------------------ clock, ack


def test_tick_fires_staleness_without_inputs(svc: AlertService) -> None:
    svc.ingest([Sample(ENV1, "rh_pct", at(0), 40.0)], at(0))
    assert svc.tick(at(299)) == []
    assert [(d.kind, d.key) for d in svc.tick(at(301))][:1] == [("firing", "quiet:tpe1:room-a:env-1:rh_pct")]


def test_reminders_then_the_escalation_list_and_ack_stops_them(svc: AlertService) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    assert svc.tick(at(599)) == []
    assert summary(svc.tick(at(600))) == [
        ("escalation", "mail", 1, HOT_KEY),
        ("escalation", "line", 1, HOT_KEY),
    ]
    (boss,) = svc.tick(at(1200))
    assert (boss.channel, boss.level) == ("boss", 2)
    assert boss.notification.subject_en.startswith("[CRITICAL][ESCALATED]")
    assert svc.tick(at(5000)) == []


def test_ack_stops_the_escalation(svc: AlertService) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    a = svc.ack(HOT_KEY, "chen", "technician on the way", at(100))
    assert (a.acked_by, a.acked_at, a.ack_note) == ("chen", at(100), "technician on the way")
    assert svc.tick(at(600)) == []
    assert svc.tick(at(1200)) == []
    out = svc.ingest([temp(700, 25.0)], at(700))  # resolves: the resolved notice says who acked
    assert out[0].notification.payload["acked"] == {
        "by": "chen", "at": "2026-03-01T01:01:40.000000Z", "note": "technician on the way",
    }  # fmt: skip
    assert "已確認：chen" in out[0].notification.body_zh
    acked = [h for h in svc.history(HOT_KEY) if h.what == "acked"]
    assert [(h.who, h.note, h.at) for h in acked] == [("chen", "technician on the way", at(100))]
    # By id too; an unknown alert is an error.
    assert svc.ack(a.id or 0, "lin", None, at(800)).acked_by == "chen"  # the first ack stands
    with pytest.raises(KeyError):
        svc.ack("nope", "chen", None, at(700))


# ---------------------------------------------------------------------------------------- silences


def test_a_silenced_alert_is_visible_and_not_delivered(svc: AlertService) -> None:
    sid = svc.silence({"device": "env-1"}, at(0), at(3600), "replacing the sensor", "wang", at(0))
    assert svc.ingest([temp(10, 28.4)], at(10)) == []
    (a,) = svc.list_open()
    assert (a.key, a.suppressed) == (HOT_KEY, f"silence:{sid}")
    assert [h.what for h in svc.history(HOT_KEY)] == ["fired", "silenced"]
    assert svc.tick(at(1200)) == []  # no reminders either
    (s,) = svc.silences(at(20))
    assert (s.reason, s.created_by, s.kind, s.matchers) == (
        "replacing the sensor",
        "wang",
        "silence",
        {"device": "env-1"},
    )
    # Lifting it while the alert still fires: now it is delivered.
    svc.unsilence(sid, "wang", at(1300))
    assert svc.silences(at(1300)) == []
    assert [d.kind for d in svc.tick(at(1301))] == []  # unsilence already applied it at 1300
    assert [(d.kind, d.created_at) for d in svc.deliveries()] == [("firing", at(1300)), ("firing", at(1300))]


def test_a_maintenance_window_over_a_firing_alert(svc: AlertService) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    svc.silence({"room": ["room-a", "room-b"]}, at(100), at(700), "UPS maintenance", "lee", at(50),
                kind="maintenance")  # fmt: skip
    assert svc.tick(at(600)) == []  # the reminder due at 600 is held back
    assert [h.what for h in svc.history(HOT_KEY)] == ["fired", "silenced"]
    assert [d.level for d in svc.tick(at(700))] == [1, 1]  # window over: the reminder goes out


@pytest.mark.parametrize(
    ("matchers", "error"),
    [({}, "at least one matcher"), ({"device": ""}, "empty"), ({"device": []}, "non-empty list")],
)
def test_a_silence_must_say_what_it_mutes(svc: AlertService, matchers: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        svc.silence(matchers, at(0), at(10), "x", "wang", at(0))


def test_an_inhibited_alert_is_stored_not_delivered(svc: AlertService) -> None:
    svc.ingest([StatusInput(ENV1, at(0), "offline", "timeout")], at(0))
    assert svc.ingest([temp(5, 28.4)], at(5)) == []
    assert {a.key: a.suppressed for a in svc.list_open()} == {
        "offline:tpe1:room-a:env-1": None,
        HOT_KEY: "inhibited:offline:tpe1:room-a:env-1",
    }


# ---------------------------------------------------------------------------------------- delivery


def test_retries_back_off_exponentially_up_to_a_cap(
    svc: AlertService, sessions: sessionmaker[Session]
) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    d = svc.due_deliveries(at(0))[0]
    retry = RetryPolicy(first_s=10, cap_s=30, max_attempts=10)
    waits = []
    now = at(0)
    for _ in range(4):
        r = svc.record_attempt(d.id, False, DeliveryError("connection refused"), now, retry)
        assert r.status == "pending"
        assert r.next_attempt_at is not None
        waits.append((r.next_attempt_at - now).total_seconds())
        assert d.id not in [x.id for x in svc.due_deliveries(now)]
        now = r.next_attempt_at
        assert d.id in [x.id for x in svc.due_deliveries(now)]
    assert waits == [10, 20, 30, 30]
    ok = svc.record_attempt(d.id, True, None, now)
    assert (ok.status, ok.sent_at, ok.attempts, ok.next_attempt_at) == ("sent", now, 5, None)
    assert d.id not in [x.id for x in svc.due_deliveries(at(10_000))]
    notified = [h for h in svc.history(HOT_KEY) if h.what == "notified"]
    assert [h.note for h in notified] == [f"firing via {d.channel}"]
    with sessions() as s:
        tries = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id)).all()
    assert [t.ok for t in tries] == [False, False, False, False, True]
    # A late report about a settled delivery changes nothing.
    assert svc.record_attempt(d.id, False, "late", now).status == "sent"


def test_a_permanent_failure_stays_visible_and_stores_no_secret(svc: AlertService) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    d = svc.due_deliveries(at(0))[0]
    err = DeliveryError("401 from https://bot:s3cr3t@hooks.example/x?token=abc123&room=a", retryable=False)
    r = svc.record_attempt(d.id, False, err, at(1))
    assert (r.status, r.next_attempt_at, r.attempts) == ("failed", None, 1)
    assert r.last_error == "401 from https://***@hooks.example/x?token=***&room=a"
    assert [x.id for x in svc.deliveries("failed")] == [d.id]
    assert d.id not in [x.id for x in svc.due_deliveries(at(10_000))]
    (h,) = [h for h in svc.history(HOT_KEY) if h.what == "delivery_failed"]
    assert "s3cr3t" not in (h.note or "")
    assert "abc123" not in (h.note or "")


def test_too_many_attempts_fail_for_good(svc: AlertService) -> None:
    svc.ingest([temp(0, 28.4)], at(0))
    d = svc.due_deliveries(at(0))[0]
    retry = RetryPolicy(first_s=1, cap_s=1, max_attempts=3)
    statuses = [svc.record_attempt(d.id, False, "timeout", at(i), retry).status for i in range(3)]
    assert statuses == ["pending", "pending", "failed"]


def test_scrub_caps_the_length() -> None:
    assert len(scrub("x" * 5000)) == 1000
    assert scrub("smtp://alice:pw@mail:587 password=hunter2") == "smtp://***@mail:587 password=***"
