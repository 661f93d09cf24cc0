# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Alerts through the web API over a real SQLite records database: alerts fired by the real
AlertService from readings, listed with their forecast texts, acknowledged by the right role only (and
audited with before/after from the peer's address), silenced ("this alert" or matchers) and unsilenced,
history paged back, and clear 404/422 answers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from alerts.inputs import Labels, Sample
from alerts.lifecycle import Policy, Route
from alerts.service import AlertService
from api.app import create_app
from api.context import AppContext
from api.routes_alerts import open_alert_views
from api.store import ApiStore
from devices.reading import DeviceClass
from records.audit import AuditEntry, verify
from records.db import session_factory
from siteconfig.alert_rules import RuleSet
from siteconfig.api_config import ApiConfig
from tests.api_support import (
    ADMIN_CLI,
    FAST_HASHER,
    PASSWORD,
    T0,
    Clock,
    fresh_engine,
    migrated_template,
    store_with_users,
)

ENV1 = Labels("tpe1", "room-a", "env-1", DeviceClass.ENV)
ENV2 = Labels("tpe1", "room-a", "env-2", DeviceClass.ENV)
RULES = RuleSet.model_validate(
    {
        "rules": [
            {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 26,
             "severity": "critical"},
        ]
    }
)  # fmt: skip
POLICY = Policy(routes=(Route(("mail",)),), group_wait_s=0, renotify_every_s=600, max_renotify=1)
HOT1 = "hot:tpe1:room-a:env-1:temp_c"
HOT2 = "hot:tpe1:room-a:env-2:temp_c"
ALERTS = "/api/v1/alerts"
SILENCES = "/api/v1/silences"
HISTORY = "/api/v1/alerts/history"
ROOM_A = {"room": "room-a"}


@dataclass
class Env:
    client: TestClient
    store: ApiStore
    engine: Engine
    clock: Clock
    fired: AlertService
    ctx: AppContext


def at(s: float) -> Any:
    return T0 + timedelta(seconds=s)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    engine = fresh_engine(template, tmp_path)
    store = store_with_users(engine)
    # The alerts process's service (the site's rules) fires from readings; the app reads the same tables.
    fired = AlertService(session_factory(engine), RULES, POLICY)
    fired.ingest([Sample(ENV1, "temp_c", at(-110), 26.0)], at(-110))
    fired.ingest([Sample(ENV1, "temp_c", at(-50), 26.9), Sample(ENV1, "temp_c", at(-10), 28.4)], at(-10))
    fired.ingest([Sample(ENV2, "temp_c", at(-5), 29.0)], at(-5))
    clock = Clock(T0)
    app = create_app(ApiConfig(), records_url=engine, state_dir=tmp_path, clock=clock, hasher=FAST_HASHER)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client, store, engine, clock, fired, app.state.ctx)
    engine.dispose()


def _login(env: Env, user: str) -> str:
    r = env.client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def _token(env: Env, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.store.create_token(f'{user}-script', user, ADMIN_CLI, T0)}"}


def _audit(env: Env, prefix: str = "alert.") -> list[AuditEntry]:
    with session_factory(env.engine)() as s:
        report = verify(s)
        assert report.ok, report.problems
        q = select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq)
        return list(s.scalars(q))


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert "Traceback" not in response.text
    return str(body["message"])


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


# -- reading -------------------------------------------------------------------------------------


def test_open_alerts_come_with_labels_severity_and_the_forecast_in_both_languages(env: Env) -> None:
    _login(env, "vera")
    alerts = _ok(env.client.get(ALERTS))["alerts"]
    assert [a["key"] for a in alerts] == [HOT1, HOT2]  # oldest first
    a = alerts[0]
    assert (a["rule"], a["severity"], a["state"], a["value"], a["limit"]) == (
        "hot",
        "critical",
        "firing",
        28.4,
        27,
    )
    assert a["labels"] == {
        "site": "tpe1",
        "room": "room-a",
        "device": "env-1",
        "class": "env",
        "metric": "temp_c",
    }
    assert a["since"] == "2026-12-02T00:59:50Z"
    # Worded as the notifications word it (alerts.forecast): a rising trend, already past the limit.
    assert a["forecast"] == {
        "zh_TW": "溫度每分鐘上升 1.44 °C，已高於 27 °C",
        "en": "+1.44 °C/min, already past 27 °C",
    }
    assert a["message"]["en"].startswith("env-1 temp_c 28.4")
    assert "env-1" in a["message"]["zh_TW"]
    assert (a["acked"], a["acked_by"], a["suppressed"], a["silenced"]) == (False, None, None, False)
    assert alerts[1]["forecast"] is None  # one reading: no trend yet
    # The status page's call gives the same list.
    assert [v.model_dump(mode="json") for v in open_alert_views(env.ctx)] == alerts
    by_id = _ok(env.client.get(f"{ALERTS}/{a['id']}"))
    assert by_id == _ok(env.client.get(f"{ALERTS}/{HOT1}")) == a
    message = _error(env.client.get(f"{ALERTS}/hot:tpe1:room-z:env-9:temp_c"), 404, "alert_not_found")
    assert "hot:tpe1:room-z:env-9:temp_c" in message
    assert "找不到告警" in message
    _error(env.client.get(f"{ALERTS}/99999"), 404, "alert_not_found")


