"""Shared by the compliance API tests: the app over a migrated records database with users of every role
and the example site (unreachable InfluxDB: packs say so), and a client per user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from api.context import AppContext
from compliance.store import Records
from records.audit import AuditEntry, verify
from records.db import session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import example_site
from testkit.services import free_tcp_port
from tests.api_support import FAST_HASHER, PASSWORD, T0, Clock, fresh_engine, store_with_users


@dataclass
class Env:
    """One test's app: its database, clock, site, state dir."""

    app: FastAPI
    engine: Engine
    clock: Clock
    site: SiteConfig
    state_dir: Path

    @property
    def ctx(self) -> AppContext:
        ctx = self.app.state.ctx
        assert isinstance(ctx, AppContext)
        return ctx

    @property
    def records(self) -> Records:
        return Records(session_factory(self.engine))

    def client(self, user: str | None = None) -> TestClient:
        """A client logged in as `user` (its CSRF header set), or anonymous."""
        client = TestClient(self.app, raise_server_exceptions=False)
        if user is not None:
            r = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return client

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        """Audit entries (the chain verified first), of one action if given."""
        with session_factory(self.engine)() as s:
            report = verify(s)
            assert report.ok, report.problems
            q = select(AuditEntry).order_by(AuditEntry.seq)
            if action:
                q = q.where(AuditEntry.action == action)
            return list(s.scalars(q))


def site_file(folder: Path) -> SiteConfig:
    """The example site, its InfluxDB on a closed loopback port."""
    url = f"http://127.0.0.1:{free_tcp_port()}"
    path, _ = example_site(
        folder / "site.yaml", influxdb=f"influxdb:\n  url: {url}\n  api: v1\n  database: rg\n"
    )
    return load_site(path)


def make_env(template: Path, tmp_path: Path) -> Iterator[Env]:
    """The app over a copy of the migrated `template` with every role's user and the example site."""
    engine = fresh_engine(template, tmp_path)
    store_with_users(engine)
    clock = Clock(T0)
    site = site_file(tmp_path)
    state = tmp_path / "state"
    app = create_app(
        ApiConfig(), records_url=engine, state_dir=state, site=site, clock=clock, hasher=FAST_HASHER
    )
    yield Env(app, engine, clock, site, state)
    engine.dispose()


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error body, checked: status, code, request id, no trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text
    return dict(body)
