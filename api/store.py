"""Users, browser sessions and API tokens in the records database; every change, login, failed login,
lock-out and logout goes into the hash-chained audit log in the same transaction (records.audit).

The audit log never holds a password, a token, a session id or a hash of one: only who, from where,
and the user's name, display name, roles and state before and after.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import secrets as sec
from api.models import ApiToken, LoginSession, User
from api.passwords import password_problems
from api.roles import Role, parse_role
from api.throttle import LoginState, after_failure, is_locked
from records.audit import Actor, AuditItem, append, append_many
from records.db import read_only
from siteconfig.api_config import LoginThrottle, PasswordRules

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Writing last_seen / last_used on every request would make each read a write; once a minute is enough.
TOUCH_EVERY = timedelta(minutes=1)
USER_ENTITY, TOKEN_ENTITY = "api_user", "api_token"
HASH_SLOTS = 2  # argon2 hashes at once (each 64 MiB by default; the box is small)


class UserError(ValueError):
    """A refused user or token operation, with a message for the person (zh-TW and English)."""


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the API and CLI show it: no hash."""

    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    password_changed_at: datetime
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "disabled": self.disabled,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "password_changed_at": self.password_changed_at.isoformat(),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live browser session: its user and CSRF token."""

    user: UserView
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Credential:
    """Whose a live token or session is, and when its last use was written (`touch_due`)."""

    user: UserView
    last_use: datetime | None
    session: SessionView | None = None


def touch_due(last_use: datetime | None, now: datetime) -> bool:
    """Whether a credential's last use is due to be written again (TOUCH_EVERY)."""
    return last_use is None or now - last_use >= TOUCH_EVERY


@dataclass(frozen=True, slots=True)
class TokenView:
    """An API token's record (never the token)."""

    name: str
    username: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


LoginOutcome = Literal["ok", "unknown_user", "wrong_password", "disabled", "locked"]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login attempt came to; on success the new session's id (for the cookie) and CSRF token."""

    outcome: LoginOutcome
    user: UserView | None = None
    session_id: str | None = None
    csrf_token: str | None = None
    expires_at: datetime | None = None
    locked_until: datetime | None = None


# UserView's fields in order, as columns (the token lookup reads them without loading a User).
_USER_COLUMNS = (
    User.id,
    User.username,
    User.display_name,
    User.roles,
    User.disabled,
    User.failed_logins,
    User.locked_until,
    User.password_changed_at,
    User.created_at,
)


def _view(u: User) -> UserView:
    return UserView(
        u.id,
        u.username,
        u.display_name,
        tuple(u.roles),
        u.disabled,
        u.failed_logins,
        u.locked_until,
        u.password_changed_at,
        u.created_at,
    )


def _public(u: User) -> dict[str, Any]:
    """What the audit log keeps of a user: never the hash."""
    return {
        "username": u.username,
        "display_name": u.display_name,
        "roles": list(u.roles),
        "disabled": u.disabled,
    }


def _roles(roles: Iterable[str | Role]) -> list[str]:
    out = sorted({parse_role(str(r)).value for r in roles})
    if not out:
        raise UserError("至少一個角色 at least one role is needed")
    return out


