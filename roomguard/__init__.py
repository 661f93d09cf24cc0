"""Composition root: the `roomguard` command mounts each package's sub-commands and composes `run`."""

from __future__ import annotations

from typing import Annotated

import typer

from alerts import cli as alerts_cli
from api import cli as api_cli
from bus import cli as bus_cli
from bus.child import roomguard_argv, supervise_child
from bus.process import DEFAULT_STATE, StateDir, Verbose, run_jobs, start_logging, tune_gc_for_polling
from collector import cli as collector_cli
from collector.collect_cli import CollectorId, collector_job
from compliance import cli as compliance_cli
from compliance.access import cli as access_cli
from dashboards import cli as dashboards_cli
from ingest import cli as ingest_cli
from roomguard import backup_cli
from roomguard import doctor as doctor_cli
from siteconfig import cli as siteconfig_cli
from siteconfig.cli import SiteArg, load_site_or_exit

# Commands whose process polls devices: they get the polling GC settings (bus.process).
POLLING_COMMANDS = frozenset({"collect", "run", "poll"})
# `run`'s ingest child yields the CPU to polling on a starved box (the systemd units do the same: Nice=).
INGEST_NICE = 5

app = typer.Typer(
    name="roomguard",
    help="Machine-room monitoring and TWSE CC-16000 evidence. 機房環境監控與 CC-16000 稽核佐證。",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand in POLLING_COMMANDS:
        tune_gc_for_polling()


def run(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0,
    collector_id: CollectorId = None,
    verbose: Verbose = False,
) -> None:
    """Collector, ingest, alerts (with an alerts: section), compliance and the web API (with api.enabled)
    with one command, for a single edge box; all but the collector run as child processes so that
    writing a backlog, sending notifications, building evidence or serving pages never slows polling
    down. 收集、寫入、告警、查核與網頁一併執行。"""
    start_logging(verbose)
    site = load_site_or_exit(path)
    if site.api.enabled:
        _api_port_free_or_exit(site.api.host, site.api.port)
    common = ("--state-dir", str(state_dir), *(["-v"] if verbose else []))
    ingest = roomguard_argv("ingest", str(path), *common)
    jobs = [
        collector_job(site, state_dir, collector_id),
        lambda stop: supervise_child(ingest, "ingest", stop, nice=INGEST_NICE),
    ]
    if site.alerts is not None:
        alerts = roomguard_argv("alerts", "serve", str(path), *common)
        jobs.append(lambda stop: supervise_child(alerts, "alerts", stop, nice=INGEST_NICE))
    if site.compliance.enabled:
        compliance = roomguard_argv("compliance", "serve", str(path), *common)
        jobs.append(lambda stop: supervise_child(compliance, "compliance", stop, nice=INGEST_NICE))
    if site.api.enabled:
        api = roomguard_argv("api", str(path), *common)
        jobs.append(lambda stop: supervise_child(api, "api", stop, nice=INGEST_NICE))
    run_jobs(jobs, seconds)


def _api_port_free_or_exit(host: str, port: int) -> None:
    """Refuse to start at all when the API's port is taken (before any child runs), with the message
    that names the address and the setting to change."""
    from api.serving import PortTaken, bind

    try:
        bind(host, port).close()
    except PortTaken as exc:
        typer.echo(f"roomguard: {exc}", err=True)
        raise typer.Exit(2) from None


siteconfig_cli.register(app)
bus_cli.register(app)
collector_cli.register(app)
ingest_cli.register(app)
alerts_cli.register(app)
compliance_cli.register(app)
access_cli.register(app)
dashboards_cli.register(app)
doctor_cli.register(app)
backup_cli.register(app)
api_cli.register(app)
app.command("run")(run)


def main() -> None:
    """Run the roomguard command line."""
    app()
