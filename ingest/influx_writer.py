"""Write line-protocol batches to InfluxDB: the v1 `/write` API (InfluxDB 1.x) or the v2 write API.

Both writers return a `WriteResult` instead of raising, so the ingest loop has one decision to make:
accepted → ack the MQTT messages; retryable → keep the batch and retry with backoff; rejected → the
batch itself is invalid, dead-letter it with `reason`. Writes are idempotent in InfluxDB and
VictoriaMetrics (same series + timestamp overwrites), so retrying a batch that timed out after the
server stored it does not duplicate points.
"""

from __future__ import annotations

import gzip as gzip_lib
import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import aiohttp

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
    from influxdb_client.client.write_api_async import WriteApiAsync

log = logging.getLogger(__name__)

# Longest server error text kept in a result: InfluxDB lists every bad point in a partial-write error.
MAX_REASON_CHARS = 2000


class WriteOutcome(StrEnum):
    """What the caller does with the batch."""

    ACCEPTED = "accepted"
    RETRYABLE = "retryable"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of one batch write, with the HTTP status (None without a response) and the reason."""

    outcome: WriteOutcome
    status: int | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """The server stored the whole batch."""
        return self.outcome is WriteOutcome.ACCEPTED

    @property
    def retryable(self) -> bool:
        """Transient failure: keep the batch, retry later."""
        return self.outcome is WriteOutcome.RETRYABLE

    @property
    def rejected(self) -> bool:
        """The server refused the batch as invalid: dead-letter it with `reason`."""
        return self.outcome is WriteOutcome.REJECTED


ACCEPTED = WriteResult(WriteOutcome.ACCEPTED, 204)


def _logged(api: str, lines: int, result: WriteResult) -> WriteResult:
    """Log a write that was not accepted (retryable or rejected), then hand the result back."""
    if not result.accepted:
        log.warning("influx %s write of %d lines %s: %s", api, lines, result.outcome, result.reason)
    return result


def classify(status: int, body: str) -> WriteResult:
    """Map an HTTP status and error body to a WriteResult.

    5xx and 429 (rate limit / InfluxDB Cloud quota) are transient. 401/403 (credentials) and 404
    (database or bucket missing) are configuration faults, not faults of the batch: dead-lettering would
    throw away good data, so they are retryable too and the reason says why. Any other 4xx — 400 bad
    line protocol, partial write, field type conflict; 413 too large; 422 outside retention — is the
    batch's fault and is rejected.
    """
    if 200 <= status < 300:
        return WriteResult(WriteOutcome.ACCEPTED, status)
    reason = _error_text(body) or f"HTTP {status}"
    if status >= 500 or status in (401, 403, 404, 408, 429):
        return WriteResult(WriteOutcome.RETRYABLE, status, reason)
    return WriteResult(WriteOutcome.REJECTED, status, reason)


def _error_text(body: str) -> str:
    """The server's message: InfluxDB 1.x sends {"error": …}, 2.x {"code", "message"}, VM plain text."""
    text = body.strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:MAX_REASON_CHARS]
    if isinstance(doc, dict):
        msg = doc.get("error") or doc.get("message")
        if isinstance(msg, str):
            return msg[:MAX_REASON_CHARS]
    return text[:MAX_REASON_CHARS]


def _transport_failure(exc: BaseException) -> WriteResult:
    """Connection refused/reset, DNS, TLS or timeout: always retryable."""
    if isinstance(exc, TimeoutError):
        return WriteResult(WriteOutcome.RETRYABLE, None, "timeout")
    return WriteResult(WriteOutcome.RETRYABLE, None, f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS])


class InfluxWriter(Protocol):
    """One batch of line-protocol lines in, one WriteResult out."""

    async def write(self, lines: list[str]) -> WriteResult:
        """Write the lines (nanosecond timestamps) as one request."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


class InfluxV1Writer:
    """InfluxDB 1.x `POST /write?db=…&precision=ns` over aiohttp, credentials as HTTP Basic auth."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        gzip: bool = False,
        retention_policy: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.username = username
        self.__password = password
        self.timeout_s = timeout_s
        self.gzip = gzip
        self.retention_policy = retention_policy
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        user = f" user={self.username}" if self.username else ""
        return f"<InfluxV1Writer {self.url} db={self.database}{user} gzip={self.gzip}>"

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            # Basic auth rather than u=/p= query parameters (both accepted by InfluxDB 1.x, docs
            # "Authentication and authorization"), so the password never lands in URLs or access logs.
            auth = aiohttp.BasicAuth(self.username, self.__password or "") if self.username else None
            self._session = aiohttp.ClientSession(
                auth=auth, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def write(self, lines: list[str]) -> WriteResult:
        """POST the lines; never raises for server or network failures."""
        if not lines:
            return ACCEPTED
        body = ("\n".join(lines) + "\n").encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip_lib.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        try:
            async with self._client().post(
                self.url + "/write", params=params, data=body, headers=headers
            ) as resp:
                text = await resp.text(errors="replace")
                result = classify(resp.status, text)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result = _transport_failure(exc)
        return _logged("v1", len(lines), result)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class InfluxV2Writer:
    """The v2 write API through `influxdb-client` (InfluxDB 2.x/3.x, 1.8+ compat, VictoriaMetrics)."""

    def __init__(
        self,
        url: str,
        bucket: str,
        org: str,
        token: str,
        timeout_s: float = 10.0,
        gzip: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self.__token = token
        self.timeout_s = timeout_s
        self.gzip = gzip
        self._client: InfluxDBClientAsync | None = None  # imported lazily: a heavy import

    def __repr__(self) -> str:
        return f"<InfluxV2Writer {self.url} org={self.org} bucket={self.bucket} gzip={self.gzip}>"

    def _api(self) -> WriteApiAsync:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        if self._client is None:
            # Must be built inside the running loop (it creates its aiohttp session there).
            self._client = InfluxDBClientAsync(
                url=self.url,
                token=self.__token,
                org=self.org,
                timeout=int(self.timeout_s * 1000),  # milliseconds, per its docstring
                enable_gzip=self.gzip,
            )
        return self._client.write_api()

    async def write(self, lines: list[str]) -> WriteResult:
        """Write the lines with nanosecond precision; never raises for server or network failures."""
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        if not lines:
            return ACCEPTED
        api = self._api()
        try:
            # WritePrecision.NS is the plain string "ns"; the library annotates the enum class itself.
            await api.write(
                bucket=self.bucket,
                org=self.org,
                record=lines,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
            result = ACCEPTED
        except ApiException as exc:
            if exc.status:
                raw = exc.body
                body = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
                result = classify(int(exc.status), body or str(exc.reason or ""))
            else:  # status 0: the client could not even build the request — a programming error
                raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result = _transport_failure(exc)
        return _logged("v2", len(lines), result)

    async def close(self) -> None:
        """Close the client and its HTTP session."""
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]  # library is untyped
        self._client = None


__all__ = [
    "InfluxV1Writer",
    "InfluxV2Writer",
    "InfluxWriter",
    "WriteOutcome",
    "WriteResult",
    "classify",
]
