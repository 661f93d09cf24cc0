"""`roomguard collect`: the long-running poll-and-publish process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bus.process import DEFAULT_STATE, Job, StateDir, Verbose, run_jobs, start_logging
from siteconfig.cli import SiteArg, load_site_or_exit
from siteconfig.config import SiteConfig

CollectorId = Annotated[
    str | None, typer.Option("--collector-id", help="Collector id in topics and client id (default: host).")
]


def collector_job(site: SiteConfig, state_dir: Path, collector_id: str | None) -> Job:
    """The collect process as a job for `bus.process.run_jobs` (also composed into `roomguard run`)."""
    from collector.collect import run_collector

    return lambda stop: run_collector(site, state_dir, stop, collector_id=collector_id)


def collect(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    collector_id: CollectorId = None,
    verbose: Verbose = False,
) -> None:
    """Poll the site and publish every reading to MQTT through the durable outbox. 收集並發佈讀值。"""
    start_logging(verbose)
    site = load_site_or_exit(path)
    run_jobs([collector_job(site, state_dir, collector_id)])


__all__ = ["CollectorId", "collect", "collector_job"]
