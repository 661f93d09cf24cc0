"""Access rights and the quarterly review through the web API (FastAPI TestClient over a migrated SQLite
records database, the example site's configuration): who may read, decide and sign off; separation of
duties; a signed review is read-only; the exports open; every write audited as the web user."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from api.routes_access import reviewer_name
from api.store import ApiStore
from compliance.access.store import AccessStore
from records.audit import AuditEntry, verify
from records.db import session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.config import load_site
from testkit.example_site import example_site
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
from tests.test_access_review import ADMIN, at, seed

BASE = "/api/v1/access"
REVIEW = "ACR-2026Q4-tpe-hq"


@dataclass
class Env:
    client: TestClient
    store: ApiStore
    engine: Engine
    clock: Clock
    tokens: dict[str, dict[str, str]]

    def get(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.get(BASE + path, headers=self.tokens[user], **kw)

    def post(self, user: str, path: str, body: Any = None) -> Any:
        return self.client.post(BASE + path, headers=self.tokens[user], json=body)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def site_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = example_site(tmp_path_factory.mktemp("site") / "site.yaml")
    return path


@pytest.fixture
def env(template: Path, site_path: Path, tmp_path: Path) -> Iterator[Env]:
    engine = fresh_engine(template, tmp_path)
    store = store_with_users(engine)
    # An approver who is also the access administrator: the grants name her display name as implementer.
    store.add_user("keeper", PASSWORD, ["approver"], ADMIN_CLI, T0, display_name=ADMIN)
    seed(AccessStore(session_factory(engine)))
    site = load_site(site_path)
    assert site.site.id == "tpe-hq"
    assert site.site.timezone == "Asia/Taipei"
    clock = Clock(at(12, 31, 9))
    app = create_app(
        ApiConfig(), records_url=engine, state_dir=tmp_path, site=site, clock=clock, hasher=FAST_HASHER
    )
    tokens = {
        user: {"Authorization": f"Bearer {store.create_token(f'{user}-t', user, ADMIN_CLI, T0)}"}
        for user in ("alice", "vera", "otto", "april", "audrey", "keeper")
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client, store, engine, clock, tokens)
    engine.dispose()


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return str(body["message"])


def _entries(env: Env, entity: str) -> list[AuditEntry]:
    with session_factory(env.engine)() as s:
        assert verify(s).ok
        return list(s.scalars(select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.seq)))


def _start_and_decide(env: Env, user: str = "april") -> None:
    r = env.post(user, "/reviews", {"quarter": "2026Q4"})
    assert r.status_code == 201, r.text
    for grant, decision, reason in (
        ("G-E001", "keep", ""),
        ("G-E002", "revoke", "已離職 left on 11-30"),
        ("G-V001", "change", "限平日 weekdays only"),
    ):
        r = env.post(
            user, f"/reviews/{REVIEW}/lines/{grant}/decision", {"decision": decision, "reason": reason}
        )
        assert r.status_code == 200, r.text


def test_the_approver_starts_decides_and_signs_off_and_every_write_is_audited(env: Env) -> None:
    r = env.post("april", "/reviews", {})  # the clock's quarter in Asia/Taipei
    assert r.status_code == 201, r.text
    started = r.json()
    assert (started["review_id"], started["quarter"], started["status"]) == (REVIEW, "2026Q4", "open")
    assert (started["lines"], started["undecided"], started["flagged"]) == (3, 3, 2)
    assert started["prepared_by"] == "april"
    _error(env.post("april", "/reviews", {"quarter": "2026Q4"}), 409, "refused")  # one open review a quarter
    _error(env.post("april", "/reviews", {"quarter": "2026Q5"}), 422, "invalid_request")

    path = f"/reviews/{REVIEW}/lines/G-E002/decision"
    msg = _error(env.post("april", path, {"decision": "revoke"}), 422, "invalid_decision")
    assert "needs a reason" in msg
    msg = _error(env.post("april", path, {"decision": "delete", "reason": "x"}), 422, "invalid_request")
    assert "'keep'" in msg
    assert "'to_confirm'" in msg
    _error(
        env.post("april", f"/reviews/{REVIEW}/lines/G-NOPE/decision", {"decision": "keep"}), 404, "not_found"
    )
    r = env.post("april", path, {"decision": "revoke", "reason": "已離職 left on 11-30"})
    assert r.status_code == 200, r.text
    assert r.json()["decided_by"] == "april"
    assert r.json()["undecided"] == 2
    env.post("april", f"/reviews/{REVIEW}/lines/G-E001/decision", {"decision": "keep"})
    msg = _error(env.post("april", f"/reviews/{REVIEW}/sign-off", {"note": "Q4"}), 409, "refused")
    assert "1 grant(s) have no decision" in msg
    env.post(
        "april", f"/reviews/{REVIEW}/lines/G-V001/decision", {"decision": "change", "reason": "平日 only"}
    )

    shown = env.get("april", f"/reviews/{REVIEW}").json()
    assert shown["undecided"] == 0
    assert {ln["grant"]["grant_id"]: ln["decision"] for ln in shown["shown"]} == {
        "G-E001": "keep",
        "G-E002": "revoke",
        "G-V001": "change",
    }
    leaver = next(ln for ln in shown["shown"] if ln["grant"]["grant_id"] == "G-E002")
    assert {f["code"] for f in leaver["flags"]} == {"DORMANT_90D", "LEAVER_ACTIVE"}
    assert leaver["grant"]["credential"] == "****"  # 'C2' is too short to show any of it

    r = env.post("april", f"/reviews/{REVIEW}/sign-off", {"note": "Q4 reviewed"})
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["status"] == "signed"
    assert [(s["by"], s["note"]) for s in signed["sign_offs"]] == [("april", "Q4 reviewed")]
    assert [s["review_id"] for s in env.get("audrey", "/reviews").json()] == [REVIEW]

    entries = _entries(env, "access.review")
    decides = [e for e in entries if e.action == "decide"]
    assert len(decides) == 3
    assert all((e.actor, e.source) == ("april", "api:testclient") for e in entries)
    first = decides[0]
    assert first.entity_id == f"{REVIEW}#G-E002"
    assert first.before == {"decision": None, "reason": "", "decided_by": ""}
    assert first.after == {"decision": "revoke", "reason": "已離職 left on 11-30", "decided_by": "april"}
    sign = next(e for e in entries if e.action == "sign_off")
    assert sign.before == {"status": "open", "sign_offs": 0}
    assert sign.after == {"status": "signed", "sign_offs": ["april"]}
    assert [e.action for e in entries].count("create") == 1
    # The decision without a reason, the unknown grant, the undecided sign-off (a second start of the
    # quarter is refused before anything is written, as on the command line).
    assert [e.action for e in entries].count("refused") == 3


def test_the_access_administrator_may_not_sign_off(env: Env) -> None:
    _start_and_decide(env)
    msg = _error(env.post("keeper", f"/reviews/{REVIEW}/sign-off", {}), 409, "separation_of_duties")
    assert "separation of duties" in msg
    assert "職責分離" in msg
    assert env.get("april", f"/reviews/{REVIEW}").json()["status"] == "open"
    refused = [e for e in _entries(env, "access.review") if e.action == "refused"]
    assert refused[-1].actor == "keeper"
    assert "separation of duties" in (refused[-1].note or "")
    # Whoever else holds the approver role signs.
    assert env.post("april", f"/reviews/{REVIEW}/sign-off", {}).json()["status"] == "signed"


def test_a_signed_review_is_read_only(env: Env) -> None:
    _start_and_decide(env)
    assert env.post("april", f"/reviews/{REVIEW}/sign-off").status_code == 200  # no body: no note
    path = f"/reviews/{REVIEW}/lines/G-E001/decision"
    msg = _error(env.post("april", path, {"decision": "revoke", "reason": "late"}), 409, "review_signed")
    assert "read-only" in msg
    assert "已簽核" in msg
    _error(env.post("april", f"/reviews/{REVIEW}/sign-off"), 409, "review_signed")
    line = env.get("april", f"/reviews/{REVIEW}", params={"flagged": True}).json()["shown"]
    assert [ln["grant"]["grant_id"] for ln in line] == ["G-E002", "G-V001"]
    assert env.get("april", f"/reviews/{REVIEW}", params={"undecided": True}).json()["shown"] == []
    # A change after the sign-off is a new review of the quarter, linked to the signed one.
    again = env.post("april", "/reviews", {"quarter": "2026Q4"}).json()
    assert (again["review_id"], again["supersedes"]) == (f"{REVIEW}-2", REVIEW)


def test_personal_data_is_for_the_approver_and_the_auditor_only(env: Env) -> None:
    _start_and_decide(env)
    reads = ["/holders", "/grants", "/flags", "/reviews", f"/reviews/{REVIEW}", f"/reviews/{REVIEW}/export"]
    for user in ("vera", "otto", "alice"):
        for path in reads:
            msg = _error(env.get(user, path), 403, "forbidden")
            assert "access.read" in msg
    for user in ("april", "audrey"):
        for path in reads:
            assert env.get(user, path).status_code == 200, (user, path)
    holders = env.get("audrey", "/holders").json()
    assert [(h["person_id"], h["holder_type"]) for h in holders] == [
        ("E001", "employee"),
        ("E002", "employee"),
        ("V001", "vendor"),
    ]
    grants = {g["grant_id"]: g for g in env.get("audrey", "/grants").json()}
    assert {f["code"] for f in grants["G-E002"]["flags"]} == {"DORMANT_90D", "LEAVER_ACTIVE"}
    assert grants["G-E001"]["flags"] == []
    assert grants["G-E001"]["in_force"]
    assert [g["grant_id"] for g in env.get("audrey", "/grants", params={"flagged": True}).json()] == [
        "G-E002",
        "G-V001",
    ]
    flags = env.get("audrey", "/flags", params={"code": "LEAVER_ACTIVE"}).json()
    assert [(f["grant_id"], f["reason_en"]) for f in flags] == [
        ("G-E002", "the holder has left; the grant is still in force")
    ]
    _error(env.get("audrey", "/flags", params={"code": "STALE"}), 422, "invalid_request")


def test_the_auditor_reads_but_decides_nothing_and_the_admin_signs_nothing(env: Env) -> None:
    _start_and_decide(env)
    decide = f"/reviews/{REVIEW}/lines/G-E001/decision"
    for user in ("audrey", "alice", "vera", "otto"):
        _error(env.post(user, decide, {"decision": "keep"}), 403, "forbidden")
        _error(env.post(user, f"/reviews/{REVIEW}/sign-off", {}), 403, "forbidden")
        _error(env.post(user, "/reviews", {"quarter": "2027Q1"}), 403, "forbidden")
    assert "access.sign_off needs one of the roles approver" in _error(
        env.post("alice", f"/reviews/{REVIEW}/sign-off", {}), 403, "forbidden"
    )
    assert env.get("audrey", f"/reviews/{REVIEW}").json()["status"] == "open"


def test_the_exports_open_in_their_programs(env: Env) -> None:
    _start_and_decide(env)
    env.post("april", f"/reviews/{REVIEW}/sign-off", {})
    r = env.get("audrey", f"/reviews/{REVIEW}/export", params={"format": "xlsx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="access-review-{REVIEW}.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert len(book.sheetnames) == 6
    r = env.get("audrey", f"/reviews/{REVIEW}/export", params={"format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel in Taiwan needs
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    text = "\n".join(",".join(row) for row in rows)
    assert "G-E002" in text
    assert "G-V001" in text
    r = env.get("april", f"/reviews/{REVIEW}/export", params={"format": "csv", "sheet": "D_exceptions"})
    assert "LEAVER_ACTIVE" in r.content.decode("utf-8-sig")
    r = env.get("audrey", f"/reviews/{REVIEW}/export", params={"format": "pdf"})
    assert r.status_code == 200
    assert r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf"
    _error(env.get("audrey", f"/reviews/{REVIEW}/export", params={"format": "docx"}), 422, "invalid_request")
    _error(env.get("audrey", "/reviews/ACR-nope/export"), 404, "not_found")


def test_a_browser_session_needs_its_csrf_token_to_decide(env: Env) -> None:
    env.post("april", "/reviews", {"quarter": "2026Q4"})
    login = env.client.post("/api/v1/auth/login", json={"username": "april", "password": PASSWORD})
    csrf = login.json()["csrf_token"]
    path = f"{BASE}/reviews/{REVIEW}/lines/G-E001/decision"
    _error(env.client.post(path, json={"decision": "keep"}), 403, "csrf_failed")
    assert env.client.post(path, json={"decision": "keep"}, headers={"X-CSRF-Token": csrf}).status_code == 200


def test_a_web_user_is_named_by_display_name_and_username(env: Env) -> None:
    april = env.store.get_user("april")
    keeper = env.store.get_user("keeper")
    assert april is not None
    assert keeper is not None
    assert reviewer_name(april) == "april"  # display name "April": the same name
    assert reviewer_name(keeper) == f"{ADMIN} (keeper)"
