"""Rebuild test records of a past period from InfluxDB history, with the same detectors as live.

For a period before roomguard's compliance process ran, or after a record was lost: the genset points
of the runs in the period and the UPS test results go through `detect_runs` / `detect_ups_tests` (the
code the live process feeds), so a run gives the same record either way, marked `source: history`.
An existing record with the same key is kept as it is (the live one, or what people added to it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from compliance.generator_runs import GensetSample, detect_runs, sample_from_metrics
from compliance.history import genset_runs_raw, ups_test_results_raw
from compliance.influxql import InfluxQL
from compliance.kinds import RecordModel
from compliance.store import PutResult, Records
from compliance.ups_tests import UpsSample, detect_ups_tests, ups_sample_from_metrics
from records.audit import Actor
from siteconfig.config import SiteConfig


async def history_records(
    site: SiteConfig, client: InfluxQL, start: datetime, end: datetime
) -> list[RecordModel]:
    """Generator-run and UPS-test records of [start, end) found in the database."""
    site_id = site.site.id
    gensets: list[GensetSample] = [
        sample_from_metrics(p.ts, p.device, p.fields)
        for p in await genset_runs_raw(client, site_id, start, end)
    ]
    ups: list[UpsSample] = [
        ups_sample_from_metrics(p.ts, p.device, p.fields)
        for p in await ups_test_results_raw(client, site_id, start, end)
    ]
    found: list[RecordModel] = []
    found += detect_runs(gensets, site.compliance.generator_tests)
    found += detect_ups_tests(ups)
    return found


async def rebuild_tests(
    site: SiteConfig,
    records: Records,
    start: datetime,
    end: datetime,
    actor: Actor,
    *,
    now: datetime | None = None,
) -> list[PutResult]:
    """Write the history's records that are missing (audited); existing ones are left alone."""
    async with InfluxQL.from_site(site) as client:
        found = await history_records(site, client, start, end)
    missing = [r for r in found if records.get(type(r), r.ref()) is None]
    return records.put_all(missing, actor, now or datetime.now(UTC), action="rebuild")
