"""`roomguard status`, `broker-acl`, `broker-bridge`: what every process shares — its status, the broker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bus.process import DEFAULT_STATE, StateDir
from siteconfig.cli import SiteArg, load_site_or_exit
from siteconfig.secrets import SecretError


def status(path: SiteArg, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show per-device last poll and quality, outbox and drops, broker and database state. 顯示狀態。"""
    from bus.status_report import format_status

    site = load_site_or_exit(path, secrets=False)  # reads snapshots only: no secret needed to look
    typer.echo(format_status(state_dir, site.site.id, tz=ZoneInfo(site.site.timezone)))


def broker_acl_command(
    path: SiteArg,
    bridged: Annotated[
        list[Path] | None,
        typer.Option(
            "--bridged",
            help="An edge site file whose broker bridges to this (central) broker: adds its bridge account. "
            "Repeatable. 橋接至此中央代理的據點設定檔。",
        ),
    ] = None,
) -> None:
    """Print the mosquitto ACL of this site's roles (collector, ingest, read-only). 產生 MQTT 存取控制。"""
    from bus.broker_acl import broker_acl
    from bus.broker_bridge import central_acl

    text = broker_acl(load_site_or_exit(path, secrets=False))
    edges = []
    for edge_path in bridged or []:
        edge = load_site_or_exit(edge_path, secrets=False)
        if edge.mqtt.bridge is None:
            typer.echo(f"{edge_path}: 沒有 mqtt.bridge 區段 has no mqtt.bridge section", err=True)
            raise typer.Exit(2)
        edges.append(edge)
    typer.echo(text + central_acl(edges), nl=False)


def broker_bridge_command(
    path: SiteArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the section, with the bridge password, to this file (mode 0600). Without it the "
            "section is printed with the password left out. 寫入檔案 (含密碼, 權限 0600)。",
        ),
    ] = None,
) -> None:
    """Print the edge broker's bridge to the central broker (mqtt.bridge). 產生 MQTT 橋接設定。"""
    from bus.broker_bridge import broker_bridge

    site = load_site_or_exit(path, secrets=False)  # only the bridge password is needed, read below
    if site.mqtt.bridge is None:
        typer.echo(f"{path}: 沒有 mqtt.bridge 區段 has no mqtt.bridge section (docs/multi-site.md)", err=True)
        raise typer.Exit(2)
    if output is None:
        typer.echo(broker_bridge(site), nl=False)
        return
    try:
        password = site.mqtt.bridge.password.resolve()
    except SecretError as exc:
        typer.echo(f"{path}: mqtt.bridge.password: 無法讀取密碼 {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        text = broker_bridge(site, password)
    except ValueError as exc:
        typer.echo(f"{path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    write_private(output, text)
    typer.echo(f"已寫入 wrote {output} (0600; 含橋接密碼 holds the bridge password)", err=True)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only (0600) from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    # O_EXCL with mode 0600: the password is never in a file others could open, even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def register(app: typer.Typer) -> None:
    """Mount `status`, `broker-acl` and `broker-bridge` on the root `roomguard` app."""
    app.command("status")(status)
    app.command("broker-acl")(broker_acl_command)
    app.command("broker-bridge")(broker_bridge_command)


__all__ = ["register"]
