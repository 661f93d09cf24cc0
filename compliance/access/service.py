"""What the access commands (and the coming API) do, over the store: flags now, start a review, export.

One place for each action, so the CLI and the web call the same functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from compliance.access.flags import Flag, grant_flags
from compliance.access.model import FlagRules
from compliance.access.review import Quarter, Review, ReviewRefused, review_id, review_lines
from compliance.access.store import AccessStore
from records.audit import Actor
from siteconfig.compliance_config import AccessRules


def flag_rules(cfg: AccessRules) -> FlagRules:
    """The flags' thresholds from the site's `compliance.access`."""
    return FlagRules(
        dormant_days=cfg.dormant_days,
        escort_window=timedelta(seconds=cfg.escort_window_s),
        min_travel=timedelta(seconds=cfg.min_travel_s),
    )


def current_flags(store: AccessStore, now: datetime, tz: tzinfo, rules: FlagRules) -> dict[str, list[Flag]]:
    """Every stored grant's flags at `now`, judged over the badge events of the last `dormant_days`."""
    since = now - timedelta(days=rules.dormant_days + 1)
    return grant_flags(store.holders(), store.grants(), store.badges(since, None), now, tz, rules)


def start_review(
    store: AccessStore,
    site_id: str,
    quarter_text: str,
    by: str,
    actor: Actor,
    now: datetime,
    tz: tzinfo,
    rules: FlagRules,
) -> Review:
    """Snapshot every grant in force in the quarter with its flags; compare with the previous quarter.

    A quarter whose review is signed gets a new, linked review (`supersedes`); an open one is refused
    (decide on it, or sign it off first).
    """
    quarter = Quarter.parse(quarter_text, tz)
    same = store.reviews(quarter.label)
    if any(r.status == "open" for r in same):
        open_id = next(r.review_id for r in same if r.status == "open")
        raise ReviewRefused(
            f"review {open_id} of {quarter.label} is still open / 本季覆核尚未簽核: decide and sign it off"
        )
    previous = [r for r in store.reviews(quarter.previous(tz).label) if r.status == "signed"]
    before = previous[-1] if previous else None
    since = min(quarter.start, now - timedelta(days=rules.dormant_days + 1))
    events = store.badges(since, max(now, quarter.end))
    lines, removed = review_lines(
        store.holders(),
        store.grants(),
        events,
        quarter,
        now,
        tz,
        rules,
        None if before is None else {ln.grant.grant_id: ln.grant for ln in before.lines},
    )
    review = Review(
        review_id=review_id(site_id, quarter.label, len(same) + 1),
        site_id=site_id,
        quarter=quarter.label,
        period_start=quarter.start,
        period_end=quarter.end,
        snapshot_at=now,
        prepared_by=by,
        lines=tuple(lines),
        removed=tuple(removed),
        previous_review_id=None if before is None else before.review_id,
        supersedes=same[-1].review_id if same else None,
    )
    return store.start(review, actor, now)


def export_review(
    store: AccessStore, review_id_: str, folder: Path, *, site_name: str, company: str, tz: tzinfo
) -> list[Path]:
    """Write the review's XLSX, CSVs, PDF and manifest into `folder`; the files.

    Sheet E holds the quarter's changes of the stored grants from the audit log (compliance.access.changelog).

    A signed review's files are made read-only (TWSE 臺證輔字第1060504884號: kept read-only after sign-off),
    and a folder that already holds an export is refused rather than overwritten.
    """
    import os
    import stat

    from compliance.access.changelog import change_log
    from compliance.access.export import write_review_export

    review = store.review(review_id_)
    if (folder / "MANIFEST.sha256").exists():
        raise ReviewRefused(f"{folder} already holds an export (MANIFEST.sha256): choose an empty folder")
    changes = change_log(store.grant_changes(), review.period_start, review.period_end, tz)
    files = write_review_export(
        review, folder, site_name=site_name, company=company, tz=tz, change_log=changes
    )
    if review.status == "signed":
        for f in files:
            os.chmod(f, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return files
