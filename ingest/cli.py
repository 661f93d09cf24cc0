# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""`roomguard ingest SITE …`: the MQTT → InfluxDB process, and the database's retention and rollups."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bus.process import DEFAULT_STATE, StateDir, Verbose, run_jobs, start_logging
from siteconfig.cli import SiteArg, SiteFirst, load_site_or_exit
from siteconfig.config_types import duration_seconds
from siteconfig.secrets import SecretError

if TYPE_CHECKING:
    from ingest.influx_admin import InfluxAdmin
    from ingest.retention import RetentionSpec
    from siteconfig.config import SiteConfig

# The admin password of `--admin`: from this variable, else asked for (never a command-line argument).
ADMIN_PASSWORD_ENV = "ROOMGUARD_INFLUX_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a secret


ingest_app = typer.Typer(
    cls=SiteFirst,
    help="MQTT → InfluxDB, and the database's retention and 1-minute rollups. 讀值寫入 InfluxDB。",
    no_args_is_help=True,
)
AdminOption = Annotated[
    str | None,
    typer.Option(
        "--admin",
        help=f"InfluxDB admin user (password from ${ADMIN_PASSWORD_ENV}, else asked); "
        "default: the site's user.",
    ),
]


@ingest_app.command("serve")
def ingest(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    index: Annotated[int, typer.Option("--index", help="Ingest process number (client id suffix).")] = 0,
    shared: Annotated[
        str | None, typer.Option("--shared", help="Shared-subscription group to split the load.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Subscribe to the site's readings and write them to InfluxDB. 將讀值寫入 InfluxDB。"""
    # Imported when the command runs, so the other commands work without the ingest dependencies.
    from ingest.run import run_ingest

    start_logging(verbose)
    site = load_site_or_exit(path)
    run_jobs([lambda stop: run_ingest(site, state_dir, stop, client_index=index, shared_group=shared)])


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _spec(site: SiteConfig) -> RetentionSpec:
    from ingest.retention import RetentionSpec, RetentionUnsupported

    try:
        return RetentionSpec.from_site(site)
    except RetentionUnsupported as exc:
        raise _fail(str(exc)) from None


def _admin(site: SiteConfig, admin_user: str | None) -> InfluxAdmin:
    from ingest.influx_admin import InfluxAdmin

    db = site.influxdb
    assert db is not None  # _spec checked it
    if admin_user is None:
        try:
            password = db.password.resolve() if db.password is not None else None
        except SecretError as exc:
            raise _fail(f"influxdb.password: {exc}", 2) from None
        return InfluxAdmin(db.url, db.username, password)
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password is None:
        password = typer.prompt(f"InfluxDB 密碼 password of {admin_user}", hide_input=True)
    return InfluxAdmin(db.url, admin_user, password)


_LABELS = {
    "create": "created 已建立",
    "alter": "changed 已修改",
    "replace": "replaced 已重建",
    "keep": "unchanged 不變",
}


@ingest_app.command("setup-db")
def setup_db_command(
    path: SiteArg,
    print_only: Annotated[
        bool,
        typer.Option("--print", help="Only print the statements for a new database; connect to nothing."),
    ] = False,
    admin_user: AdminOption = None,
) -> None:
    """Create the database, its retention policies and the 1-minute rollup continuous queries (InfluxDB
    1.x); re-running changes only what differs from the site file. 建立資料庫、保存期限與每分鐘彙總。"""
    from ingest.influx_admin import InfluxAdminError, changed, setup_db
    from ingest.retention import fresh_statements

    # Only the database's own secret is read (by _admin): the SNMP and notification secrets of the site
    # file play no part here, and an install sets up the database before they are in place.
    site = load_site_or_exit(path, secrets=False)
    spec = _spec(site)
    if print_only:
        for statement in fresh_statements(spec):
            typer.echo(statement + ";")
        return

    async def go() -> list[Any]:
        async with _admin(site, admin_user) as admin:
            return await setup_db(admin, spec)

    try:
        steps = asyncio.run(go())
    except InfluxAdminError as exc:
        raise _fail(f"setup-db 失敗 failed: {exc}", 1) from None
    for step in steps:
        typer.echo(f"{_LABELS[step.action]:<18} {step.what}")
        for statement in step.statements:
            typer.echo(f"    {statement}")
        if step.note:
            typer.echo(f"    ({step.note})")
    summary = "變更完成 changes applied" if changed(steps) else "已是最新 nothing to change"
    typer.echo(f"InfluxDB {spec.database}: {summary}")


def parse_when(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    """`--from`/`--to`: an ISO 8601 time (without an offset: the site's time zone) or a duration ago
    (`90m`, `6h`, `2d`)."""
    try:
        return now - timedelta(seconds=duration_seconds(text))
    except ValueError:
        pass
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"got {text!r}; an ISO time (2026-03-01T08:00, 2026-03-01T00:00Z) or a duration ago (6h, 2d)"
        ) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=tz)


@ingest_app.command("rollup")
def rollup_command(
    path: SiteArg,
    since: Annotated[
        str, typer.Option("--from", help="Start: ISO time (site zone if no offset) or e.g. 6h ago.")
    ],
    until: Annotated[
        str | None, typer.Option("--to", help="End (exclusive), same forms; default now.")
    ] = None,
    source_policy: Annotated[
        str | None,
        typer.Option(
            "--source-policy", help="Read raw points from this policy (default: the site's raw one)."
        ),
    ] = None,
    admin_user: AdminOption = None,
) -> None:
    """Backfill the 1-minute rollups of a past range (after an outage longer than the continuous
    queries' resample_for, or for history written before they existed). 補算每分鐘彙總。"""
    from ingest.influx_admin import InfluxAdminError, backfill

    site = load_site_or_exit(path, secrets=False)  # only the database's secret, read by _admin
    spec = _spec(site)
    tz = ZoneInfo(site.site.timezone)
    now = datetime.now(UTC)
    start = parse_when(since, tz, now)
    end = now if until is None else parse_when(until, tz, now)
    if end <= start:
        raise _fail(f"--from {start.isoformat()} 須早於 must be before --to {end.isoformat()}")

    def show(lo: datetime, hi: datetime, written: int) -> None:
        typer.echo(
            f"{lo.astimezone(tz):%Y-%m-%d %H:%M} – {hi.astimezone(tz):%Y-%m-%d %H:%M}  {written} points 筆"
        )

    async def go() -> int:
        async with _admin(site, admin_user) as admin:
            return await backfill(admin, spec, start, end, source_policy=source_policy, progress=show)

    try:
        total = asyncio.run(go())
    except InfluxAdminError as exc:
        raise _fail(f"rollup 失敗 failed: {exc}", 1) from None
    typer.echo(f"rollup_1m: {total} points written 筆已寫入")


def register(app: typer.Typer) -> None:
    """Mount `ingest` on the root `roomguard` app."""
    app.add_typer(ingest_app, name="ingest")


__all__ = ["register"]
