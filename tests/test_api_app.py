"""The web app through FastAPI's TestClient over a migrated SQLite records database: logins (ok, wrong
password, unknown, disabled, locked out) and their audit entries, 401 and 403, CSRF on every unsafe
request from a session, API tokens (no CSRF, revoked = 401), errors with a request id and no trace."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api import pages, pages_access, pages_alerts, pages_audit, pages_door, pages_records
from api.app import ROUTERS, create_app
from api.auth import SESSION_COOKIE, Principal, Requirement, audit_actor, authenticated
from api.auth_memo import AuthMemo
from api.page_auth import page_principal
from api.roles import Permission, Role, permissions
from api.store import ApiStore, Credential, UserView
from records.audit import AuditEntry, verify
from records.db import make_engine, session_factory
from siteconfig.api_config import ApiConfig, LoginThrottle
from tests.api_support import (
    ADMIN_CLI,
    FAST_HASHER,
    PASSWORD,
    T0,
    Clock,
    form_login,
    fresh_engine,
    migrated_template,
    store_with_users,
)

PAGE_ROUTERS = (
    pages.router,
    pages_records.router,
    pages_alerts.router,
    pages_access.router,
    pages_audit.router,
    pages_door.router,
)
SETTINGS = ApiConfig(login=LoginThrottle(max_failures=3, lockout_minutes=10))
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"


@dataclass
class Env:
    client: TestClient
    store: ApiStore
    engine: Engine
    clock: Clock
    app: FastAPI


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


def _app(engine: Engine, clock: Clock, tmp_path: Path, settings: ApiConfig = SETTINGS) -> FastAPI:
    return create_app(settings, records_url=engine, state_dir=tmp_path, clock=clock, hasher=FAST_HASHER)


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    engine = fresh_engine(template, tmp_path)
    store = store_with_users(engine)
    clock = Clock(T0)
    app = _app(engine, clock, tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client, store, engine, clock, app)
    engine.dispose()


def _login(env: Env, user: str, password: str = PASSWORD) -> Any:
    return env.client.post(LOGIN, json={"username": user, "password": password})


def _audit(env: Env, action: str | None = None) -> list[AuditEntry]:
    with session_factory(env.engine)() as s:
        report = verify(s)
        assert report.ok, report.problems
        q = select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            q = q.where(AuditEntry.action == action)
        return list(s.scalars(q))


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text
    return dict(body)


# -- logins --------------------------------------------------------------------------------------


def test_a_login_sets_a_strict_http_only_cookie_and_is_audited(env: Env) -> None:
    r = _login(env, "vera")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["username"] == "vera"
    assert "password_hash" not in json.dumps(body)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # loopback: the default leaves it off
    me = env.client.get("/api/v1/me").json()
    assert (me["user"]["username"], me["via"], me["csrf_token"]) == ("vera", "session", body["csrf_token"])
    assert "status.read" in me["permissions"]
    [entry] = _audit(env, "login")
    assert (entry.actor, entry.source, entry.entity_id) == ("vera", "api:testclient", "vera")


def test_off_loopback_the_cookie_is_secure(env: Env, tmp_path: Path) -> None:
    app = _app(env.engine, env.clock, tmp_path, ApiConfig(host="0.0.0.0"))
    with TestClient(app) as client:
        r = client.post(LOGIN, json={"username": "vera", "password": PASSWORD})
    assert r.status_code == 200
    assert "Secure" in r.headers["set-cookie"]


def test_wrong_password_unknown_user_and_disabled_get_one_answer_and_are_audited(env: Env) -> None:
    env.store.set_disabled("otto", True, ADMIN_CLI, T0)
    answers = [
        _error(_login(env, "vera", "wrong-pass1"), 401, "login_failed"),
        _error(_login(env, "nobody"), 401, "login_failed"),
        _error(_login(env, "otto"), 401, "login_failed"),
    ]
    assert len({a["message"] for a in answers}) == 1
    failed = _audit(env, "login.failed")
    assert [(e.entity_id, e.note, e.source) for e in failed] == [
        ("vera", "wrong password", "api:testclient"),
        ("nobody", "unknown user", "api:testclient"),
        ("otto", "disabled", "api:testclient"),
    ]
    everything = json.dumps([[e.before, e.after, e.note] for e in _audit(env)])
    assert "wrong-pass1" not in everything
    assert PASSWORD not in everything
    assert SESSION_COOKIE not in env.client.cookies


def test_wrong_passwords_in_a_row_lock_the_account_until_the_lock_out_ends(env: Env) -> None:
    for _ in range(3):
        _error(_login(env, "april", "wrong-pass1"), 401, "login_failed")
    [locked] = _audit(env, "login.locked")
    assert locked.after == {"locked_until": (T0 + timedelta(minutes=10)).isoformat()}
    refused = _login(env, "april")  # the right password, but locked
    _error(refused, 429, "account_locked")
    assert refused.headers["Retry-After"] == "600"
    assert _audit(env, "login.failed")[-1].note == "locked"
    env.clock.now = T0 + timedelta(minutes=10)
    assert _login(env, "april").status_code == 200


def test_a_session_expires_with_its_lifetime(env: Env) -> None:
    assert _login(env, "vera").status_code == 200
    env.clock.now = T0 + timedelta(hours=SETTINGS.session_hours)
    _error(env.client.get("/api/v1/me"), 401, "unauthenticated")


# -- roles ---------------------------------------------------------------------------------------


def test_anonymous_gets_401_with_a_bearer_challenge(env: Env) -> None:
    for path in ("/api/v1/me", "/api/v1/users"):
        r = env.client.get(path)
        _error(r, 401, "unauthenticated")
        assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("user", ["vera", "otto", "april", "audrey"])
def test_only_the_admin_lists_users(env: Env, user: str) -> None:
    assert _login(env, user).status_code == 200
    body = _error(env.client.get("/api/v1/users"), 403, "forbidden")
    assert "users.read needs one of the roles admin" in body["message"]


def test_the_admin_lists_users_without_hashes(env: Env) -> None:
    assert _login(env, "alice").status_code == 200
    r = env.client.get("/api/v1/users")
    assert r.status_code == 200
    assert [u["username"] for u in r.json()] == ["alice", "april", "audrey", "otto", "vera"]
    assert "argon2" not in r.text


# -- CSRF ----------------------------------------------------------------------------------------


def test_an_unsafe_request_from_a_session_needs_the_csrf_token(env: Env) -> None:
    csrf = _login(env, "vera").json()["csrf_token"]
    body = _error(env.client.post(LOGOUT), 403, "csrf_failed")
    assert "X-CSRF-Token" in body["message"]
    _error(env.client.post(LOGOUT, headers={"X-CSRF-Token": "forged"}), 403, "csrf_failed")
    assert env.client.get("/api/v1/me").status_code == 200  # still logged in
    r = env.client.post(LOGOUT, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    _error(env.client.get("/api/v1/me"), 401, "unauthenticated")
    [entry] = _audit(env, "logout")
    assert entry.actor == "vera"


def test_the_browser_form_login_and_a_csrf_less_form_post_is_refused(env: Env) -> None:
    page = env.client.get("/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    bad = form_login(env.client, "vera", "nope-123")
    assert bad.status_code == 401
    assert "帳號或密碼錯誤" in bad.text
    r = form_login(env.client, "vera", PASSWORD, next="//evil.example/")
    assert r.status_code == 303
    assert r.headers["location"] == "/"  # never off-site
    home = env.client.get("/")
    assert "Vera" in home.text
    csrf = env.client.get("/api/v1/me").json()["csrf_token"]
    assert f'value="{csrf}"' in home.text
    refused = env.client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert "request" in refused.text
    out = env.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    _error(env.client.get("/api/v1/me"), 401, "unauthenticated")


# -- tokens --------------------------------------------------------------------------------------


def test_a_token_authenticates_without_csrf_and_stops_when_revoked(env: Env) -> None:
    token = env.store.create_token("nightly-export", "audrey", ADMIN_CLI, T0)
    auth = {"Authorization": f"Bearer {token}"}
    me = env.client.get("/api/v1/me", headers=auth).json()
    assert (me["user"]["username"], me["via"], me["csrf_token"]) == ("audrey", "token", None)
    assert "evidence.download" in me["permissions"]
    # An unsafe request with a token passes the CSRF check (no cookie, no header) and reaches the handler.
    _error(env.client.post(LOGOUT, headers=auth), 400, "not_a_session")
    env.store.revoke_token("nightly-export", ADMIN_CLI, T0)
    _error(env.client.get("/api/v1/me", headers=auth), 401, "token_invalid")
    _error(env.client.get("/api/v1/me", headers={"Authorization": "Basic dTpw"}), 401, "bad_authorization")
    _error(
        env.client.get("/api/v1/me", headers={"Authorization": "Bearer rgt_made-up"}), 401, "token_invalid"
    )


def test_a_change_made_elsewhere_applies_to_the_next_request_despite_the_memo(
    env: Env, tmp_path: Path
) -> None:
    # Another process (the CLI: its own engine) changes roles, disables a user, revokes a token: each is
    # audited, the audit head moves, and the app's remembered credentials are dropped (api/auth_memo.py).
    other = ApiStore(session_factory(make_engine(tmp_path / "records.db")), hasher=FAST_HASHER)
    token = env.store.create_token("script", "otto", ADMIN_CLI, T0)
    auth = {"Authorization": f"Bearer {token}"}
    assert _login(env, "vera").status_code == 200
    assert env.client.get("/api/v1/me").json()["user"]["roles"] == ["viewer"]
    assert env.client.get("/api/v1/me", headers=auth).status_code == 200
    other.set_roles("vera", ["viewer", "auditor"], ADMIN_CLI, T0)
    assert env.client.get("/api/v1/me").json()["user"]["roles"] == ["auditor", "viewer"]
    other.set_disabled("vera", True, ADMIN_CLI, T0)
    _error(env.client.get("/api/v1/me"), 401, "unauthenticated")
    other.revoke_token("script", ADMIN_CLI, T0)
    _error(env.client.get("/api/v1/me", headers=auth), 401, "token_invalid")


def test_the_auth_memo_forgets_everything_at_a_new_audit_head_and_when_full() -> None:
    user = UserView(1, "vera", "Vera", ("viewer",), False, 0, None, T0, T0)
    memo = AuthMemo(limit=2)
    memo.put(7, "token:a", Credential(user, T0))
    assert memo.get(7, "token:a") == Credential(user, T0)
    assert memo.get(8, "token:a") is None  # the head moved: a write somewhere, nothing is trusted
    assert memo.get(7, "token:a") is None  # and the old head does not bring it back
    for key in ("a", "b", "c"):
        memo.put(8, key, Credential(user, None))
    assert [memo.get(8, key) is not None for key in ("a", "b", "c")] == [False, False, True]


def test_a_tokens_last_use_is_written_once_a_minute_while_it_is_remembered(env: Env) -> None:
    token = env.store.create_token("script", "otto", ADMIN_CLI, T0)
    auth = {"Authorization": f"Bearer {token}"}

    def last_used() -> object:
        return next(t.last_used_at for t in env.store.list_tokens() if t.name == "script")

    assert env.client.get("/api/v1/me", headers=auth).status_code == 200
    assert last_used() == T0
    env.clock.now = T0 + timedelta(seconds=30)
    assert env.client.get("/api/v1/me", headers=auth).status_code == 200
    assert last_used() == T0  # not due yet
    env.clock.now = T0 + timedelta(seconds=61)
    assert env.client.get("/api/v1/me", headers=auth).status_code == 200
    assert last_used() == env.clock.now


# -- errors, health, OpenAPI ---------------------------------------------------------------------


def test_errors_carry_a_request_id_and_never_a_trace(env: Env) -> None:
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    env.app.add_api_route("/api/v1/boom", boom)
    r = env.client.get("/api/v1/boom")
    body = _error(r, 500, "internal_error")
    assert "hunter2" not in r.text
    assert body["message"].startswith("內部錯誤")
    _error(env.client.get("/api/v1/nope"), 404, "not_found")
    mine = env.client.get("/api/v1/nope", headers={"X-Request-ID": "job-42"})
    assert _error(mine, 404, "not_found")["request_id"] == "job-42"
    odd = env.client.get("/api/v1/nope", headers={"X-Request-ID": "a b\tc"})
    assert _error(odd, 404, "not_found")["request_id"] != "a b\tc"


def test_an_invalid_body_is_a_422_that_does_not_echo_the_password(env: Env) -> None:
    r = env.client.post(LOGIN, json={"username": "vera", "password": "x" * 2000})
    body = _error(r, 422, "invalid_request")
    assert "password" in body["message"]
    assert "xxxx" not in r.text
    _error(
        env.client.post(LOGIN, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )


def test_health_needs_no_login_and_the_openapi_is_served(env: Env) -> None:
    r = env.client.get("/healthz")
    assert r.json() == {"status": "ok", "database": "ok"}
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in r.headers  # plain HTTP
    spec = env.client.get("/api/v1/openapi.json").json()
    for path in (LOGIN, LOGOUT, "/api/v1/me", "/api/v1/users", "/healthz"):
        assert path in spec["paths"], path
    assert "ErrorBody" in spec["components"]["schemas"]


def test_a_wrong_method_is_a_405_naming_every_method_the_path_allows(env: Env) -> None:
    # GET and POST of /api/v1/silences are two routes: Starlette alone named only the first one's.
    for method, path, allowed in (
        ("PUT", "/api/v1/silences", "GET, POST"),
        ("DELETE", "/api/v1/alerts", "GET"),
        ("PATCH", "/login", "GET, POST"),
        ("GET", "/api/v1/silences/1", "DELETE"),
    ):
        r = env.client.request(method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert r.headers["Allow"] == allowed, (method, path)


def test_the_api_docs_load_swagger_ui_from_the_box_not_a_cdn(env: Env) -> None:
    html = env.client.get("/api/v1/docs").text
    scripts = re.findall(r'<script src="([^"]+)"', html) + re.findall(r'<link [^>]*href="([^"]+)"', html)
    assert len(scripts) >= 2  # swagger-ui-bundle.js and swagger-ui.css (and the favicon)
    for src in scripts:
        assert src.startswith("/api/v1/docs/assets/"), src
        asset = env.client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 1000, src
    _error(env.client.get("/api/v1/docs/assets/nothing.js"), 404, "not_found")


# -- the audit log -------------------------------------------------------------------------------


def test_the_auditor_pages_through_the_audit_log_and_verifies_it(env: Env) -> None:
    assert _login(env, "audrey").status_code == 200
    first = env.client.get("/api/v1/audit", params={"limit": 3}).json()
    assert [e["action"] for e in first["entries"]] == ["user.add"] * 3
    assert first["next_after"] == 3
    rest = env.client.get("/api/v1/audit", params={"after": 3}).json()
    assert [(e["action"], e["entity_id"]) for e in rest["entries"]] == [
        ("user.add", "april"),
        ("user.add", "audrey"),
        ("login", "audrey"),
    ]
    assert rest["next_after"] is None
    assert rest["entries"][0]["prev_hash"] == first["entries"][-1]["hash"]
    check = env.client.get("/api/v1/audit/verify").json()
    assert (check["ok"], check["entries"], check["problems"]) == (True, 6, [])


@pytest.mark.parametrize("user", ["vera", "otto", "april"])
def test_the_audit_log_is_closed_to_other_roles(env: Env, user: str) -> None:
    assert _login(env, user).status_code == 200
    _error(env.client.get("/api/v1/audit"), 403, "forbidden")
    _error(env.client.get("/api/v1/audit/verify"), 403, "forbidden")


# -- every role against every route --------------------------------------------------------------

# Routes anyone may call; every other route of the API must need a login (a new one left open fails).
PUBLIC = {("POST", LOGIN), ("GET", "/healthz"), ("GET", "/door"), ("GET", "/door/room")}


def _guards(dependant: Dependant) -> tuple[set[Permission], bool]:
    perms: set[Permission] = set()
    login = False
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requirement):
            perms.add(sub.call.permission)
        login = login or sub.call is authenticated or sub.call is page_principal
        more, sub_login = _guards(sub)
        perms |= more
        login = login or sub_login
    return perms, login


def _is_page(route: APIRoute) -> bool:
    """An HTML page or form of the browser (api/pages*.py): out of the OpenAPI, its routers' own."""
    return not route.include_in_schema and any(route in router.routes for router in PAGE_ROUTERS)


