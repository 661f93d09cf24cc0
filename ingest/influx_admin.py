"""Apply the retention layout of `ingest.retention` to an InfluxDB 1.x server over its HTTP `/query` API.

Credentials go as HTTP Basic auth, as `InfluxV1Writer` sends them (never as u=/p= query parameters, which
land in access logs). Creating databases, retention policies and continuous queries needs an admin user
in InfluxDB 1.x ("Authentication and authorization": database management and continuous queries are
admin statements); the rollup backfill (SELECT … INTO) only needs the ingest user's ALL on the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import aiohttp

from ingest.retention import (
    Action,
    Policy,
    RetentionSpec,
    ServerState,
    Step,
    backfill_ranges,
    backfill_statements,
    parse_go_duration,
    plan,
    quote_ident,
)

MAX_ERROR_CHARS = 2000


class InfluxAdminError(RuntimeError):
    """A statement failed (HTTP error, an error in its result, or no usable answer)."""

    def __init__(self, statement: str, error: str, status: int | None = None) -> None:
        self.statement = statement
        self.error = error[:MAX_ERROR_CHARS]
        self.status = status
        where = f" (HTTP {status})" if status not in (None, 200) else ""
        hint = ""
        if status in (401, 403) or "admin privilege" in error:
            hint = " — 需要 InfluxDB 管理員帳號 needs an InfluxDB admin user: --admin NAME"
        super().__init__(f"InfluxQL {statement[:300]!r} failed{where}: {self.error}{hint}")


class InfluxAdmin:
    """InfluxQL statements one at a time through POST /query; each answer's series as plain dicts."""

    def __init__(
        self, url: str, username: str | None = None, password: str | None = None, timeout_s: float = 600.0
    ) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.__password = password  # name-mangled, out of __repr__
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        user = f" user={self.username}" if self.username else ""
        return f"<InfluxAdmin {self.url}{user}>"

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            auth = aiohttp.BasicAuth(self.username, self.__password or "") if self.username else None
            # A backfill chunk is computed before the answer starts: bound the silence, not the total.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self.timeout_s)
            self._session = aiohttp.ClientSession(auth=auth, timeout=timeout)
        return self._session

    async def run(self, statement: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run one statement; the series of its result (raises InfluxAdminError)."""
        form = {"q": statement, "epoch": "ns"}
        if database:
            form["db"] = database
        try:
            async with self._client().post(self.url + "/query", data=form) as resp:
                body = await resp.text(errors="replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            text = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            raise InfluxAdminError(statement, text) from exc
        try:
            doc = json.loads(body)
        except ValueError:
            raise InfluxAdminError(statement, body.strip() or "not a JSON answer", status) from None
        if not isinstance(doc, dict):
            raise InfluxAdminError(statement, f"unexpected answer {body[:200]!r}", status)
        if status != 200 or isinstance(doc.get("error"), str):
            raise InfluxAdminError(statement, str(doc.get("error") or body.strip()), status)
        series: list[dict[str, Any]] = []
        for result in doc.get("results", []) or []:
            if isinstance(result.get("error"), str):
                raise InfluxAdminError(statement, result["error"], status)
            series += result.get("series", []) or []
        return series

    async def state(self, database: str) -> ServerState:
        """The database's retention policies and continuous queries as the server has them."""
        names = {row[0] for s in await self.run("SHOW DATABASES") for row in s.get("values") or []}
        if database not in names:
            return ServerState(database_exists=False)
        policies: dict[str, Policy] = {}
        for s in await self.run(f"SHOW RETENTION POLICIES ON {quote_ident(database)}"):
            for values in s.get("values") or []:
                row = dict(zip(s["columns"], values, strict=True))
                name = str(row["name"])
                policies[name] = Policy(name, parse_go_duration(str(row["duration"])), bool(row["default"]))
        cqs: dict[str, str] = {}
        for s in await self.run("SHOW CONTINUOUS QUERIES"):
            if s.get("name") == database:
                cqs.update({str(n): str(q) for n, q in s.get("values") or []})
        return ServerState(True, policies, cqs)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def setup_db(admin: InfluxAdmin, spec: RetentionSpec) -> list[Step]:
    """Bring the server to `spec`; the steps taken (KEEP for what was already right)."""
    steps = plan(spec, await admin.state(spec.database))
    for step in steps:
        for statement in step.statements:
            await admin.run(statement)
    return steps


def changed(steps: list[Step]) -> bool:
    """Did any step change the server?"""
    return any(s.action is not Action.KEEP for s in steps)


async def backfill(
    admin: InfluxAdmin,
    spec: RetentionSpec,
    start: datetime,
    end: datetime,
    *,
    source_policy: str | None = None,
    progress: Callable[[datetime, datetime, int], None] | None = None,
) -> int:
    """Roll up [start, end) (widened to whole minutes) into `rollup_1m`; the number of points written."""
    total = 0
    for lo, hi in backfill_ranges(start, end):
        written = 0
        for statement in backfill_statements(spec, lo, hi, source_policy=source_policy):
            for s in await admin.run(statement, spec.database):
                # SELECT … INTO answers with one row: (time 0, written N).
                cols = s.get("columns") or []
                for values in s.get("values") or []:
                    written += int(dict(zip(cols, values, strict=True)).get("written") or 0)
        total += written
        if progress is not None:
            progress(lo, hi, written)
    return total


__all__ = ["InfluxAdmin", "InfluxAdminError", "backfill", "changed", "setup_db"]
