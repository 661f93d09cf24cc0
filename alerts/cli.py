# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""`roomguard alerts`: the alerts process, and what people do with alerts (list, ack, silence, history)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bus.process import DEFAULT_STATE, StateDir, Verbose, run_jobs, start_logging
from siteconfig.cli import SiteArg, load_site_or_exit


class _ServeByDefault(TyperGroup):
    """`roomguard alerts SITE` runs the process; `roomguard alerts list SITE` and friends act on alerts."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


alerts_app = typer.Typer(
    cls=_ServeByDefault,
    help="Alerts: run the process (roomguard alerts SITE), list, ack, silence, history. 告警。",
    no_args_is_help=True,
)
ByOption = Annotated[
    str, typer.Option("--by", help="Who does it (recorded in the alert's history and the audit log).")
]


def _actor(by: str) -> Any:
    from records.audit import cli_actor

    return cli_actor(by)


def _service(path: Path, state_dir: Path) -> Any:
    from zoneinfo import ZoneInfo

    from alerts.lifecycle import Policy
    from alerts.pack import site_rule_set
    from alerts.service import AlertService
    from bus.state_dir import prepare_state_dir
    from records.db import make_engine, session_factory
    from records.migrate import upgrade
    from records.site import records_url
    from siteconfig.alerts_config import AlertsConfig

    site = load_site_or_exit(path)
    prepare_state_dir(state_dir)
    engine = make_engine(records_url(site, state_dir))
    upgrade(engine)
    return AlertService(
        session_factory(engine),
        site_rule_set(site.alerts),
        Policy.from_config(site.alerts or AlertsConfig(), site.site.timezone),
        tz=ZoneInfo(site.site.timezone),
    )


@alerts_app.command("serve")
def serve(path: SiteArg, state_dir: StateDir = DEFAULT_STATE, verbose: Verbose = False) -> None:
    """Run the alerts process: rules over the bus, notifications out. 執行告警程序。"""
    from alerts.run import run_alerts

    start_logging(verbose)
    site = load_site_or_exit(path)
    run_jobs([lambda stop: run_alerts(site, state_dir, stop)])


@alerts_app.command("list")
def list_alerts(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    every: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
) -> None:
    """Open alerts (firing), newest first. 列出告警。"""
    service = _service(path, state_dir)
    rows = [a for a in service.list_open() if every or a.state == "firing"]
    if not rows:
        typer.echo("no open alerts 目前無告警")
        return
    for a in sorted(rows, key=lambda a: a.started_at, reverse=True):
        ack = f" acked 已確認 by {a.acked_by}" if a.acked_by else ""
        quiet = f" [{a.suppressed}]" if a.suppressed else ""
        msg = a.texts.get("message", {})
        typer.echo(
            f"{a.id:>5}  {a.severity:<8} {a.state:<8} {a.started_at:%Y-%m-%d %H:%M:%S}Z  "
            f"{a.key}{ack}{quiet}\n"
            f"       {msg.get('zh_TW', '')}\n       {msg.get('en', '')}"
        )


@alerts_app.command("ack")
def ack(
    path: SiteArg,
    alert: Annotated[str, typer.Argument(help="Alert id (number) or dedup key.")],
    by: ByOption,
    note: Annotated[str | None, typer.Option(help="Why, what is being done.")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Acknowledge an alert: reminders and escalation stop. 確認告警。"""
    service = _service(path, state_dir)
    try:
        key = int(alert) if alert.isdigit() else alert
        view = service.ack(key, by, note, datetime.now(UTC), actor=_actor(by))
    except KeyError as exc:
        typer.echo(f"no alert {alert!r} ({exc})", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"acknowledged 已確認 {view.key} by {by}")


def _duration(text: str) -> timedelta:
    from alerts.silences import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@alerts_app.command("silence")