def _routes(app: FastAPI, pages: bool = False) -> list[tuple[str, str, set[Permission], bool]]:
    """The API's routes (pages=False) or the HTML pages' (pages=True): method, path, permissions, login."""
    out: list[tuple[str, str, set[Permission], bool]] = []
    every = [r for router in ROUTERS for r in router.routes] + list(app.routes)
    for route in every:
        if isinstance(route, APIRoute) and (route.include_in_schema if not pages else _is_page(route)):
            perms, login = _guards(route.dependant)
            path = route.path.replace("{", "").replace("}", "")  # a path parameter's value: its name
            out.extend((m, path, perms, login) for m in sorted(route.methods or ()) if m != "HEAD")
    return out


def test_every_route_but_the_public_ones_needs_a_login(env: Env) -> None:
    routes = _routes(env.app)
    spec = env.client.get("/api/v1/openapi.json").json()["paths"]
    served = {(m.upper(), p.replace("{", "").replace("}", "")) for p, ops in spec.items() for m in ops}
    assert {(m, p) for m, p, _, _ in routes} == served  # a router missing from api.app.ROUTERS shows here
    for method, path, _, login in routes:
        if (method, path) in PUBLIC:
            continue
        assert login, f"{method} {path} needs no login"
        r = env.client.request(method, path)
        _error(r, 401, "unauthenticated")
    pages = _routes(env.app, pages=True)
    assert len(pages) >= 8
    for method, path, _, login in pages:
        if (method, path) in PUBLIC:
            continue
        assert login, f"page {method} {path} needs no login"
        r = env.client.request(method, path, follow_redirects=False)
        assert r.status_code == 303, (method, path, r.text)
        assert r.headers["location"].startswith("/login?next="), (method, path, r.headers["location"])


