"""Shared by the web API tests: a migrated records database per test (copied from one migrated once),
a cheap argon2 hasher, a clock the test moves, and users of every role."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine

from api.store import ApiStore
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade

# argon2's defaults take 64 MiB and tens of ms per hash; the tests check the logic, not the cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
ADMIN_CLI = Actor("root", "cli:edge-1/root")
PASSWORD = "s3cret-pass"
USERS = {
    "alice": ["admin"],
    "vera": ["viewer"],
    "otto": ["operator"],
    "april": ["approver"],
    "audrey": ["auditor"],
}


class Clock:
    """A UTC clock that moves only when the test sets `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def migrated_template(folder: Path) -> Path:
    """A records database migrated to head, to be copied per test."""
    db = folder / "template.db"
    upgrade(db)
    return db


def fresh_engine(template: Path, folder: Path) -> Engine:
    """An engine on a private copy of the migrated template."""
    db = folder / "records.db"
    shutil.copy(template, db)
    return make_engine(db)


def store_with_users(engine: Engine) -> ApiStore:
    """The store over `engine` with one user of each role (password PASSWORD)."""
    store = ApiStore(session_factory(engine), hasher=FAST_HASHER)
    for name, roles in USERS.items():
        store.add_user(name, PASSWORD, roles, ADMIN_CLI, T0, display_name=name.title())
    return store


def login_form_token(page_html: str) -> str:
    """The login form's CSRF token (hidden field `login_csrf`) in the HTML of GET /login."""
    m = re.search(r'name="login_csrf" value="([^"]*)"', page_html)
    assert m, "no login_csrf field in the login form"
    return m.group(1)


def form_login(client: Any, user: str, password: str = PASSWORD, next: str = "/") -> Any:
    """Log in through the browser's form (GET /login for its CSRF cookie and field, then POST /login);
    `client` keeps cookies (a TestClient or an httpx.Client). Returns the POST's response (303 when ok)."""
    token = login_form_token(client.get("/login").text)
    data = {"username": user, "password": password, "next": next, "login_csrf": token}
    return client.post("/login", data=data, follow_redirects=False)
