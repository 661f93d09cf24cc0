"""Where a site's records database is: its `records.url`, or records.db in the state directory."""

from __future__ import annotations

from pathlib import Path

from siteconfig.config import SiteConfig


def records_url(site: SiteConfig, state_dir: Path) -> str:
    """The records database URL: the site's, or records.db in the state directory."""
    if site.records.url:
        return site.records.url
    return f"sqlite:///{(state_dir / 'records.db').resolve()}"