@pytest.mark.parametrize("role", list(Role))
def test_every_role_gets_exactly_what_the_matrix_grants(env: Env, role: Role) -> None:
    user = f"{role.value}-1"
    env.store.add_user(user, PASSWORD, [role], ADMIN_CLI, T0)
    auth = {"Authorization": f"Bearer {env.store.create_token(user, user, ADMIN_CLI, T0)}"}
    granted = permissions([role])
    checked = 0
    refused = 0
    # Reads that are themselves audited (an auditor's export or download) do not count as writes.
    writes = select(func.count()).where(AuditEntry.action.not_in(("audit.export", "evidence.download")))
    with session_factory(env.engine)() as s:
        audit_before = s.scalar(writes)
    for method, path, perms, _ in _routes(env.app):
        if not perms:
            continue
        if method != "GET":
            # Unsafe routes: a role without the permission is refused before the body is read, so
            # nothing changes; what an allowed role may do with a valid body is each route's own test.
            if not perms <= granted:
                _error(env.client.request(method, path, headers=auth, json={}), 403, "forbidden")
                refused += 1
            continue
        r = env.client.request(method, path, headers=auth)
        if perms <= granted:
            assert r.status_code not in (401, 403), (role, method, path, r.text)
        else:
            _error(r, 403, "forbidden")
        checked += 1
    assert checked >= 3
    assert refused >= (0 if role is Role.OPERATOR else 3), role  # every role lacks some write
    with session_factory(env.engine)() as s:
        assert s.scalar(writes) == audit_before  # no write happened
    pages = 0
    for method, path, perms, _ in _routes(env.app, pages=True):
        if not perms:
            continue
        # Unsafe page routes too: the role check comes before the form is read, so nothing changes.
        r = env.client.request(method, path, headers=auth, follow_redirects=False)
        if perms <= granted:
            assert r.status_code not in (303, 401, 403), (role, method, path, r.text)
            assert r.status_code < 500, (role, method, path, r.text)
        else:
            assert r.status_code == 403, (role, method, path, r.text)
            assert "not allowed" in r.text
        pages += 1
    assert pages >= 8


