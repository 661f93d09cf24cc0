# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The server-rendered pages through FastAPI's TestClient over a migrated SQLite records database and
the example site, with fixed live snapshots: readings with quality, zh-TW by default and English after
the switch, the login redirect, the door display without a login, the ack and silence forms (CSRF,
audit), a generator test recorded through its form, an access review decided and signed off (and the
separation-of-duties refusal), and what a viewer does not get to see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from alerts.inputs import Labels, Sample
from alerts.service import AlertService
from api.app import create_app
from api.live_model import DeviceLive, LiveSnapshot, MetricLive, StaticLive
from api.pages_alerts import history_rows
from api.pages_audit import PAGE_SIZE, changes
from api.routes_alerts import alert_service
from compliance.access.model import Grant, Holder
from compliance.access.service import flag_rules, start_review
from compliance.access.store import AccessStore
from compliance.kinds import DutyShift, GeneratorTest
from compliance.store import Records
from devices.reading import DeviceClass
from records.audit import AuditEntry, append, verify
from records.db import session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.compliance_config import AccessRules
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import example_site
from tests.api_support import ADMIN_CLI, FAST_HASHER, PASSWORD, T0, Clock, fresh_engine, migrated_template
from tests.api_support import store_with_users as users

NOW = T0 + timedelta(minutes=40)
LABELS = Labels("tpe-hq", "mr1", "th-a01", DeviceClass("env"), "row-a", "a01")


@dataclass
class Env:
    client: TestClient
    engine: Engine
    clock: Clock
    site: SiteConfig
    app: Any

    def alerts(self) -> AlertService:
        return alert_service(self.app.state.ctx)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SiteConfig:
    return load_site(example_site(tmp_path_factory.mktemp("site") / "site.yaml")[0])


def snapshot() -> LiveSnapshot:
    """th-a01 fresh and good, th-a06 last heard 10 minutes ago, th-b01 with a failed metric."""
    return LiveSnapshot(
        NOW,
        connected=True,
        devices=(
            DeviceLive(
                "th-a01", "A01 溫濕度", "env", "mr1", "row-a", "a01", "m", NOW - timedelta(seconds=4), "good",
                {"temp_c": MetricLive(23.46, "good", "°C"), "rh_pct": MetricLive(48.0, "good", "%")},
            ),
            DeviceLive(
                "th-a06", "A06 溫濕度", "env", "mr1", "row-a", "a06", "m",
                NOW - timedelta(minutes=10), "good", {"temp_c": MetricLive(22.0, "good", "°C")},
            ),
            DeviceLive(
                "th-b01", "B01 溫濕度", "env", "mr1", "row-b", "b01", "m", NOW - timedelta(seconds=3),
                "partial",
                {"temp_c": MetricLive(24.1, "good", "°C"), "rh_pct": MetricLive(None, "comm_error", "%")},
            ),
        ),
    )  # fmt: skip


@pytest.fixture
def env(template: Path, tmp_path: Path, site: SiteConfig) -> Iterator[Env]:
    engine = fresh_engine(template, tmp_path)
    users(engine).add_user("ivan", PASSWORD, ["approver"], ADMIN_CLI, T0, display_name="Ivan")
    clock = Clock(NOW)
    app = create_app(
        ApiConfig(),
        records_url=engine,
        state_dir=tmp_path,
        site=site,
        clock=clock,
        hasher=FAST_HASHER,
        live=StaticLive(snapshot()),  # no broker: the snapshot stands for the live view
    )
    with TestClient(app) as client:
        yield Env(client, engine, clock, site, app)
    engine.dispose()


def form_login(env: Env, user: str, next_path: str | None = None) -> Any:
    """Post the login form as a browser does: the form first (its login-CSRF token), then the post."""
    form = env.client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token is not None, form
    data = {"username": user, "password": PASSWORD, "login_csrf": token.group(1)}
    if next_path is not None:
        data["next"] = next_path
    return env.client.post("/login", data=data, follow_redirects=False)


