"""An async InfluxQL client of the v1 `/query` API, for the compliance reports' aggregate queries.

InfluxDB 1.x serves `/query` natively; 2.x and 3.x serve it through a DBRP mapping of the bucket (the
bucket's name is the `db`, the token goes in `Authorization: Token …`). Values go into statements as
bound parameters (`$name`, sent as JSON in `params`): the server parses them as literals, so site, room
and device ids in Chinese or with quotes need no escaping. Identifiers cannot be bound in InfluxQL 1.x;
`quote_ident` and `quote_string` are the escaping for what must be written into the statement.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp

if TYPE_CHECKING:
    from siteconfig.config import SiteConfig

# Longest server error text kept in an InfluxQueryError (1.x can echo long statements back), and the
# longest statement quoted in its message (the attribute keeps it whole).
MAX_ERROR_CHARS = 2000
MAX_QUOTED_STATEMENT_CHARS = 1000
# Points per chunk of a streamed (chunked=true) response: InfluxDB 1.x's own default.
DEFAULT_CHUNK_SIZE = 10_000
# One chunk of 10 000 rows is a few MB of JSON; a line beyond this is not a chunk but a runaway.
MAX_CHUNK_BYTES = 256 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A datetime parameter is sent as RFC 3339 UTC, which InfluxQL compares `time` with.
ParamValue = str | int | float | bool | datetime
Params = Mapping[str, ParamValue]


class InfluxQueryError(RuntimeError):
    """A query failed: HTTP error, statement error inside the results, or no usable response."""

    def __init__(self, statement: str, error: str, status: int | None = None) -> None:
        self.statement = statement
        self.error = error[:MAX_ERROR_CHARS]
        self.status = status
        where = f" (HTTP {status})" if status is not None and status != 200 else ""
        quoted = (
            statement
            if len(statement) <= MAX_QUOTED_STATEMENT_CHARS
            else statement[:MAX_QUOTED_STATEMENT_CHARS] + "…"
        )
        super().__init__(f"InfluxQL {quoted!r} failed{where}: {self.error}")


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a result: measurement name, GROUP BY tags, columns and rows (`time` as datetime)."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> Iterator[dict[str, Any]]:
        """Each row as {column: value}."""
        for row in self.values:
            yield dict(zip(self.columns, row, strict=True))


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (measurement, field, tag key, retention policy)."""
    return '"' + _escape(name, '"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes; prefer a bound parameter where one is allowed."""
    return "'" + _escape(value, "'") + "'"


def _escape(text: str, quote: str) -> str:
    # InfluxQL's scanner knows the escapes \\ \" \' and \n, nothing else; it rejects a raw newline, and a
    # raw CR ends the token too, so a value holding one cannot be written as a literal at all. (Tag values
    # never hold one: the line encoder turns CR/LF into spaces, docs/influx-schema.md.)
    if "\r" in text:
        raise ValueError(f"InfluxQL literals cannot hold a carriage return: {text!r}")
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def number(value: float) -> str:
    """A finite float as an InfluxQL number literal: its shortest exact digits, never in exponent form
    (InfluxQL has no exponent syntax: `1e-05` would not parse)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text = format(Decimal(repr(float(value))), "f")
    text = text.removesuffix(".0")
    return "0" if text == "-0" else text


def time_literal(ts: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with microseconds, the form InfluxQL compares `time` with."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()}: give a time zone")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime:
    """The `time` column as an aware UTC datetime: epoch nanoseconds (int) or RFC 3339 text."""
    if isinstance(value, int) and not isinstance(value, bool):
        # Whole microseconds, exactly: a float division would round at today's ~1.8e18 ns.
        return _EPOCH + timedelta(microseconds=value // 1000)
    if isinstance(value, str):
        text = value.replace("Z", "+00:00") if value.endswith("Z") else value
        # Python 3.11 reads at most 6 fraction digits; InfluxDB writes up to 9 (`…00.123456789Z`).
        head, dot, rest = text.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise ValueError(f"time without offset: {value!r}")
        return parsed.astimezone(UTC)
    raise ValueError(f"not a time value: {value!r}")


def _series(doc: Mapping[str, Any]) -> Series:
    columns = [str(c) for c in doc.get("columns", [])]
    values = [list(row) for row in doc.get("values", []) or []]
    if "time" in columns:
        i = columns.index("time")
        for row in values:
            if row[i] is not None:
                row[i] = parse_time(row[i])
    tags = {str(k): str(v) for k, v in (doc.get("tags") or {}).items()}
    return Series(str(doc.get("name", "")), tags, columns, values)


def _error_text(body: str) -> str:
    """The server's message: 1.x sends {"error": …}, 2.x/3.x {"code", "message"} or {"error": …}."""
    text = body.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or "no error text"
    if isinstance(doc, dict):
        msg = doc.get("error") or doc.get("message")
        if isinstance(msg, str):
            return msg
    return text


class InfluxQL:
    """Async client of `/query` (InfluxQL) with bound parameters; results as `Series` with datetimes.

    `timeout_s` is the longest the server may stay silent: a non-chunked answer comes when the whole
    query is done, so it bounds one request's computing time.
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        retention_policy: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.username = username
        self.retention_policy = retention_policy
        self.timeout_s = timeout_s
        # Name-mangled and left out of __repr__: a client printed in a log line shows no secret.
        self.__password = password
        self.__token = token
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_site(cls, site: SiteConfig, *, timeout_s: float = 300.0) -> InfluxQL:
        """The client of `site.influxdb`, secrets resolved as ingest resolves them (api v1 or v2)."""
        db = site.influxdb
        if db is None:
            raise ValueError("the site configuration has no influxdb section; there is nothing to query")
        if db.api == "v1":
            if db.database is None:
                raise ValueError("influxdb.database: required with api v1")
            password = db.password.resolve() if db.password is not None else None
            return cls(db.url, db.database, username=db.username, password=password, timeout_s=timeout_s)
        if db.bucket is None:
            raise ValueError("influxdb.bucket: required with api v2")
        # 2.x/3.x answer InfluxQL for a bucket through its DBRP mapping, addressed by the bucket's name.
        token = db.token.resolve() if db.token is not None else None
        return cls(db.url, db.bucket, token=token, timeout_s=timeout_s)

    def __repr__(self) -> str:
        auth = " token" if self.__token else (f" user={self.username}" if self.username else "")
        return f"<InfluxQL {self.url} db={self.database}{auth}>"

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self.__token:
                headers["Authorization"] = f"Token {self.__token}"
            elif self.username:
                # Basic auth rather than u=/p= parameters, so the password never lands in access logs.
                # Encoded here: aiohttp 3.14 deprecates BasicAuth, older releases lack its successor.
                pair = f"{self.username}:{self.__password or ''}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            # No total limit: a month of aggregates over many sensors, or a streamed half year, may
            # rightly take minutes. What is bounded is the server's silence (and connecting).
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self.timeout_s)
            self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        return self._session

    def _form(self, q: str, params: Params | None, chunk_size: int | None) -> dict[str, str]:
        form = {"db": self.database, "q": q, "epoch": "ns"}
        if self.retention_policy:
            form["rp"] = self.retention_policy
        if params:
            values = {k: time_literal(v) if isinstance(v, datetime) else v for k, v in params.items()}
            form["params"] = json.dumps(values, ensure_ascii=False)
        if chunk_size is not None:
            form["chunked"] = "true"
            form["chunk_size"] = str(chunk_size)
        return form

    async def query(self, q: str, params: Params | None = None) -> list[Series]:
        """Run `q` (one statement, or several separated by `;`) and return all series in order."""
        return [s for result in await self._results(q, params, [q]) for s in result]

    async def query_each(self, statements: Sequence[str], params: Params | None = None) -> list[list[Series]]:
        """Run several statements in one request; the series of each, in the order given."""
        if not statements:
            return []
        return await self._results("; ".join(statements), params, list(statements))

    async def _results(self, q: str, params: Params | None, statements: list[str]) -> list[list[Series]]:
        form = self._form(q, params, None)
        try:
            async with self._client().post(self.url + "/query", data=form) as resp:
                body = await resp.text(errors="replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxQueryError(q, _transport_text(exc)) from exc
        if status != 200:
            raise InfluxQueryError(q, _error_text(body), status)
        try:
            doc = json.loads(body)
        except ValueError:
            raise InfluxQueryError(q, f"not a JSON answer: {body[:200]!r}", status) from None
        out: list[list[Series]] = [[] for _ in statements]
        for sid, series in self._walk(doc, q, statements):
            out[min(sid, len(out) - 1)].append(series)
        return out

    async def stream(
        self, q: str, params: Params | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[Series]:
        """Run `q` with `chunked=true` and yield series pieces as they arrive (bounded memory).

        A long series comes in several pieces of at most `chunk_size` rows, in order, each with the
        series' name and tags; a consumer that walks rows needs no merging.
        """
        form = self._form(q, params, chunk_size)
        try:
            async with self._client().post(self.url + "/query", data=form) as resp:
                if resp.status != 200:
                    raise InfluxQueryError(q, _error_text(await resp.text(errors="replace")), resp.status)
                async for doc in _json_lines(resp.content, q):
                    for _sid, series in self._walk(doc, q, [q]):
                        yield series
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxQueryError(q, _transport_text(exc)) from exc

    @staticmethod
    def _walk(doc: Any, q: str, statements: list[str]) -> Iterator[tuple[int, Series]]:
        """(statement id, series) of one response document; errors raised naming their statement."""
        if not isinstance(doc, dict):
            raise InfluxQueryError(q, f"unexpected answer: {str(doc)[:200]}")
        if isinstance(doc.get("error"), str):
            raise InfluxQueryError(q, doc["error"])
        for result in doc.get("results", []) or []:
            sid = result.get("statement_id", 0)
            sid = sid if isinstance(sid, int) and sid >= 0 else 0
            if isinstance(result.get("error"), str):
                stmt = statements[sid] if sid < len(statements) else q
                raise InfluxQueryError(stmt, result["error"])
            for series in result.get("series", []) or []:
                yield sid, _series(series)

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


def _transport_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"


async def _json_lines(content: aiohttp.StreamReader, q: str) -> AsyncIterator[Any]:
    """The JSON documents of a chunked answer, one per line (a server that ignores chunked=true sends
    one document, which may span lines: lines are joined until they parse)."""
    buf = b""
    pending = b""
    async for data in content.iter_any():
        buf += data
        while (nl := buf.find(b"\n")) != -1:
            line, buf = buf[:nl], buf[nl + 1 :]
            pending += line
            doc = _try_json(pending)
            if doc is not _INCOMPLETE:
                pending = b""
                yield doc
            elif len(pending) > MAX_CHUNK_BYTES:
                raise InfluxQueryError(q, f"a chunk of over {MAX_CHUNK_BYTES} bytes; lower chunk_size")
            else:
                pending += b"\n"
    pending += buf
    if pending.strip():
        doc = _try_json(pending)
        if doc is _INCOMPLETE:
            raise InfluxQueryError(q, f"truncated or not JSON: {pending[:200]!r}")
        yield doc


_INCOMPLETE = object()


def _try_json(raw: bytes) -> Any:
    if not raw.strip():
        return _INCOMPLETE
    try:
        return json.loads(raw)
    except ValueError:
        return _INCOMPLETE


__all__ = [
    "InfluxQL",
    "InfluxQueryError",
    "Series",
    "number",
    "parse_time",
    "quote_ident",
    "quote_string",
    "time_literal",
]