def test_a_write_through_the_api_is_audited_as_the_user_from_the_peer_address(env: Env) -> None:
    user = env.store.get_user("otto")
    assert user is not None
    request = Request(
        {"type": "http", "method": "POST", "path": "/", "headers": [], "client": ("192.0.2.9", 50000)}
    )
    actor = audit_actor(Principal(user, "token"), request)
    assert (actor.name, actor.source) == ("otto", "api:192.0.2.9")


# -- one's own password --------------------------------------------------------------------------

CHANGE = "/api/v1/me/password"


def test_a_user_changes_their_own_password_and_their_other_sessions_end(env: Env, tmp_path: Path) -> None:
    csrf = _login(env, "vera").json()["csrf_token"]
    with TestClient(_app(env.engine, env.clock, tmp_path)) as other:
        assert other.post(LOGIN, json={"username": "vera", "password": PASSWORD}).status_code == 200
        body = {"current_password": PASSWORD, "new_password": "n3w-secret"}
        _error(env.client.post(CHANGE, json=body), 403, "csrf_failed")
        head = {"X-CSRF-Token": csrf}
        wrong = {"current_password": "not-it-1", "new_password": "n3w-secret"}
        _error(env.client.post(CHANGE, json=wrong, headers=head), 403, "wrong_password")
        weak = {"current_password": PASSWORD, "new_password": "abcdefgh"}
        assert (
            "must mix"
            in _error(env.client.post(CHANGE, json=weak, headers=head), 422, "password_rules")["message"]
        )
        assert env.client.post(CHANGE, json=body, headers=head).status_code == 204
        assert env.client.get("/api/v1/me").status_code == 200  # this session stays
        _error(other.get("/api/v1/me"), 401, "unauthenticated")  # the other one ended
    [changed] = [e for e in _audit(env, "user.passwd") if e.entity_id == "vera"]
    assert (changed.actor, changed.source) == ("vera", "api:testclient")
    _error(_login(env, "vera"), 401, "login_failed")
    assert _login(env, "vera", "n3w-secret").status_code == 200
    assert "n3w-secret" not in json.dumps([[e.before, e.after, e.note] for e in _audit(env)])