def login(env: Env, user: str) -> str:
    """Log in through the form; the session's CSRF token."""
    r = form_login(env, user)
    assert r.status_code == 303, r.text
    csrf = env.client.get("/api/v1/me").json()["csrf_token"]
    assert isinstance(csrf, str)
    return csrf


def audit(env: Env, action: str) -> list[AuditEntry]:
    with session_factory(env.engine)() as s:
        assert verify(s).ok
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def fire_alert(env: Env) -> int:
    """th-a01 warming 0.3 °C a minute from T0: temp-high (warning) then temp-high-critical fire."""
    service = env.alerts()
    for i in range(40):
        at = T0 + timedelta(minutes=i)
        service.ingest([Sample(LABELS, "temp_c", at, 24.0 + i * 0.3)], at)
    [warning] = [a for a in service.list_open() if a.rule_id == "temp-high"]
    assert warning.id is not None
    return warning.id


def roster(env: Env) -> None:
    shifts = [
        DutyShift(
            operator="王小明",
            phone="0912-345-678",
            starts_at=T0 - timedelta(hours=1),
            ends_at=T0 + timedelta(hours=11),
        ),
        DutyShift(operator="林美華", starts_at=T0 + timedelta(hours=11), ends_at=T0 + timedelta(hours=23)),
    ]
    Records(session_factory(env.engine)).put_all(shifts, ADMIN_CLI, T0)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- the status page ---------------------------------------------------------------------------


def test_an_anonymous_browser_is_sent_to_the_login_form_and_back(env: Env) -> None:
    r = env.client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2F")
    r = env.client.get("/records/new/generator_test", follow_redirects=False)
    assert r.headers["location"] == "/login?next=%2Frecords%2Fnew%2Fgenerator_test"
    r = form_login(env, "vera", "/records/new/generator_test")
    assert r.headers["location"] == "/records/new/generator_test"


def test_readings_are_shown_with_quality_age_and_stale_marks_in_zh_tw(env: Env) -> None:
    roster(env)
    login(env, "vera")
    r = env.client.get("/")
    assert r.status_code == 200
    assert '<html lang="zh-Hant-TW">' in r.text
    assert '<meta http-equiv="refresh" content="30">' in r.text  # in <noscript>: no JavaScript needed
    row = text_of(r.text.split('id="device-th-a01"')[1].split("</tr>")[0])
    assert "23.5 °C" in row
    assert "48.0 %" in row
    assert "正常" in row
    assert "4 秒前" in row
    stale = text_of(r.text.split('id="device-th-a06"')[1].split("</tr>")[0])
    assert "10 分鐘前" in stale
    assert "資料過時" in stale
    partial = text_of(r.text.split('id="device-th-b01"')[1].split("</tr>")[0])
    assert "部分" in partial
    assert "通訊錯誤" in partial
    never = text_of(r.text.split('id="device-crac-1"')[1].split("</tr>")[0])
    assert "尚無資料" in never
    page = text_of(r.text)
    assert "機櫃 a01 th-a01" in page
    assert "目前值班: 王小明" in page
    assert "0912-345-678" in page
    assert "CC-16000" in page
    assert "未知" in page


def test_english_after_the_switch_and_the_choice_is_kept(env: Env) -> None:
    login(env, "vera")
    r = env.client.get("/?lang=en")
    assert '<html lang="en">' in r.text
    assert "rg_lang=en" in r.headers["set-cookie"]
    row = text_of(r.text.split('id="device-th-a06"')[1].split("</tr>")[0])
    assert "good" in row
    assert "STALE" in row
    assert "10 min ago" in row
    again = env.client.get("/")
    assert '<html lang="en">' in again.text
    assert "Room status" in again.text
    assert 'href="/?lang=zh"' in again.text
    back = env.client.get("/?lang=zh")
    assert '<html lang="zh-Hant-TW">' in back.text


def test_a_viewer_sees_alerts_but_no_ack_or_silence_forms(env: Env) -> None:
    fire_alert(env)
    csrf = login(env, "vera")
    page = env.client.get("/").text
    assert "th-a01 temp_c" in page
    assert "約 15 分鐘後達 32 °C" in page
    assert 'action="/alerts/' not in page
    r = env.client.post("/alerts/1/ack", data={"csrf_token": csrf})
    assert r.status_code == 403


