# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Retention policies and 1-minute rollups of an InfluxDB 1.x database, as InfluxQL statements (pure).

The layout (docs/influx-schema.md, "Retention"): raw polls in the default policy (`raw`, 400 days),
1-minute rollups in `rollup_1m` (1830 days, the five-year CC-16000 evidence horizon), written by one
continuous query per measurement (device class):

    SELECT mean(*), min(*), max(*), count(*), last(*) INTO db.rollup_1m.<m> FROM db.raw.<m>
    GROUP BY time(1m), * fill(none)

InfluxDB 1.6 expands each wildcard to the fields its function accepts (checked against influxd 1.6):
`mean` numbers only; `min`/`max` numbers and booleans (max_on_battery: on battery at any time of the
minute); `count` and `last` every type, so enum states (`last_output_source`, compliance `last_status`)
survive, and `count_quality` (polls) next to `count_<metric>` (good values) keeps the evidence of missing
data. `GROUP BY *` keeps every tag; `fill(none)` writes no point for a minute without readings, so a gap
stays a gap. `RESAMPLE EVERY 1m FOR <resample_for>` recomputes the recent past each minute: readings that
reach the database late (ingest batching, a broker hiccup, the collector's backlog after a short outage)
still land in their minute. Longer backlogs are rolled up with `backfill_statements` (`roomguard ingest
SITE rollup`), the same SELECT over an explicit time range.

`plan` compares the wanted layout with what the server has (SHOW DATABASES / RETENTION POLICIES /
CONTINUOUS QUERIES) and returns only the statements that change something: 1.x cannot alter a continuous
query, so a differing one is dropped and created again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from devices.reading import DeviceClass
from siteconfig.config import SiteConfig
from siteconfig.config_types import duration_seconds

ROLLUP_POLICY = "rollup_1m"
ROLLUP_INTERVAL = "1m"
# The aggregates of every rollup point, in the order their fields appear (`mean_temp_c`, …).
AGGREGATES = ("mean", "min", "max", "count", "last")
# One measurement per device class (docs/influx-schema.md, "Measurements").
MEASUREMENTS = tuple(c.value for c in DeviceClass)
# Backfill in pieces: one statement's result is built in memory by influxd before it is written.
BACKFILL_CHUNK = timedelta(hours=6)
_MINUTE = timedelta(minutes=1)
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_GO_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class RetentionUnsupported(ValueError):
    """The site's database is not InfluxDB 1.x (api v1): retention is managed there another way."""


@dataclass(frozen=True, slots=True)
class RetentionSpec:
    """What the database should look like: its name, the two policies and the rollup recompute window."""

    database: str
    raw_policy: str = "raw"
    raw: str = "400d"
    rollup: str = "1830d"
    resample_for: str = "10m"
    measurements: tuple[str, ...] = MEASUREMENTS

    @classmethod
    def from_site(cls, site: SiteConfig) -> RetentionSpec:
        """The spec of `site.influxdb` (RetentionUnsupported for api v2 or no influxdb section)."""
        db = site.influxdb
        if db is None:
            raise RetentionUnsupported("the site configuration has no influxdb section 設定檔沒有 influxdb")
        if db.api != "v1" or db.database is None:
            raise RetentionUnsupported(
                "influxdb.api is v2: InfluxDB 2.x/3.x keep retention as the bucket's retention period and "
                "downsample with a task (InfluxQL clients reach the bucket through a DBRP mapping); "
                "setup-db and rollup manage InfluxDB 1.x only (api: v1). "
                "InfluxDB 2.x/3.x 以 bucket 保存期限與 task 降採樣；本指令僅支援 1.x。"
            )
        r = db.retention
        return cls(db.database, r.raw_policy, r.raw, r.rollup, r.resample_for)


@dataclass(frozen=True, slots=True)
class Policy:
    """A retention policy as SHOW RETENTION POLICIES reports it."""

    name: str
    duration_s: float  # 0 = infinite
    default: bool


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the server has for the database (empty when the database does not exist)."""

    database_exists: bool
    policies: Mapping[str, Policy] = field(default_factory=dict)
    continuous_queries: Mapping[str, str] = field(default_factory=dict)  # name → CREATE text


class Action(StrEnum):
    """What `plan` does about one object."""

    CREATE = "create"
    ALTER = "alter"
    REPLACE = "replace"  # drop + create (continuous queries cannot be altered in 1.x)
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class Step:
    """One object of the layout, what happens to it and the statements that do it (none for KEEP)."""

    action: Action
    what: str  # "database roomguard", "retention policy raw", "continuous query rollup_1m_ups"
    statements: tuple[str, ...] = ()
    note: str = ""


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (database, policy, measurement, query name)."""
    if "\r" in name or "\n" in name:
        raise ValueError(f"InfluxQL identifiers cannot hold a line break: {name!r}")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def time_literal(ts: datetime) -> str:
    """An aware datetime as an RFC 3339 UTC string literal, the form InfluxQL compares `time` with."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()}: give a time zone")
    return "'" + ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def parse_go_duration(text: str) -> float:
    """Seconds of a Go duration as InfluxDB prints it (`9600h0m0s`; `0s` = infinite)."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _GO_UNIT_S[u] for n, u in parts)


def cq_name(measurement: str) -> str:
    """Name of the continuous query that rolls up `measurement`."""
    return f"{ROLLUP_POLICY}_{measurement}"


def rollup_select(
    spec: RetentionSpec, measurement: str, where: str = "", source_policy: str | None = None
) -> str:
    """The SELECT … INTO of one measurement's rollup (the continuous query's body, or a backfill's)."""
    db = quote_ident(spec.database)
    target = f"{db}.{quote_ident(ROLLUP_POLICY)}.{quote_ident(measurement)}"
    source = f"{db}.{quote_ident(source_policy or spec.raw_policy)}.{quote_ident(measurement)}"
    fields = ", ".join(f"{agg}(*)" for agg in AGGREGATES)
    cond = f" WHERE {where}" if where else ""
    # Identifiers are quoted by quote_ident and times are formatted datetimes: nothing here is user text.
    return (
        f"SELECT {fields} INTO {target} FROM {source}{cond} "  # noqa: S608
        f"GROUP BY time({ROLLUP_INTERVAL}), * fill(none)"
    )


def cq_statement(spec: RetentionSpec, measurement: str) -> str:
    """CREATE CONTINUOUS QUERY of one measurement."""
    return (
        f"CREATE CONTINUOUS QUERY {quote_ident(cq_name(measurement))} ON {quote_ident(spec.database)} "
        f"RESAMPLE EVERY {ROLLUP_INTERVAL} FOR {spec.resample_for} "
        f"BEGIN {rollup_select(spec, measurement)} END"
    )


def _create_policy(spec: RetentionSpec, name: str, duration: str, default: bool) -> str:
    tail = " DEFAULT" if default else ""
    return (
        f"CREATE RETENTION POLICY {quote_ident(name)} ON {quote_ident(spec.database)} "
        f"DURATION {duration} REPLICATION 1{tail}"
    )


def _alter_policy(spec: RetentionSpec, name: str, duration: str, default: bool) -> str:
    tail = " DEFAULT" if default else ""
    db = quote_ident(spec.database)
    return f"ALTER RETENTION POLICY {quote_ident(name)} ON {db} DURATION {duration}{tail}"


def fresh_statements(spec: RetentionSpec) -> list[str]:
    """Every statement for a server without the database (what `setup-db --print` shows)."""
    return [s for step in plan(spec, ServerState(database_exists=False)) for s in step.statements]


def same_query(a: str, b: str) -> bool:
    """Do two CREATE CONTINUOUS QUERY texts say the same? SHOW CONTINUOUS QUERIES prints the statement
    re-formatted (identifiers quoted only where needed), so quotes and runs of blanks do not count."""

    def norm(text: str) -> str:
        return " ".join(text.replace('"', "").split())

    return norm(a) == norm(b)


def plan(spec: RetentionSpec, state: ServerState) -> list[Step]:
    """The steps that bring the server from `state` to `spec`, in the order they must run."""
    steps: list[Step] = []
    db = spec.database
    policies = state.policies
    if not state.database_exists:
        # NAME makes the raw policy the database's default instead of an infinite `autogen` one.
        create = (
            f"CREATE DATABASE {quote_ident(db)} WITH DURATION {spec.raw} REPLICATION 1 "
            f"NAME {quote_ident(spec.raw_policy)}"
        )
        what = f"database {db}, default retention policy {spec.raw_policy} ({spec.raw})"
        steps.append(Step(Action.CREATE, what, (create,)))
    else:
        steps.append(Step(Action.KEEP, f"database {db}"))
        steps.append(_policy_step(spec, policies, spec.raw_policy, spec.raw, default=True))
    steps.append(_policy_step(spec, policies, ROLLUP_POLICY, spec.rollup, default=False))
    for m in spec.measurements:
        name = cq_name(m)
        wanted = cq_statement(spec, m)
        have = state.continuous_queries.get(name)
        if have is None:
            steps.append(Step(Action.CREATE, f"continuous query {name}", (wanted,)))
        elif same_query(have, wanted):
            steps.append(Step(Action.KEEP, f"continuous query {name}"))
        else:
            drop = f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(db)}"
            steps.append(Step(Action.REPLACE, f"continuous query {name}", (drop, wanted), f"was: {have}"))
    return steps