# -- acknowledging -------------------------------------------------------------------------------


def test_an_operator_acknowledges_and_it_is_audited_with_before_and_after(env: Env) -> None:
    env.clock.now = at(30)
    _error(env.client.post(f"{ALERTS}/{HOT1}/ack", json={}), 401, "unauthenticated")
    csrf = _login(env, "vera")
    _error(env.client.post(f"{ALERTS}/{HOT1}/ack", headers={"X-CSRF-Token": csrf}), 403, "forbidden")
    csrf = _login(env, "otto")
    _error(env.client.post(f"{ALERTS}/{HOT1}/ack", json={"note": "x"}), 403, "csrf_failed")
    assert _audit(env) == []
    a = _ok(env.client.post(f"{ALERTS}/{HOT1}/ack", json={"note": "技師前往 on the way"},
                            headers={"X-CSRF-Token": csrf}))  # fmt: skip
    assert (a["acked"], a["acked_by"], a["acked_at"], a["ack_note"]) == (
        True, "otto", "2026-12-02T01:00:30Z", "技師前往 on the way",
    )  # fmt: skip
    listed = {x["key"]: x for x in _ok(env.client.get(ALERTS))["alerts"]}
    assert (listed[HOT1]["acked_by"], listed[HOT2]["acked_by"]) == ("otto", None)
    [entry] = _audit(env)
    assert (entry.action, entry.entity, entry.entity_id) == ("alert.ack", "alert", HOT1)
    assert (entry.actor, entry.source, entry.note) == ("otto", "api:testclient", "技師前往 on the way")
    assert entry.before == {"acked_by": None, "acked_at": None, "ack_note": None}
    assert entry.after == {
        "acked_by": "otto",
        "acked_at": at(30).isoformat(),
        "ack_note": "技師前往 on the way",
    }
    # A script's token needs no CSRF token; no body at all is a plain acknowledgement.
    env.client.cookies.clear()
    b = _ok(env.client.post(f"{ALERTS}/{HOT2}/ack", headers=_token(env, "otto")))
    assert (b["acked_by"], b["ack_note"]) == ("otto", None)
    assert [e.entity_id for e in _audit(env)] == [HOT1, HOT2]
    page = _ok(env.client.get(HISTORY, params={"alert": HOT1}, headers=_token(env, "vera")))
    history = [(h["what"], h["who"]) for h in page["entries"]]
    assert history[0] == ("acked", "otto")


def test_acknowledging_an_unknown_alert_is_a_404_that_writes_nothing(env: Env) -> None:
    auth = _token(env, "otto")
    message = _error(
        env.client.post(f"{ALERTS}/hot:nowhere/ack", json={}, headers=auth), 404, "alert_not_found"
    )
    assert "hot:nowhere" in message
    _error(env.client.post(f"{ALERTS}/424242/ack", headers=auth), 404, "alert_not_found")
    assert _audit(env) == []
    _error(env.client.post(f"{ALERTS}/{HOT1}/ack", json={"note": 5}, headers=auth), 422, "invalid_request")
    _error(env.client.post(f"{ALERTS}/{HOT1}/ack", json={"by": "x"}, headers=auth), 422, "invalid_request")
    assert _audit(env) == []


# -- silences ------------------------------------------------------------------------------------


