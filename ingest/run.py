"""`roomguard ingest` as a process: the bridge built from the site file, its state and status snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from bus.broker import BrokerSettings, broker_settings
from bus.state_dir import prepare_state_dir
from bus.status_file import process_identity, write_snapshot
from ingest.admit import AdmissionRules
from ingest.bridge import IngestBridge, IngestSettings
from ingest.influx_writer import InfluxV1Writer, InfluxV2Writer, InfluxWriter
from ingest.seq import SeqStateFile
from siteconfig.config import SiteConfig

_LOG = logging.getLogger("ingest.bridge")
STATUS_EVERY_S = 2.0


def ingest_name(client_index: int) -> str:
    """File stem of ingest process number `client_index` in the state dir (`ingest`, `ingest-1`, …)."""
    return "ingest" if client_index == 0 else f"ingest-{client_index}"


def ingest_broker_settings(site: SiteConfig, client_index: int = 0) -> BrokerSettings:
    """Connection settings of ingest process number `client_index` for this site (docs/mqtt.md ids)."""
    return broker_settings(site, f"roomguard-ingest-{site.site.id}-{client_index}", role="ingest")


def make_writer(site: SiteConfig) -> InfluxWriter:
    """The InfluxDB writer of `site.influxdb` (v1 `/write` or v2 API)."""
    db = site.influxdb
    if db is None:
        raise ValueError("the site configuration has no influxdb section; ingest has nowhere to write")
    # The site file's validator already requires these (siteconfig.config_types.InfluxDb); a config
    # built another way gets the same clear error instead of an assertion (gone under `python -O`).
    if db.api == "v1":
        if db.database is None:
            raise ValueError("influxdb.database: required with api v1")
        password = db.password.resolve() if db.password is not None else None
        return InfluxV1Writer(db.url, db.database, db.username, password, gzip=db.gzip)
    if db.bucket is None:
        raise ValueError("influxdb.bucket: required with api v2")
    token = db.token.resolve() if db.token else ""
    return InfluxV2Writer(db.url, db.bucket, db.org or "", token, gzip=db.gzip)


def admission_rules(site: SiteConfig) -> AdmissionRules:
    """The site file's `ingest:` limits (the time window defaults to the outbox's age bound)."""
    limits = site.ingest
    known = {(site.site.id, d.id): d.room for d in site.devices} if limits.known_devices_only else None
    return AdmissionRules(
        max_payload_bytes=limits.max_payload_bytes,
        max_metrics=limits.max_metrics,
        max_past_s=limits.max_past_s or site.outbox.max_age_s,
        max_future_s=limits.max_future_s,
        known=known,
        system_rooms=frozenset((site.site.id, r.id) for r in site.rooms),
    )


def ingest_settings(site: SiteConfig, shared_group: str | None = None) -> IngestSettings:
    """Bridge settings of this site's ingest process."""
    retry_max_s = site.influxdb.retry_max_s if site.influxdb is not None else 3.0
    return IngestSettings(
        topic_prefix=site.mqtt.topic_prefix,
        shared_group=shared_group,
        site=None if site.ingest.all_sites else site.site.id,
        backoff_cap_s=retry_max_s,
        admission=admission_rules(site),
    )


async def run_ingest(
    site: SiteConfig,
    state_dir: Path,
    stop: asyncio.Event,
    *,
    client_index: int = 0,
    shared_group: str | None = None,
) -> None:
    """Run the ingest bridge of `site` until `stop` is set, writing a status snapshot every 2 s."""
    prepare_state_dir(state_dir)
    name = ingest_name(client_index)
    state = SeqStateFile(state_dir / f"{name}.db")
    bridge = IngestBridge(
        ingest_broker_settings(site, client_index),
        make_writer(site),
        ingest_settings(site, shared_group),
        state_dir / "dead-letter.jsonl",
        state,
    )
    status = asyncio.create_task(_write_status(bridge, state_dir, name, stop), name="ingest-status")
    try:
        await bridge.run(stop)
    finally:
        status.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await status
        write_snapshot(state_dir, name, {**bridge.stats.as_dict(), **process_identity(), "running": False})
        state.close()


async def _write_status(bridge: IngestBridge, state_dir: Path, name: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            write_snapshot(state_dir, name, {**bridge.stats.as_dict(), **process_identity()})
        except OSError as exc:  # a full disk must not stop the data path
            _LOG.warning("cannot write the ingest status snapshot: %s", exc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STATUS_EVERY_S):
                await stop.wait()


__all__ = [
    "admission_rules",
    "ingest_broker_settings",
    "ingest_name",
    "ingest_settings",
    "make_writer",
    "run_ingest",
]
