"""Login hardening: failed logins per client address in a sliding window (429 with Retry-After, bounded
memory) on top of the per-account lock-out, and the login form's own CSRF token (login CSRF)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import SESSION_COOKIE
from api.login_guard import LOGIN_CSRF_COOKIE, LoginGuard
from api.throttle import AddressThrottle
from siteconfig.api_config import ApiConfig, LoginThrottle
from tests.api_support import (
    FAST_HASHER,
    PASSWORD,
    T0,
    Clock,
    form_login,
    fresh_engine,
    login_form_token,
    migrated_template,
    store_with_users,
)

LOGIN = "/api/v1/auth/login"
# Accounts lock only after many failures here, so what is tested is the address's throttle.
SETTINGS = ApiConfig(
    login=LoginThrottle(max_failures=50, address_failures=4, address_window_minutes=10, address_memory=10)
)


# -- the throttle itself (pure) ------------------------------------------------------------------


def test_the_limit_th_failure_in_the_window_makes_the_address_wait_until_the_oldest_ages_out() -> None:
    t = AddressThrottle(limit=3, window=timedelta(minutes=10), capacity=100)
    assert not t.failed("10.0.0.1", T0)
    assert not t.failed("10.0.0.1", T0 + timedelta(minutes=4))
    assert t.retry_after("10.0.0.1", T0 + timedelta(minutes=5)) is None
    assert t.failed("10.0.0.1", T0 + timedelta(minutes=6))
    assert t.retry_after("10.0.0.2", T0 + timedelta(minutes=6)) is None  # another address is not held
    # Blocked until the first failure (T0) leaves the 10-minute window.
    assert t.retry_after("10.0.0.1", T0 + timedelta(minutes=6)) == pytest.approx(4 * 60)
    assert t.retry_after("10.0.0.1", T0 + timedelta(minutes=9, seconds=59)) == pytest.approx(1)
    assert t.retry_after("10.0.0.1", T0 + timedelta(minutes=10)) is None
    # The window slides: the two later failures still count, one more blocks again.
    assert t.failed("10.0.0.1", T0 + timedelta(minutes=10))
    assert t.retry_after("10.0.0.1", T0 + timedelta(minutes=11)) is not None


def test_memory_is_bounded_the_least_recently_failing_address_is_forgotten() -> None:
    t = AddressThrottle(limit=2, window=timedelta(hours=1), capacity=3)
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}", T0)
    assert len(t) == 3
    t.failed("192.0.2.1", T0)
    t.failed("192.0.2.2", T0)
    t.failed("192.0.2.1", T0)  # 192.0.2.1 failed most recently: it is kept
    for i in range(2):
        t.failed(f"198.51.100.{i}", T0)
    assert len(t) == 3
    assert t.retry_after("192.0.2.1", T0) is not None
    assert t.retry_after("192.0.2.2", T0) is None  # evicted
    # Each address keeps at most `limit` times, however many failures it sends.
    for _ in range(10_000):
        t.failed("203.0.113.9", T0)
    assert max(len(v) for v in t._failures.values()) == 2


def test_a_form_token_is_signed_by_the_app_that_made_it() -> None:
    ours, theirs = LoginGuard(LoginThrottle()), LoginGuard(LoginThrottle())
    token = ours.new_form_token()
    assert ours.form_token_ok(token, token)
    assert not theirs.form_token_ok(token, token)  # another key (another app, or after a restart)
    assert not ours.form_token_ok(token, ours.new_form_token())  # cookie and field differ
    assert not ours.form_token_ok(None, token)
    assert not ours.form_token_ok(token, "")
    value = token.partition(".")[0]
    assert not ours.form_token_ok(f"{value}.forged", f"{value}.forged")


# -- through the app ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def client(template: Path, tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    engine = fresh_engine(template, tmp_path)
    store_with_users(engine)
    app = create_app(SETTINGS, records_url=engine, state_dir=tmp_path, clock=clock, hasher=FAST_HASHER)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    engine.dispose()


def _json_login(client: TestClient, user: str, password: str) -> Any:
    return client.post(LOGIN, json={"username": user, "password": password})


def test_failed_logins_from_one_address_get_429_across_accounts_until_the_window_passes(
    client: TestClient, clock: Clock
) -> None:
    # Four wrong passwords, each against another account: no account is near its lock-out.
    for user in ("vera", "otto", "april", "nobody"):
        assert _json_login(client, user, "wrong-123").status_code == 401
    r = _json_login(client, "alice", PASSWORD)  # even the right password waits now
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == "too_many_attempts"
    assert "testclient" in body["message"]  # names the address (TestClient's peer)
    assert r.headers["Retry-After"] == str(10 * 60)
    assert SESSION_COOKIE not in r.cookies
    clock.now += timedelta(minutes=10)
    assert _json_login(client, "alice", PASSWORD).status_code == 200


def test_the_form_login_shows_the_throttle_as_the_form_again(client: TestClient) -> None:
    for _ in range(4):
        assert form_login(client, "vera", "wrong-123").status_code == 401
    r = form_login(client, "vera", PASSWORD)
    assert r.status_code == 429
    assert "too many failed logins" in r.text
    assert 'name="password"' in r.text  # the form again, not a bare error
    assert int(r.headers["Retry-After"]) > 0


def test_a_login_form_post_without_the_forms_token_is_refused(client: TestClient) -> None:
    data = {"username": "vera", "password": PASSWORD}
    # Another site's form: no cookie, no field.
    r = client.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 403
    assert "reload the page" in r.text
    assert SESSION_COOKIE not in client.cookies
    # The field without the cookie (the attacker read a token from their own visit).
    token = login_form_token(client.get("/login").text)
    client.cookies.delete(LOGIN_CSRF_COOKIE, path="/login")
    r = client.post("/login", data={**data, "login_csrf": token}, follow_redirects=False)
    assert r.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    # A refused post still hands out a fresh form that works.
    fresh = login_form_token(r.text)
    r = client.post("/login", data={**data, "login_csrf": fresh}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert SESSION_COOKIE in r.cookies


def test_the_login_csrf_cookie_is_strict_http_only_and_scoped_to_the_login(client: TestClient) -> None:
    page = client.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_CSRF_COOKIE}=")
    for attribute in ("HttpOnly", "Path=/login", "SameSite=strict"):
        assert attribute.lower() in cookie.lower(), cookie
    # A second visit keeps the same token (two tabs both work).
    again = client.get("/login")
    assert login_form_token(again.text) == login_form_token(page.text)


def test_the_json_login_for_scripts_needs_no_form_token(client: TestClient) -> None:
    r = _json_login(client, "vera", PASSWORD)
    assert r.status_code == 200
    assert r.json()["csrf_token"]