def test_silence_this_alert_then_end_it_both_audited(env: Env) -> None:
    auth = _token(env, "otto")
    hot1 = _ok(env.client.get(f"{ALERTS}/{HOT1}", headers=auth))
    body = {"alert": str(hot1["id"]), "duration": "2h", "reason": "更換感測器 replacing the sensor"}
    s = _ok(env.client.post(SILENCES, headers=auth, json=body), 201)
    assert s["matchers"] == {
        "rule": "hot", "site": "tpe1", "room": "room-a", "device": "env-1", "class": "env",
        "metric": "temp_c",
    }  # fmt: skip
    assert (s["kind"], s["created_by"], s["active"], s["starts_at"], s["ends_at"]) == (
        "silence", "otto", True, "2026-12-02T01:00:00Z", "2026-12-02T03:00:00Z",
    )  # fmt: skip
    listed = {x["key"]: x for x in _ok(env.client.get(ALERTS, headers=auth))["alerts"]}
    assert (listed[HOT1]["silenced"], listed[HOT1]["suppressed"]) == (True, f"silence:{s['id']}")
    assert listed[HOT2]["silenced"] is False  # only "this alert"
    assert [x["id"] for x in _ok(env.client.get(SILENCES, headers=auth))["silences"]] == [s["id"]]
    [made] = _audit(env)
    assert (made.action, made.entity, made.entity_id, made.actor, made.source) == (
        "alert.silence", "silence", str(s["id"]), "otto", "api:testclient",
    )  # fmt: skip
    assert made.before is None
    assert (made.after["matchers"], made.after["kind"]) == (s["matchers"], "silence")
    assert made.note == "更換感測器 replacing the sensor"

    env.clock.now = at(600)
    ended = _ok(env.client.delete(f"{SILENCES}/{s['id']}", headers=auth))
    assert (ended["removed_by"], ended["removed_at"], ended["active"]) == (
        "otto",
        "2026-12-02T01:10:00Z",
        False,
    )
    assert _ok(env.client.get(SILENCES, headers=auth))["silences"] == []
    assert [
        x["id"] for x in _ok(env.client.get(SILENCES, params={"all": "true"}, headers=auth))["silences"]
    ] == [s["id"]]
    assert _ok(env.client.get(f"{ALERTS}/{HOT1}", headers=auth))["silenced"] is False
    [_, removed] = _audit(env)
    assert (removed.action, removed.entity_id) == ("alert.unsilence", str(s["id"]))
    assert removed.before == {"removed_by": None, "removed_at": None}
    assert removed.after == {"removed_by": "otto", "removed_at": at(600).isoformat()}
    _error(env.client.delete(f"{SILENCES}/{s['id'] + 100}", headers=auth), 404, "silence_not_found")
    _error(env.client.delete(f"{SILENCES}/{s['id']}", headers=_token(env, "vera")), 403, "forbidden")


def test_a_maintenance_window_of_matchers_until_a_time(env: Env) -> None:
    csrf = _login(env, "otto")
    body = {"matchers": {"room": ["room-a", "room-b"]}, "until": "2026-12-02T11:00:00+08:00",
            "reason": "UPS 維護 UPS maintenance", "kind": "maintenance"}  # fmt: skip
    s = _ok(env.client.post(SILENCES, json=body, headers={"X-CSRF-Token": csrf}), 201)
    assert (s["kind"], s["ends_at"], s["matchers"]) == (
        "maintenance",
        "2026-12-02T03:00:00Z",
        body["matchers"],
    )
    assert {x["suppressed"] for x in _ok(env.client.get(ALERTS))["alerts"]} == {f"maintenance:{s['id']}"}
    _error(env.client.post(SILENCES, json=body), 403, "csrf_failed")


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"matchers": {"rooom": "room-a"}, "duration": "1h"}, "invalid_silence",
         ["matchers", "'rooom'", "valid: rule, site, room, device, metric, class, zone, rack"]),
        ({"matchers": {"room": ""}, "duration": "1h"}, "invalid_silence", ["matchers", "'room' is empty"]),
        ({"matchers": {}, "duration": "1h"}, "invalid_silence", ["matchers", "at least one matcher"]),
        ({"matchers": ROOM_A, "duration": "5x"}, "invalid_silence",
         ["duration", "'5x'", "30m, 2h, 1d"]),
        ({"matchers": ROOM_A, "duration": "0m"}, "invalid_silence", ["duration", "'0m'"]),
        ({"matchers": ROOM_A, "duration": "99999999999d"}, "invalid_silence",
         ["duration", "too long"]),
        ({"matchers": ROOM_A}, "invalid_silence", ["duration", "or until"]),
        ({"matchers": ROOM_A, "duration": "1h", "until": "2026-12-03T00:00:00Z"},
         "invalid_silence", ["duration", "one of the two"]),
        ({"matchers": ROOM_A, "until": "2026-12-01T00:00:00Z"}, "invalid_silence",
         ["until", "after the start"]),
        ({"duration": "1h"}, "invalid_silence", ["matchers", "alert"]),
        ({"alert": HOT1, "matchers": {"room": "room-a"}, "duration": "1h"}, "invalid_silence",
         ["one of the two"]),
        ({"alert": "hot:nowhere", "duration": "1h"}, "invalid_silence", ["alert", "'hot:nowhere'"]),
        ({"matchers": ROOM_A, "duration": "1h", "reason": "  "}, "invalid_silence", ["reason"]),
        ({"matchers": ROOM_A, "duration": "1h", "kind": "holiday"}, "invalid_request",
         ["kind", "'silence'", "'maintenance'"]),
        ({"matchers": ROOM_A, "until": "2026-12-03T00:00:00"}, "invalid_request",
         ["until", "timezone"]),
    ],
)  # fmt: skip
def test_a_bad_silence_is_a_422_naming_the_field(
    env: Env, body: dict[str, Any], code: str, words: list[str]
) -> None:
    message = _error(
        env.client.post(SILENCES, json={"reason": "r", **body}, headers=_token(env, "otto")), 422, code
    )
    for word in words:
        assert word in message, message
    assert _audit(env) == []


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_without_a_utc_value_is_a_422_not_a_500(env: Env, edge: str) -> None:
    """Found by schemathesis: a time at the calendar's edge with an offset has no UTC value; it was an
    OverflowError (500) when the database bound it."""
    otto = _token(env, "otto")
    for field in ("starts", "until"):
        body = {
            "matchers": ROOM_A,
            "reason": "r",
            field: edge,
            **({"duration": "1h"} if field == "starts" else {}),
        }
        message = _error(env.client.post(SILENCES, json=body, headers=otto), 422, "invalid_request")
        assert field in message
        assert "out of range" in message
    message = _error(env.client.get(HISTORY, params={"since": edge}, headers=otto), 422, "invalid_request")
    assert "since" in message
    assert _audit(env) == []