# -- ack and silence ---------------------------------------------------------------------------


def test_ack_needs_the_csrf_token_then_the_alert_is_acked_and_audited(env: Env) -> None:
    alert = fire_alert(env)
    csrf = login(env, "otto")
    page = env.client.get("/").text
    assert f'action="/alerts/{alert}/ack"' in page
    assert f'action="/alerts/{alert}/silence"' in page
    refused = env.client.post(f"/alerts/{alert}/ack", data={"note": "on it"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert env.alerts().get(alert).acked_by is None  # type: ignore[union-attr]
    r = env.client.post(
        f"/alerts/{alert}/ack", data={"note": "on it", "csrf_token": csrf}, follow_redirects=False
    )
    assert (r.status_code, r.headers["location"]) == (303, "/?msg=flash.acked")
    view = env.alerts().get(alert)
    assert view is not None
    assert (view.acked_by, view.ack_note, view.acked_at) == ("otto", "on it", NOW)
    after = env.client.get(r.headers["location"]).text
    assert "已確認告警" in after
    assert f'action="/alerts/{alert}/ack"' not in after  # acked: no second ack button
    [entry] = audit(env, "alert.ack")
    assert (entry.actor, entry.source, entry.entity_id) == ("otto", "api:testclient", view.key)
    assert env.client.post("/alerts/999/ack", data={"csrf_token": csrf}).status_code == 404


def test_silence_for_hours_or_until_a_time_with_a_reason(env: Env) -> None:
    alert = fire_alert(env)
    csrf = login(env, "otto")
    no_reason = env.client.post(
        f"/alerts/{alert}/silence", data={"csrf_token": csrf, "duration": "4h", "reason": " "}
    )
    assert no_reason.status_code == 422
    assert "請填寫靜音原因" in no_reason.text
    assert 'href="/?lang=en"' in no_reason.text  # the language link leads to the page, not the post
    past = env.client.post(
        f"/alerts/{alert}/silence?lang=en",
        data={"csrf_token": csrf, "duration": "until", "until": "2026-12-01T08:00", "reason": "x"},
    )
    assert past.status_code == 422
    assert "later than now" in past.text
    r = env.client.post(
        f"/alerts/{alert}/silence",
        data={"csrf_token": csrf, "duration": "until", "until": "2026-12-02T15:30", "reason": "CRAC 維修"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, "/?msg=flash.silenced")
    [silence] = env.alerts().silences(NOW)
    assert silence.reason == "CRAC 維修"
    assert silence.created_by == "otto"
    assert silence.ends_at == T0.replace(hour=7, minute=30)  # 15:30 Taipei
    assert silence.matchers["rule"] == "temp-high"
    assert silence.matchers["device"] == "th-a01"
    assert env.alerts().get(alert).suppressed == f"silence:{silence.id}"  # type: ignore[union-attr]
    [entry] = audit(env, "alert.silence")
    assert (entry.actor, entry.note) == ("otto", "CRAC 維修")


# -- records -----------------------------------------------------------------------------------


def test_a_generator_test_recorded_through_the_form_is_stored_and_audited(env: Env) -> None:
    csrf = login(env, "otto")
    form = env.client.get("/records/new/generator_test")
    assert form.status_code == 200
    assert 'for="f-on_load_minutes"' in form.text
    assert "帶載分鐘數" in form.text
    assert '<option value="test_mode"' in form.text
    fields = {
        "csrf_token": csrf, "device": "gen-1",
        "started_at": "2026-12-01T10:00", "ended_at": "2026-12-01T10:45",
        "on_load_minutes": "40", "min_load_pct": "35", "trigger": "test_mode", "counts": "true",
        "technician": "大同 張技師", "source": "manual",
    }  # fmt: skip
    bad = env.client.post("/records/new/generator_test", data={**fields, "on_load_minutes": ""})
    assert bad.status_code == 422
    assert "on_load_minutes" in bad.text
    assert 'value="大同 張技師"' in bad.text  # what was typed stays
    r = env.client.post("/records/new/generator_test", data=fields, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/records/new/generator_test?msg=flash.recorded")
    [stored] = Records(session_factory(env.engine)).of_kind(GeneratorTest)
    assert (stored.device, stored.on_load_minutes, stored.counts, stored.technician) == (
        "gen-1", 40.0, True, "大同 張技師",
    )  # fmt: skip
    assert stored.started_at == T0.replace(day=1, hour=2)  # 10:00 Taipei
    [entry] = audit(env, "create")
    assert (entry.actor, entry.source, entry.entity) == (
        "otto",
        "api:testclient",
        "compliance.generator_test",
    )
    again = env.client.post("/records/new/generator_test", data=fields)
    assert again.status_code == 409
    assert "already exists" in again.text
    assert len(audit(env, "create")) == 1
    recent = text_of(env.client.get("/").text.split('id="h-tests"')[1])
    assert "2026-12-01 10:00 發電機測試 gen-1 通過 40.0 min, test_mode" in recent
    for kind in ("ups_test", "vendor_visit"):
        assert env.client.get(f"/records/new/{kind}").status_code == 200
    assert env.client.get("/records/new/asset").status_code == 404


# -- access reviews ----------------------------------------------------------------------------


def start(env: Env) -> str:
    store = AccessStore(session_factory(env.engine))
    since = T0 - timedelta(days=200)
    store.put_holders([Holder("E001", "王小明"), Holder("E002", "林美華")], ADMIN_CLI, T0)
    store.put_grants(
        [
            Grant("G1", "E001", "C1", ("mr1",), since, approver="april", implementer="ivan"),
            Grant("G2", "E002", "C2", ("mr1",), since, approver="april", implementer="ivan"),
        ],
        ADMIN_CLI,
        T0,
    )
    tz = env.site.site.timezone
    from zoneinfo import ZoneInfo

    review = start_review(
        store, "tpe-hq", "2026Q4", "april", ADMIN_CLI, T0, ZoneInfo(tz), flag_rules(AccessRules())
    )
    return review.review_id


def test_decide_and_sign_off_as_the_approver_but_never_as_the_implementer(env: Env) -> None:
    review_id = start(env)
    csrf = login(env, "ivan")
    listing = env.client.get("/access/reviews").text
    assert f'href="/access/reviews/{review_id}"' in listing
    page = env.client.get(f"/access/reviews/{review_id}").text
    assert page.count('action="/access/reviews/') == 3  # a decide form per line, one sign-off form
    for grant in ("G1", "G2"):
        r = env.client.post(
            f"/access/reviews/{review_id}/decide",
            data={"csrf_token": csrf, "grant_id": grant, "decision": "keep"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    no_reason = env.client.post(
        f"/access/reviews/{review_id}/decide",
        data={"csrf_token": csrf, "grant_id": "G1", "decision": "revoke"},
    )
    assert no_reason.status_code == 409
    assert "needs a reason" in no_reason.text
    refused = env.client.post(f"/access/reviews/{review_id}/sign-off", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "職責分離" in refused.text
    assert "separation of duties" in refused.text
    assert f'href="/access/reviews/{review_id}?lang=en"' in refused.text
    english = env.client.post(f"/access/reviews/{review_id}/sign-off?lang=en", data={"csrf_token": csrf})
    assert "Separation of duties: whoever implemented grants" in english.text
    assert audit(env, "sign_off") == []
    assert any("sign_off" in (e.note or "") for e in audit(env, "refused"))

    env.client.post("/logout", data={"csrf_token": csrf})
    csrf = login(env, "april")
    r = env.client.post(
        f"/access/reviews/{review_id}/sign-off",
        data={"csrf_token": csrf, "note": "Q4 OK"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, f"/access/reviews/{review_id}?msg=flash.signed")
    signed = env.client.get(r.headers["location"] + "&lang=zh").text  # the English refusal set the cookie
    assert "覆核已簽核" in signed
    assert "april" in signed
    assert 'action="/access/reviews/' not in signed
    [entry] = audit(env, "sign_off")
    assert (entry.actor, entry.source) == ("april", "api:testclient")


def test_an_operator_cannot_open_the_reviews(env: Env) -> None:
    login(env, "otto")
    r = env.client.get("/access/reviews")
    assert r.status_code == 403
    assert "access.read" in r.text
    assert '<html lang="zh-Hant-TW">' in r.text  # the error is a page too


# -- the door display --------------------------------------------------------------------------


def test_the_door_display_needs_no_login_and_shows_the_duty_operator_and_state(env: Env) -> None:
    roster(env)
    assert "機房狀態 正常" in text_of(env.client.get("/door/mr1").text)
    fire_alert(env)
    r = env.client.get("/door/mr1")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "主機房 Machine Room 1" in page
    assert "目前值班 王小明 · 電話 0912-345-678" in page
    assert "下一班 林美華" in page
    assert "告警中: 嚴重 1, 警告 1" in page
    assert "最高溫度 24.1 °C" in page  # th-a06 and th-b01 count; th-a01 23.5 is lower
    assert "th-a01 temp_c" not in page  # no alert details at the door
    assert '<meta http-equiv="refresh" content="30">' in r.text
    assert "登出" not in page
    assert "/api/v1/docs" not in r.text
    generator = text_of(env.client.get("/door/gen1").text)
    assert "狀態不明：無即時資料" in generator  # nothing heard from gen-1: not "OK"
    assert "王小明" in generator
    both = env.client.get("/door?lang=en").text
    assert "Machine Room 1" in both
    assert "Generator Room" in both
    missing = env.client.get("/door/nope")
    assert missing.status_code == 404
    assert "nope" in missing.text


def test_a_refreshed_page_is_served_again_until_what_it_shows_changes(env: Env) -> None:
    """The page's bytes are kept per caller while the snapshot, records, alerts and second are the same
    (api/page_cache.py); an alert fired by another process, a record written from the command line and a
    new snapshot each show on the very next refresh."""
    login(env, "otto")
    first = env.client.get("/").text
    assert env.client.get("/").text == first  # nothing changed: the same page
    assert "th-a01 temp_c" not in first
    alert = fire_alert(env)  # the alerts process: no audit entry, an alert history entry
    assert f'id="alert-{alert}"' in env.client.get("/").text
    roster(env)  # a record written elsewhere: audited
    assert "王小明" in env.client.get("/").text
    moved = snapshot()
    devices = tuple(
        d if d.device != "th-a01" else replace(d, metrics={"temp_c": MetricLive(31.7, "good", "°C")})
        for d in moved.devices
    )
    env.app.state.live = StaticLive(replace(moved, devices=devices))
    assert "31.7" in env.client.get("/").text
    # Another user never gets this user's page (it carries their name and CSRF token).
    env.client.cookies.clear()
    login(env, "vera")
    page = env.client.get("/").text
    assert "Vera" in page
    assert "Otto" not in page
    assert 'action="/alerts/' not in page


def test_an_alert_id_beyond_sqlites_integer_is_refused_not_a_500(env: Env) -> None:
    csrf = login(env, "otto")
    r = env.client.post(f"/alerts/{2**63}/ack", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 422, r.text


# -- the audit log -----------------------------------------------------------------------------


def test_the_auditor_pages_back_through_the_audit_log_newest_first_and_filters_it(env: Env) -> None:
    with session_factory(env.engine).begin() as s:
        for n in range(PAGE_SIZE + 5):
            append(s, ADMIN_CLI, "record.create", "generator_test", f"gen-{n}", after={"n": n}, at=T0)
    login(env, "audrey")
    first = env.client.get("/audit")
    assert first.status_code == 200
    seqs = [int(x) for x in re.findall(r'<th scope="row">(\d+)</th>', first.text)]
    assert len(seqs) == PAGE_SIZE
    assert seqs == sorted(seqs, reverse=True)  # newest first: the auditor's own login on top
    older = re.search(r'href="/audit\?before=(\d+)"', first.text)
    assert older is not None
    assert int(older.group(1)) == seqs[-1]
    second = env.client.get("/audit", params={"before": older.group(1)})
    rest = [int(x) for x in re.findall(r'<th scope="row">(\d+)</th>', second.text)]
    assert rest == list(range(seqs[-1] - 1, 0, -1))  # every older entry, down to the first
    assert "before=" not in second.text.split("</table>")[1]  # no older page after the last
    logins = env.client.get("/audit", params={"action": "login", "actor": "audrey"})
    assert text_of(logins.text).count(" login ") == 1
    assert "gen-3" not in logins.text
    assert "n: 7" in env.client.get("/audit", params={"action": "record."}).text


def test_the_audit_page_verifies_the_chain_and_names_a_tampered_entry(env: Env) -> None:
    login(env, "audrey")
    ok = env.client.get("/audit", params={"check": "true"})
    assert "雜湊鏈完整" in ok.text
    with env.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    broken = env.client.get("/audit", params={"check": "true", "lang": "en"})
    assert "The hash chain is broken" in broken.text
    problem = text_of(broken.text.split('role="alert"')[1].split("</div>")[0])
    assert "entry 2 " in problem
    assert "was edited" in problem


def test_only_the_auditor_and_admin_see_the_audit_log_and_its_menu_link(env: Env) -> None:
    login(env, "otto")
    assert 'href="/audit"' not in env.client.get("/").text
    r = env.client.get("/audit")
    assert r.status_code == 403
    assert "audit.read" in r.text
    login(env, "audrey")
    assert 'href="/audit"' in env.client.get("/").text


def test_an_entrys_change_is_shown_field_by_field() -> None:
    assert changes(
        {"roles": ["viewer"], "disabled": False}, {"roles": ["viewer", "auditor"], "disabled": False}
    ) == ('roles: ["viewer"] → ["viewer", "auditor"]',)
    assert changes(None, {"expires_at": "2026-12-02", "ticket": "", "valid_to": None}) == (
        "expires_at: 2026-12-02",
    )
    assert changes({"note": "x"}, None) == ("note: x → ∅",)
    assert changes(None, None) == ()
    assert changes("a", "b") == ("a → b",)
    assert changes(None, {"text": "長" * 200})[0].endswith("…")


# -- alert history -----------------------------------------------------------------------------


def test_alert_history_shows_what_happened_newest_first_and_of_one_alert(env: Env) -> None:
    alert = fire_alert(env)
    csrf = login(env, "otto")
    assert f'href="/alerts/history?alert={alert}"' in env.client.get("/").text  # from the alert's row
    r = env.client.post(f"/alerts/{alert}/ack", data={"csrf_token": csrf, "note": "查看中"})
    assert r.status_code == 200  # followed back to the status page
    html = env.client.get("/alerts/history").text
    events = re.findall(r"</th>\s*<td>([^<]+)</td>", html.split("<tbody>")[1])
    assert events[0] == "確認"  # the ack, newest, on top
    assert "觸發" in events[1:]
    page = text_of(html)
    assert "otto" in page
    assert "查看中" in page
    assert "temp-high-critical" in page  # every alert's events
    one = text_of(env.client.get("/alerts/history", params={"alert": alert, "lang": "en"}).text)
    assert f"#{alert} temp-high" in one
    assert "acknowledged" in one
    assert "fired" in one
    assert "temp-high-critical" not in one
    assert env.client.get("/alerts/history", params={"alert": 999999}).status_code == 404


def test_alert_history_pages_back_to_the_first_event(env: Env) -> None:
    fire_alert(env)
    service = env.alerts()
    everything, none_older = history_rows(service, None, None, "zh", limit=1000)
    assert none_older is None
    assert len(everything) >= 3
    first, older = history_rows(service, None, None, "zh", limit=2)
    rest, _ = history_rows(service, None, older, "zh", limit=1000)
    assert older == first[-1].id
    assert [r.id for r in first + rest] == [r.id for r in everything]
    assert [r.id for r in everything] == sorted((r.id for r in everything), reverse=True)
