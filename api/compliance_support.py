"""What the compliance routes share: the records store over the app's database, the site's zone and
config, and the API address of a record (the evidence links of the board)."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator

from api.context import AppContext
from api.schemas import UtcTime
from compliance.kinds import KINDS
from compliance.store import Records
from records.db import session_factory
from siteconfig.compliance_config import ComplianceConfig

RECORDS_PATH = "/api/v1/records"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    # pydantic also reads a number as Unix time; a query's time is ISO 8601 as the OpenAPI says.
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("an ISO 8601 date-time with an offset, e.g. 2026-12-02T09:00+08:00")
    return value


IsoTime = Annotated[UtcTime, BeforeValidator(_iso_only)]
"""A date-time query parameter: ISO 8601 with an offset only."""


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
