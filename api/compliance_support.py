"""What the compliance routes share: the records store over the app's database, the site's zone and
config, and the API address of a record (the evidence links of the board)."""

from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from api.context import AppContext
from compliance.kinds import KINDS
from compliance.store import Records
from records.db import session_factory
from siteconfig.compliance_config import ComplianceConfig

RECORDS_PATH = "/api/v1/records"


def records_of(ctx: AppContext) -> Records:
    """The compliance records store over the app's records database."""
    return Records(session_factory(ctx.engine))


def site_tz(ctx: AppContext) -> ZoneInfo:
    """The site's time zone (UTC without a site: local times in input are then UTC)."""
    return ZoneInfo(ctx.site.site.timezone if ctx.site else "UTC")


def compliance_config(ctx: AppContext) -> ComplianceConfig:
    """The site's compliance settings (the defaults without a site)."""
    return ctx.site.compliance if ctx.site else ComplianceConfig()


def record_url(kind: str, ref: str) -> str | None:
    """The API address of a record (None: `kind` is not a record kind, e.g. an alert or a reading)."""
    if kind not in KINDS:
        return None
    return f"{RECORDS_PATH}/{kind}/{quote(ref, safe='@:*')}"