class ApiStore:
    """Users, sessions and tokens over a records database's sessions."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: PasswordRules | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        # The per-request lookups (token, session) read through a deferred transaction: never queued
        # behind the alerts or compliance process writing the same database (records.db.read_only).
        if not isinstance(bind, Engine):
            raise TypeError("ApiStore needs sessions bound to an engine (records.db.session_factory)")
        self._read_engine = read_only(bind)
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)
        self.rules = rules or PasswordRules()
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._slots = threading.BoundedSemaphore(HASH_SLOTS)

    # -- users --------------------------------------------------------------------------------------

    @property
    def read_engine(self) -> Engine:
        """The records database for reads only (deferred transactions: records.db.read_only)."""
        return self._read_engine

    def _hash(self, username: str, password: str) -> str:
        problems = password_problems(password, self.rules, username)
        if problems:
            raise UserError("; ".join(problems))
        with self._slots:
            return self._hasher.hash(password)

    def _user(self, s: Session, username: str) -> User:
        u = s.scalars(select(User).where(User.username == username)).one_or_none()
        if u is None:
            raise UserError(f"沒有此使用者 no user {username!r}")
        return u

    def add_user(
        self,
        username: str,
        password: str,
        roles: Iterable[str | Role],
        actor: Actor,
        now: datetime,
        display_name: str | None = None,
    ) -> UserView:
        """Add a user; refused for a bad or taken name, an unknown role or a password the rules refuse."""
        if not USERNAME.match(username):
            raise UserError(
                f"帳號格式不符 bad user name {username!r}: letters, digits, '.', '_', '@', '-' (max 64)"
            )
        role_list = _roles(roles)
        hashed = self._hash(username, password)
        with self._sessions.begin() as s:
            # "Wang" beside "wang" would be two accounts people cannot tell apart in the audit log.
            taken = s.scalars(
                select(User.username).where(func.lower(User.username) == username.lower())
            ).first()
            if taken is not None:
                raise UserError(f"使用者已存在 user {taken!r} exists")
            u = User(
                username=username,
                display_name=display_name or username,
                roles=role_list,
                password_hash=hashed,
                disabled=False,
                failed_logins=0,
                locked_until=None,
                password_changed_at=now,
                created_at=now,
            )
            s.add(u)
            s.flush()
            append(s, actor, "user.add", USER_ENTITY, username, after=_public(u), at=now)
            return _view(u)

    def set_password(
        self, username: str, password: str, actor: Actor, now: datetime, keep_session: str | None = None
    ) -> None:
        """Set a new password; the user's sessions end (but `keep_session`, the one changing it) and a
        lock-out is lifted."""
        hashed = self._hash(username, password)
        with self._sessions.begin() as s:
            u = self._user(s, username)
            before = {"password_changed_at": u.password_changed_at.isoformat()}
            u.password_hash, u.password_changed_at = hashed, now
            u.failed_logins, u.locked_until = 0, None
            ended = delete(LoginSession).where(LoginSession.user_id == u.id)
            if keep_session is not None:
                ended = ended.where(LoginSession.id_hash != sec.digest(keep_session))
            s.execute(ended)
            append(
                s,
                actor,
                "user.passwd",
                USER_ENTITY,
                username,
                before=before,
                after={"password_changed_at": now.isoformat()},
                at=now,
            )

    def set_disabled(self, username: str, disabled: bool, actor: Actor, now: datetime) -> UserView:
        """Disable (its sessions end, its tokens stop working) or enable a user."""
        with self._sessions.begin() as s:
            u = self._user(s, username)
            before = _public(u)
            u.disabled = disabled
            if disabled:
                s.execute(delete(LoginSession).where(LoginSession.user_id == u.id))
            else:
                u.failed_logins, u.locked_until = 0, None
            action = "user.disable" if disabled else "user.enable"
            append(s, actor, action, USER_ENTITY, username, before=before, after=_public(u), at=now)
            return _view(u)

    def set_roles(self, username: str, roles: Iterable[str | Role], actor: Actor, now: datetime) -> UserView:
        """Replace a user's roles."""
        role_list = _roles(roles)
        with self._sessions.begin() as s:
            u = self._user(s, username)
            before = _public(u)
            u.roles = role_list
            append(s, actor, "user.roles", USER_ENTITY, username, before=before, after=_public(u), at=now)
            return _view(u)

    def get_user(self, username: str) -> UserView | None:
        """The user called `username`, or None."""
        with self._sessions() as s:
            u = s.scalars(select(User).where(User.username == username)).one_or_none()
            return _view(u) if u else None

    def list_users(self) -> list[UserView]:
        """Every user, by name."""
        with self._sessions() as s:
            return [_view(u) for u in s.scalars(select(User).order_by(User.username))]

    # -- logins and sessions ------------------------------------------------------------------------

    def _verify(self, password_hash: str, password: str) -> bool:
        # argon2 takes 64 MiB per hash by default: a bounded number at a time, so a burst of logins
        # cannot exhaust the box's memory (argon2-cffi docs, "Choosing parameters").
        with self._slots:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    def login(
        self,
        username: str,
        password: str,
        client: str,
        now: datetime,
        policy: LoginThrottle,
        lifetime: timedelta,
    ) -> LoginResult:
        """Check a password and open a session; every outcome is audited (a failure, a lock-out too).

        The password is verified outside any transaction (argon2 takes tens of milliseconds and SQLite
        transactions hold the write lock), then the outcome is applied to the user as it is by then."""
        actor = Actor(username[:64] or "?", f"api:{client}")
        with self._sessions() as s:
            found = s.execute(
                select(User.password_hash, User.failed_logins, User.locked_until).where(
                    User.username == username
                )
            ).first()
        if found is not None and is_locked(LoginState(found[1], found[2]), now):
            with self._sessions.begin() as s:
                append(s, actor, "login.failed", USER_ENTITY, username, note="locked", at=now)
            return LoginResult("locked", locked_until=found[2])
        if found is None:
            # Verify against a dummy hash all the same: the answer takes as long as for a real user,
            # so timing does not tell which names exist.
            if self._dummy is None:
                with self._slots:
                    self._dummy = self._hasher.hash("not-a-password-0")
            self._verify(self._dummy, password)
            correct = False
        else:
            correct = self._verify(found[0], password)
        with self._sessions.begin() as s:
            u = s.scalars(select(User).where(User.username == username)).one_or_none()
            if u is None:
                append(s, actor, "login.failed", USER_ENTITY, username[:64], note="unknown user", at=now)
                return LoginResult("unknown_user")
            state = LoginState(u.failed_logins, u.locked_until)
            if is_locked(state, now):  # locked by a concurrent attempt meanwhile
                append(s, actor, "login.failed", USER_ENTITY, u.username, note="locked", at=now)
                return LoginResult("locked", locked_until=u.locked_until)
            if not correct:
                return self._failed(s, u, actor, now, policy, state)
            if u.disabled:
                append(s, actor, "login.failed", USER_ENTITY, u.username, note="disabled", at=now)
                return LoginResult("disabled")
            if self._hasher.check_needs_rehash(u.password_hash):
                # Stronger argon2 parameters since the hash was made: same password, new hash (not a change).
                u.password_hash = self._hasher.hash(password)
            u.failed_logins, u.locked_until = 0, None
            s.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
            raw, csrf = sec.new_session_id(), sec.new_csrf_token()
            expires = now + lifetime
            s.add(
                LoginSession(
                    id_hash=sec.digest(raw),
                    user_id=u.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=expires,
                    last_seen_at=now,
                    client=client[:200],
                )
            )
            after = {"expires_at": expires.isoformat()}
            append(s, actor, "login", USER_ENTITY, u.username, after=after, at=now)
            return LoginResult("ok", _view(u), raw, csrf, expires)

    @staticmethod
    def _failed(
        s: Session, u: User, actor: Actor, now: datetime, policy: LoginThrottle, state: LoginState
    ) -> LoginResult:
        outcome = after_failure(state, now, policy)
        u.failed_logins, u.locked_until = outcome.state.failures, outcome.state.locked_until
        items = [
            AuditItem(
                "login.failed",
                USER_ENTITY,
                u.username,
                after={"failed_logins": u.failed_logins},
                note="wrong password",
            )
        ]
        if outcome.locked_now and u.locked_until is not None:
            items.append(
                AuditItem(
                    "login.locked",
                    USER_ENTITY,
                    u.username,
                    after={"locked_until": u.locked_until.isoformat()},
                    note=f"{u.failed_logins} wrong passwords in a row",
                )
            )
        append_many(s, actor, items, at=now)
        return LoginResult("wrong_password", locked_until=u.locked_until)

    def check_own_password(
        self, username: str, password: str, client: str, now: datetime, policy: LoginThrottle
    ) -> LoginResult:
        """Check a logged-in user's current password (before they change it): a wrong one counts as a
        failed login and can lock the account, so a left-open session cannot be used to guess it."""
        actor = Actor(username, f"api:{client}")
        with self._sessions() as s:
            found = s.execute(select(User.password_hash).where(User.username == username)).first()
        correct = found is not None and self._verify(found[0], password)
        with self._sessions.begin() as s:
            u = self._user(s, username)
            state = LoginState(u.failed_logins, u.locked_until)
            if is_locked(state, now):
                append(
                    s, actor, "login.failed", USER_ENTITY, username, note="locked (password change)", at=now
                )
                return LoginResult("locked", locked_until=u.locked_until)
            if not correct:
                return self._failed(s, u, actor, now, policy, state)
            return LoginResult("ok", _view(u))

    def resolve_session(self, session_id: str, now: datetime) -> SessionView | None:
        """The live session with this id (None: unknown, expired, or its user disabled)."""
        found = self.look_up_session(session_id)
        if found is None or found.session is None or found.session.expires_at <= now:
            return None
        if touch_due(found.last_use, now):
            self.touch_session(session_id, now)
        return found.session

    def look_up_session(self, session_id: str) -> Credential | None:
        """The session with this id if its user may log in (reads only, deferred: see look_up_token);
        whether it has expired is the caller's check (`session.expires_at`)."""
        with self._reads() as s:
            row = s.get(LoginSession, sec.digest(session_id))
            if row is None:
                return None
            u = s.get(User, row.user_id)
            if u is None or u.disabled:
                return None
            view = SessionView(_view(u), row.csrf_token, row.expires_at)
            return Credential(view.user, row.last_seen_at, view)

    def touch_session(self, session_id: str, now: datetime) -> None:
        """Write a session's last use (a write: call it in a worker thread)."""
        digest = sec.digest(session_id)
        with self._sessions.begin() as s:
            s.execute(update(LoginSession).where(LoginSession.id_hash == digest).values(last_seen_at=now))

    def logout(self, session_id: str, client: str, now: datetime) -> bool:
        """End a session (audited); False when there was none."""
        with self._sessions.begin() as s:
            row = s.get(LoginSession, sec.digest(session_id))
            if row is None:
                return False
            u = s.get(User, row.user_id)
            name = u.username if u else "?"
            s.delete(row)
            append(s, Actor(name, f"api:{client}"), "logout", USER_ENTITY, name, at=now)
            return True

    # -- API tokens ---------------------------------------------------------------------------------

    def create_token(self, name: str, username: str, actor: Actor, now: datetime) -> str:
        """A new API token for `username`, returned once (only its hash is stored)."""
        if not TOKEN_NAME.match(name):
            raise UserError(f"權杖名稱格式不符 bad token name {name!r}: letters, digits, '.', '_', '-'")
        raw = sec.new_api_token()
        with self._sessions.begin() as s:
            u = self._user(s, username)
            if s.scalars(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
                raise UserError(f"權杖名稱已使用 token name {name!r} is taken")
            s.add(ApiToken(token_hash=sec.digest(raw), name=name, user_id=u.id, created_at=now))
            append(s, actor, "token.create", TOKEN_ENTITY, name, after={"user": u.username}, at=now)
        return raw

    def revoke_token(self, name: str, actor: Actor, now: datetime) -> None:
        """Revoke a token by name; it stays listed as revoked."""
        with self._sessions.begin() as s:
            t = s.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()
            if t is None:
                raise UserError(f"沒有此權杖 no token {name!r}")
            if t.revoked_at is not None:
                raise UserError(f"權杖已撤銷 token {name!r} is already revoked")
            t.revoked_at = now
            append(
                s, actor, "token.revoke", TOKEN_ENTITY, name, after={"revoked_at": now.isoformat()}, at=now
            )

    def list_tokens(self) -> list[TokenView]:
        """Every token's record, by name."""
        with self._sessions() as s:
            rows = s.execute(select(ApiToken, User.username).join(User).order_by(ApiToken.name)).all()
            return [TokenView(t.name, un, t.created_at, t.last_used_at, t.revoked_at) for t, un in rows]

    def resolve_token(self, token: str, now: datetime) -> UserView | None:
        """The user of a live token (None: unknown, revoked, or its user disabled)."""
        found = self.look_up_token(token)
        if found is None:
            return None
        if touch_due(found.last_use, now):
            self.touch_token(token, now)
        return found.user

    def look_up_token(self, token: str) -> Credential | None:
        """The user of a live token and its last use (one indexed read in a deferred transaction: under
        WAL it never waits for a writer, so the event loop may call it)."""
        if not token.startswith(sec.TOKEN_PREFIX):
            return None
        q = (
            select(ApiToken.revoked_at, ApiToken.last_used_at, *_USER_COLUMNS)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == sec.digest(token))
        )
        with self._read_engine.connect() as conn:  # Core, not a Session: this runs on every request
            found = conn.execute(q).one_or_none()
        if found is None:
            return None
        revoked_at, last_used_at, uid, name, display, roles, disabled, failed, locked, changed, created = (
            found
        )
        view = UserView(uid, name, display, tuple(roles), disabled, failed, locked, changed, created)
        if revoked_at is not None or view.disabled:
            return None
        return Credential(view, last_used_at)

    def touch_token(self, token: str, now: datetime) -> None:
        """Write a token's last use (a write: call it in a worker thread)."""
        with self._sessions.begin() as s:
            s.execute(
                update(ApiToken).where(ApiToken.token_hash == sec.digest(token)).values(last_used_at=now)
            )