def test_a_reason_is_required(env: Env) -> None:
    message = _error(env.client.post(SILENCES, json={"matchers": {"room": "a"}, "duration": "1h"},
                                     headers=_token(env, "otto")), 422, "invalid_request")  # fmt: skip
    assert "reason" in message


def test_a_device_tag_is_a_matcher_name_once_an_alert_carried_it(env: Env) -> None:
    tagged = Labels("tpe1", "room-b", "env-7", DeviceClass.ENV, tags=(("owner", "facilities"),))
    env.fired.ingest([Sample(tagged, "temp_c", at(-1), 30.0)], at(-1))
    body = {"matchers": {"owner": "facilities"}, "duration": "30m", "reason": "r"}
    s = _ok(env.client.post(SILENCES, json=body, headers=_token(env, "otto")), 201)
    assert s["ends_at"] == "2026-12-02T01:30:00Z"


# -- history -------------------------------------------------------------------------------------


def test_history_pages_back_newest_first_and_filters(env: Env) -> None:
    auth = _token(env, "otto")
    env.clock.now = at(60)
    _ok(env.client.post(f"{ALERTS}/{HOT1}/ack", headers=auth))
    env.fired.ingest([Sample(ENV1, "temp_c", at(90), 25.0)], at(90))  # HOT1 resolves
    everything = _ok(env.client.get(HISTORY, params={"limit": 1000}, headers=auth))
    assert everything["next_before"] is None
    full = [(h["what"], h["key"]) for h in everything["entries"]]
    assert full[-1] == ("fired", HOT1)  # newest first: the first event is last
    assert ("acked", HOT1) in full
    assert ("resolved", HOT1) in full
    ids = [h["id"] for h in everything["entries"]]
    assert ids == sorted(ids, reverse=True)
    paged: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = _ok(env.client.get(HISTORY, params=params, headers=auth))
        assert len(page["entries"]) <= 2
        paged += [h["id"] for h in page["entries"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert paged == ids
    only2 = _ok(env.client.get(HISTORY, params={"alert": HOT2}, headers=auth))["entries"]
    assert {h["key"] for h in only2} == {HOT2}
    recent = _ok(env.client.get(HISTORY, params={"since": "2026-12-02T01:00:30Z"}, headers=auth))["entries"]
    assert [h["what"] for h in recent if h["key"] == HOT1][-1] == "acked"
    assert all(h["at"] >= "2026-12-02T01:00:30" for h in recent)
    assert "'hot:x'" in _error(
        env.client.get(HISTORY, params={"alert": "hot:x"}, headers=auth), 404, "alert_not_found"
    )
    _error(env.client.get(HISTORY, params={"limit": 0}, headers=auth), 422, "invalid_request")
    _error(env.client.get(HISTORY), 401, "unauthenticated")


def test_reading_alerts_does_not_wait_for_the_alerts_process_writing(env: Env) -> None:
    auth = _token(env, "vera")
    assert env.client.get("/api/v1/alerts", headers=auth).status_code == 200  # the token's use written now
    with env.engine.connect() as writer:  # the alerts process in the middle of a write (BEGIN IMMEDIATE)
        writer.begin()
        writer.exec_driver_sql("UPDATE alert_history SET note = note")
        # With the default BEGIN IMMEDIATE each read would wait out the busy timeout (10 s) and fail.
        for path in ("/api/v1/alerts", "/api/v1/alerts/history", "/api/v1/silences"):
            r = env.client.get(path, headers=auth)
            assert r.status_code == 200, (path, r.text)
        assert len(env.client.get("/api/v1/alerts", headers=auth).json()["alerts"]) == 2
        writer.rollback()