def silence(
    path: SiteArg,
    match: Annotated[
        list[str],
        typer.Option("--match", help="label=value (rule, site, room, device, class, zone, rack, …)."),
    ],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    by: ByOption,
    maintenance: Annotated[bool, typer.Option(help="A maintenance window rather than a silence.")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Silence matching alerts for a while (stored and shown, not notified). 靜音。"""
    matchers: dict[str, str] = {}
    for m in match:
        key, sep, value = m.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"--match {m!r}: write label=value, e.g. room=mr1")
        matchers[key] = value
    service = _service(path, state_dir)
    now = datetime.now(UTC)
    ends = now + _duration(duration)
    kind = "maintenance" if maintenance else "silence"
    try:
        silence_id = service.silence(matchers, now, ends, reason, by, now, kind=kind, actor=_actor(by))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{kind} {silence_id} until {ends:%Y-%m-%d %H:%M}Z: {matchers}")


@alerts_app.command("unsilence")
def unsilence(
    path: SiteArg,
    silence_id: Annotated[int, typer.Argument(help="Silence id.")],
    by: ByOption,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """End a silence now. 解除靜音。"""
    service = _service(path, state_dir)
    try:
        service.unsilence(silence_id, by, datetime.now(UTC), actor=_actor(by))
    except KeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"silence {silence_id} ended")


@alerts_app.command("history")
def history(
    path: SiteArg,
    alert: Annotated[str | None, typer.Argument(help="Only this alert (id or dedup key).")] = None,
    limit: Annotated[int, typer.Option(help="Most recent entries.")] = 50,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """What happened to alerts: fired, notified, acked, silenced, resolved. 告警歷程。"""
    service = _service(path, state_dir)
    key: Any = None if alert is None else (int(alert) if alert.isdigit() else alert)
    for h in service.history(key, limit=limit):
        who = f" by {h.who}" if h.who else ""
        typer.echo(f"{h.at:%Y-%m-%d %H:%M:%S}Z  {h.what:<15} {h.key}{who}  {h.note or ''}".rstrip())


@alerts_app.command("test-notify")
def test_notify(
    path: SiteArg,
    channel: Annotated[str, typer.Argument(help="Channel name from alerts.channels.")],
) -> None:
    """Send a test message through one channel now and say whether it arrived. 測試通知管道。"""
    from alerts.channels import build_channels
    from alerts.notify.base import DeliveryError, Notification

    site = load_site_or_exit(path)
    channels = build_channels(site)
    if channel not in channels:
        typer.echo(f"no channel {channel!r}; channels: {', '.join(sorted(channels)) or 'none'}", err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    note = Notification(
        key=f"test:{site.site.id}:{int(now.timestamp())}",
        kind="test",
        severity="info",
        subject_zh=f"roomguard 測試通知（{site.site.name}）",
        subject_en=f"roomguard test notification ({site.site.name})",
        body_zh=f"這是 {channel} 管道的測試訊息，{now:%Y-%m-%d %H:%M:%S} UTC 發送。",
        body_en=f"A test message through channel {channel}, sent {now:%Y-%m-%d %H:%M:%S} UTC.",
        payload={"schema": "roomguard.alert/1", "id": "test", "state": "test", "site": site.site.id},
    )
    try:
        asyncio.run(channels[channel].send(note))
    except DeliveryError as exc:
        kind = "retryable" if exc.retryable else "permanent"
        typer.echo(f"{channel}: FAILED 失敗 ({kind}): {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{channel}: delivered 已送達")


@alerts_app.command("receive")
def receive(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8098,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    key_env: Annotated[
        str, typer.Option(help="Environment variable holding the webhook key (never on the command line).")
    ] = "ROOMGUARD_ALERT_WEBHOOK_KEY",
    log: Annotated[Path | None, typer.Option(help="Also append every accepted payload (JSON lines).")] = None,
) -> None:
    """A webhook receiver that verifies each alert's signature and prints it (demo, commissioning).
    接收並顯示已簽章的告警。"""
    import os

    from alerts.receiver import AlertReceiver, serve

    key = os.environ.get(key_env)
    if not key:
        typer.echo(f"set the webhook key in ${key_env} (never on the command line)", err=True)
        raise typer.Exit(2)
    receiver = AlertReceiver(key, lambda text: typer.echo(text), log)
    typer.echo(f"receiving signed alerts on http://{host}:{port}/ 接收告警中")
    run_jobs([lambda stop: serve(receiver, host, port, stop)])


def register(app: typer.Typer) -> None:
    """Mount `alerts` on the root `roomguard` app."""
    app.add_typer(alerts_app, name="alerts")


__all__ = ["register"]