def _policy_step(
    spec: RetentionSpec, policies: Mapping[str, Policy], name: str, duration: str, *, default: bool
) -> Step:
    what = f"retention policy {name} ({duration})"
    have = policies.get(name)
    if have is None:
        note = ""
        old = next((p.name for p in policies.values() if p.default), None)
        if default and old is not None:
            # Queries without a policy read the default one: older points stay in the old policy.
            note = (
                f"default policy was {old}: points written before stay there (query {old}.<measurement>; "
                f"roll them up with `rollup --source-policy {old}`) 先前的資料仍在 {old}"
            )
        return Step(Action.CREATE, what, (_create_policy(spec, name, duration, default),), note)
    wrong_default = default and not have.default
    if have.duration_s != duration_seconds(duration) or wrong_default:
        was = "infinite" if have.duration_s == 0 else f"{have.duration_s / 86400:g}d"
        note = f"was {was}{', not the default' if wrong_default else ''}"
        return Step(Action.ALTER, what, (_alter_policy(spec, name, duration, default),), note)
    return Step(Action.KEEP, what)


def minute_floor(ts: datetime) -> datetime:
    """`ts` rounded down to its minute (UTC)."""
    ts = ts.astimezone(UTC)
    return ts.replace(second=0, microsecond=0)


def backfill_ranges(
    start: datetime, end: datetime, chunk: timedelta = BACKFILL_CHUNK
) -> list[tuple[datetime, datetime]]:
    """[start, end) widened to whole minutes and cut into pieces of at most `chunk`."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("backfill times need a time zone")
    if end <= start:
        raise ValueError(f"empty range: {start.isoformat()} is not before {end.isoformat()}")
    lo = minute_floor(start)
    hi = minute_floor(end)
    if hi < end.astimezone(UTC):
        hi += _MINUTE
    out: list[tuple[datetime, datetime]] = []
    while lo < hi:
        out.append((lo, min(lo + chunk, hi)))
        lo += chunk
    return out


def backfill_statements(
    spec: RetentionSpec,
    start: datetime,
    end: datetime,
    *,
    source_policy: str | None = None,
    measurements: Iterable[str] | None = None,
    chunk: timedelta = BACKFILL_CHUNK,
) -> list[str]:
    """The rollup SELECT … INTO over [start, end) for each measurement, a statement per chunk: the points
    the continuous queries would have written (re-running overwrites them with the same values)."""
    out: list[str] = []
    for lo, hi in backfill_ranges(start, end, chunk):
        where = f"time >= {time_literal(lo)} AND time < {time_literal(hi)}"
        out += [rollup_select(spec, m, where, source_policy) for m in (measurements or spec.measurements)]
    return out


__all__ = [
    "AGGREGATES",
    "MEASUREMENTS",
    "ROLLUP_POLICY",
    "Action",
    "Policy",
    "RetentionSpec",
    "RetentionUnsupported",
    "ServerState",
    "Step",
    "backfill_ranges",
    "backfill_statements",
    "cq_name",
    "cq_statement",
    "fresh_statements",
    "parse_go_duration",
    "plan",
    "quote_ident",
    "rollup_select",
    "same_query",
    "time_literal",
]
