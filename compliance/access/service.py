"""What the access commands and the web API do, over the store: flags now, start, decide, sign off and
export a review.

One place for each action, so the CLI and the web call the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from compliance.access.flags import FLAG_CODES, Flag, grant_flags
from compliance.access.model import FlagRules
from compliance.access.review import (
    InvalidDecision,
    Quarter,
    Review,
    ReviewRefused,
    review_id,
    review_lines,
)
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


def quarter_of(now: datetime, tz: tzinfo) -> str:
    """The label of the quarter `now` falls in, in the site's zone ('2026Q4')."""
    local = now.astimezone(tz)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a review is: lines decided, undecided, and flagged lines still undecided."""

    lines: int
    decided: int
    undecided: int
    flagged: int
    flagged_undecided: int


def progress(review: Review) -> Progress:
    """The review's progress (what `review show` and the web page print above the lines)."""
    decided = sum(1 for ln in review.lines if ln.decision)
    flagged = sum(1 for ln in review.lines if ln.flags)
    open_flagged = sum(1 for ln in review.lines if ln.flags and not ln.decision)
    return Progress(len(review.lines), decided, len(review.lines) - decided, flagged, open_flagged)


def choose_grants(
    review: Review, grant_ids: Iterable[str], *, unflagged: bool = False, flags: Iterable[str] = ()
) -> list[str]:
    """The grants one decision applies to: those named, plus every undecided line without a flag
    (`unflagged`) or with one of `flags`; InvalidDecision names the valid flag codes for an unknown one,
    and when nothing is chosen."""
    codes = set(flags)
    if unknown := sorted(codes - set(FLAG_CODES)):
        raise InvalidDecision(f"flag {', '.join(unknown)}: valid flags are {', '.join(FLAG_CODES)}")
    chosen = list(grant_ids)
    if unflagged or codes:
        chosen += [
            ln.grant.grant_id
            for ln in review.lines
            if ln.decision is None
            and ((unflagged and not ln.flags) or any(f.code in codes for f in ln.flags))
        ]
    if not chosen:
        raise InvalidDecision(
            "未指定權限 / name grant ids, or choose the unflagged grants or a flag "
            "(no undecided grant matched)"
        )
    return chosen


def decide_grants(
    store: AccessStore,
    review_id_: str,
    grant_ids: Sequence[str],
    decision: str,
    reason: str,
    by: str,
    actor: Actor,
    now: datetime,
    *,
    unflagged: bool = False,
    flags: Iterable[str] = (),
) -> int:
    """Record `by`'s decision on the chosen grants (choose_grants), all or none, each audited; how many."""
    codes = tuple(flags)
    chosen = list(grant_ids)
    if unflagged or codes or not chosen:
        chosen = choose_grants(store.review(review_id_), chosen, unflagged=unflagged, flags=codes)
    return store.decide_many(review_id_, chosen, decision, reason, by, actor, now)


def sign_off_review(
    store: AccessStore,
    review_id_: str,
    by: str,
    actor: Actor,
    now: datetime,
    note: str = "",
    aliases: Iterable[str] = (),
) -> Review:
    """Sign the review off as `by` (also known as `aliases`): refused for an implementer of its grants
    (separation of duties), an undecided line, or a signed review; audited either way."""
    return store.sign_off(review_id_, by, actor, now, note, aliases=tuple(aliases))


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