def test_guessing_the_current_password_from_an_open_session_locks_the_account(env: Env) -> None:
    head = {"X-CSRF-Token": _login(env, "otto").json()["csrf_token"]}
    wrong = {"current_password": "guess-123", "new_password": "n3w-secret"}
    for _ in range(3):
        _error(env.client.post(CHANGE, json=wrong, headers=head), 403, "wrong_password")
    _error(env.client.post(CHANGE, json=wrong, headers=head), 429, "account_locked")
    assert len(_audit(env, "login.locked")) == 1


def test_a_password_is_not_changed_with_an_api_token(env: Env) -> None:
    # A leaked token must not be a way to guess the password (or lock the account out by guessing).
    auth = {"Authorization": f"Bearer {env.store.create_token('otto-t', 'otto', ADMIN_CLI, T0)}"}
    for current in (PASSWORD, "guess-123", "guess-456", "guess-789", "guess-000"):
        body = {"current_password": current, "new_password": "n3w-secret"}
        _error(env.client.post(CHANGE, json=body, headers=auth), 403, "session_required")
    assert _audit(env, "login.") == []  # nothing counted as a guess, nothing locked
    assert _login(env, "otto").status_code == 200  # the password is unchanged


def test_a_sequence_number_beyond_sqlites_integer_is_a_422_not_a_500(env: Env) -> None:
    """schemathesis drew `after=2**63` (an OverflowError where SQLite binds it)."""
    auth = {"Authorization": f"Bearer {env.store.create_token('audrey-t', 'audrey', ADMIN_CLI, T0)}"}
    assert env.client.get("/api/v1/audit", params={"after": 2**63 - 1}, headers=auth).status_code == 200
    _error(env.client.get("/api/v1/audit", params={"after": 2**63}, headers=auth), 422, "invalid_request")
