"""The users/sessions/tokens store over a real (migrated) SQLite records database: every change goes
into the hash-chained audit log with who, from where and before/after, and never a secret."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from api.models import ApiToken, LoginSession, User
from api.store import ApiStore, UserError
from records.audit import AuditEntry, verify
from records.db import session_factory
from siteconfig.api_config import LoginThrottle
from tests.api_support import ADMIN_CLI, PASSWORD, T0, fresh_engine, migrated_template, store_with_users

POLICY = LoginThrottle(max_failures=3, lockout_minutes=10)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def engine(template: Path, tmp_path: Path) -> Engine:
    return fresh_engine(template, tmp_path)


@pytest.fixture
def store(engine: Engine) -> ApiStore:
    return store_with_users(engine)


def _audit(engine: Engine) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        assert verify(s).ok
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _secrets(engine: Engine) -> list[str]:
    with session_factory(engine)() as s:
        hashes = list(s.scalars(select(User.password_hash)))
        hashes += list(s.scalars(select(LoginSession.id_hash)))
        hashes += list(s.scalars(select(LoginSession.csrf_token)))
        hashes += list(s.scalars(select(ApiToken.token_hash)))
        return hashes


def test_user_changes_are_audited_with_before_and_after_and_no_secret(
    store: ApiStore, engine: Engine
) -> None:
    store.set_roles("vera", ["viewer", "auditor"], ADMIN_CLI, T0 + HOUR)
    store.set_password("vera", "n3w-password", ADMIN_CLI, T0 + HOUR)
    store.set_disabled("vera", True, ADMIN_CLI, T0 + HOUR)
    store.set_disabled("vera", False, ADMIN_CLI, T0 + HOUR)
    token = store.create_token("backup-script", "vera", ADMIN_CLI, T0 + HOUR)
    store.revoke_token("backup-script", ADMIN_CLI, T0 + HOUR)
    entries = _audit(engine)
    actions = [(e.action, e.entity_id) for e in entries if e.entity_id in {"vera", "backup-script"}]
    assert actions == [
        ("user.add", "vera"),
        ("user.roles", "vera"),
        ("user.passwd", "vera"),
        ("user.disable", "vera"),
        ("user.enable", "vera"),
        ("token.create", "backup-script"),
        ("token.revoke", "backup-script"),
    ]
    roles = next(e for e in entries if e.action == "user.roles")
    assert (roles.actor, roles.source) == ("root", "cli:edge-1/root")
    assert roles.before["roles"] == ["viewer"]
    assert roles.after["roles"] == ["auditor", "viewer"]
    disable = next(e for e in entries if e.action == "user.disable")
    assert (disable.before["disabled"], disable.after["disabled"]) == (False, True)
    text = json.dumps([[e.before, e.after, e.note] for e in entries], ensure_ascii=False)
    for secret in [PASSWORD, "n3w-password", token, *_secrets(engine)]:
        assert secret not in text


def test_only_hashes_of_passwords_sessions_and_tokens_are_stored(store: ApiStore, engine: Engine) -> None:
    token = store.create_token("t1", "otto", ADMIN_CLI, T0)
    result = store.login("otto", PASSWORD, "127.0.0.1", T0, POLICY, HOUR)
    assert result.session_id is not None
    stored = _secrets(engine)
    assert PASSWORD not in stored
    assert token not in stored
    assert result.session_id not in stored
    assert all(h.startswith("$argon2id$") for h in stored[: len(store.list_users())])


def test_bad_input_is_refused_with_a_reason(store: ApiStore) -> None:
    with pytest.raises(UserError, match="user 'vera' exists"):
        store.add_user("vera", PASSWORD, ["viewer"], ADMIN_CLI, T0)
    with pytest.raises(UserError, match="user 'vera' exists"):
        store.add_user("Vera", PASSWORD, ["viewer"], ADMIN_CLI, T0)
    with pytest.raises(UserError, match="bad user name"):
        store.add_user("vera smith", PASSWORD, ["viewer"], ADMIN_CLI, T0)
    with pytest.raises(UserError, match="at least 6 characters"):
        store.add_user("newbie", "a1", ["viewer"], ADMIN_CLI, T0)
    with pytest.raises(ValueError, match="valid: viewer, operator"):
        store.add_user("newbie", PASSWORD, ["root"], ADMIN_CLI, T0)
    with pytest.raises(UserError, match="at least one role"):
        store.set_roles("vera", [], ADMIN_CLI, T0)
    with pytest.raises(UserError, match="no user 'nobody'"):
        store.set_password("nobody", PASSWORD, ADMIN_CLI, T0)
    store.create_token("t1", "vera", ADMIN_CLI, T0)
    with pytest.raises(UserError, match="'t1' is taken"):
        store.create_token("t1", "otto", ADMIN_CLI, T0)
    store.revoke_token("t1", ADMIN_CLI, T0)
    with pytest.raises(UserError, match="already revoked"):
        store.revoke_token("t1", ADMIN_CLI, T0)
    assert store.get_user("newbie") is None


def test_a_session_ends_with_its_lifetime_a_password_change_or_disabling(store: ApiStore) -> None:
    first = store.login("otto", PASSWORD, "127.0.0.1", T0, POLICY, HOUR)
    assert first.session_id is not None
    assert store.resolve_session(first.session_id, T0 + HOUR - timedelta(seconds=1)) is not None
    assert store.resolve_session(first.session_id, T0 + HOUR) is None
    second = store.login("otto", PASSWORD, "127.0.0.1", T0, POLICY, HOUR)
    assert second.session_id is not None
    store.set_password("otto", "an0ther-pass", ADMIN_CLI, T0)
    assert store.resolve_session(second.session_id, T0) is None
    third = store.login("otto", "an0ther-pass", "127.0.0.1", T0, POLICY, HOUR)
    assert third.session_id is not None
    token = store.create_token("otto-script", "otto", ADMIN_CLI, T0)
    assert store.resolve_token(token, T0) is not None
    store.set_disabled("otto", True, ADMIN_CLI, T0)
    assert store.resolve_session(third.session_id, T0) is None
    assert store.resolve_token(token, T0) is None


def test_a_password_change_lifts_a_lock_out(store: ApiStore) -> None:
    for _ in range(3):
        store.login("vera", "wrong-1", "192.0.2.7", T0, POLICY, HOUR)
    assert store.login("vera", PASSWORD, "192.0.2.7", T0, POLICY, HOUR).outcome == "locked"
    store.set_password("vera", "fresh-pass1", ADMIN_CLI, T0)
    assert store.login("vera", "fresh-pass1", "192.0.2.7", T0, POLICY, HOUR).outcome == "ok"
