"""`roomguard status` and `roomguard broker-acl`: what every process shares — its status, the broker."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import typer

from bus.process import DEFAULT_STATE, StateDir
from siteconfig.cli import SiteArg, load_site_or_exit


def status(path: SiteArg, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show per-device last poll and quality, outbox and drops, broker and database state. 顯示狀態。"""
    from bus.status_report import format_status

    site = load_site_or_exit(path, secrets=False)  # reads snapshots only: no secret needed to look
    typer.echo(format_status(state_dir, site.site.id, tz=ZoneInfo(site.site.timezone)))


def broker_acl_command(path: SiteArg) -> None:
    """Print the mosquitto ACL of this site's roles (collector, ingest, read-only). 產生 MQTT 存取控制。"""
    from bus.broker_acl import broker_acl

    typer.echo(broker_acl(load_site_or_exit(path, secrets=False)), nl=False)


def register(app: typer.Typer) -> None:
    """Mount `status` and `broker-acl` on the root `roomguard` app."""
    app.command("status")(status)
    app.command("broker-acl")(broker_acl_command)


__all__ = ["register"]
