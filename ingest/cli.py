"""`roomguard ingest`: the MQTT → InfluxDB process."""

from __future__ import annotations

from typing import Annotated

import typer

from bus.process import DEFAULT_STATE, StateDir, Verbose, run_jobs, start_logging
from siteconfig.cli import SiteArg, load_site_or_exit


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


def register(app: typer.Typer) -> None:
    """Mount `ingest` on the root `roomguard` app."""
    app.command("ingest")(ingest)


__all__ = ["register"]
