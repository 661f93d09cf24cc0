"""A quarterly access-rights review, as data: one line per grant with its flags, use and change.

Pure (no database): `review_lines()` builds the lines of a quarter from the holders, grants and badge
events, comparing with the previous review's grants (new, changed, removed); `decide()` and
`sign_off()` return new values and refuse what the workflow forbids with `ReviewRefused` (a clear
message in zh-TW and English). compliance.access.store keeps reviews; compliance.access.export renders
them in the layout of docs/access-review.md (sheets A-F).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, tzinfo
from typing import Literal

from compliance.access.flags import Flag, Uses, between, grant_flags
from compliance.access.model import Badge, FlagRules, Grant, Holder

Decision = Literal["keep", "revoke", "change", "to_confirm"]
DECISIONS: tuple[Decision, ...] = typing.get_args(Decision)
DECISION_ZH = {"keep": "維持", "revoke": "撤銷", "change": "修改", "to_confirm": "待確認"}
ChangeType = Literal["added", "modified", "revoked", "none"]
CHANGE_ZH = {"added": "新增", "modified": "修改", "revoked": "撤銷", "none": "無"}
Status = Literal["open", "signed"]
_QUARTER = re.compile(r"(\d{4})\s*-?\s*[Qq]([1-4])")


class ReviewRefused(ValueError):
    """The workflow refuses the action (signed review, separation of duties, unknown grant...)."""


# The kinds of refusal, so a caller can answer each its own way (the web API: 404, 409, 422); every
# one is a ReviewRefused, so `except ReviewRefused` still catches them all.
class NotInReview(ReviewRefused):
    """No such review, or the grant is not in the review."""


class InvalidDecision(ReviewRefused):
    """A decision that is not one of DECISIONS, or a change without a reason."""


class ReviewSigned(ReviewRefused):
    """The review is signed off and read-only."""


class SeparationOfDuties(ReviewRefused):
    """The signer implemented a reviewed grant (the access administrator)."""


@dataclass(frozen=True, slots=True)
class Quarter:
    """A calendar quarter in the site's time zone: [start, end)."""

    year: int
    q: int
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """'2026Q4'."""
        return f"{self.year}Q{self.q}"

    @classmethod
    def parse(cls, text: str, tz: tzinfo) -> Quarter:
        """'2026Q4' (also '2026-Q4', '2026q4')."""
        m = _QUARTER.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"quarter {text!r}: expected YEARQn such as 2026Q4 (n = 1..4)")
        year, q = int(m.group(1)), int(m.group(2))
        first = date(year, 3 * q - 2, 1)
        nxt = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
        return cls(
            year, q, datetime.combine(first, time(0), tzinfo=tz), datetime.combine(nxt, time(0), tzinfo=tz)
        )

    def previous(self, tz: tzinfo) -> Quarter:
        """The quarter before."""
        return Quarter.parse(f"{self.year - (self.q == 1):04d}Q{4 if self.q == 1 else self.q - 1}", tz)


@dataclass(frozen=True, slots=True)
class ReviewLine:
    """One grant in the review (sheet C): holder, flags, use in the period, change, decision."""

    row_no: int
    grant: Grant
    holder: Holder | None
    flags: tuple[Flag, ...]
    last_used_at: datetime | None
    entries_in_period: int
    change_type: ChangeType
    before: str = ""  # the previous review's zones / schedule / validity when modified
    decision: Decision | None = None
    reason: str = ""
    decided_by: str = ""
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignOff:
    """Who signed the review off, when, in which role (reviewer / approver)."""

    by: str
    at: datetime
    role: str = "reviewer"
    note: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """A review of one site's quarter; read-only once signed (`status == 'signed'`)."""

    review_id: str
    site_id: str
    quarter: str
    period_start: datetime
    period_end: datetime
    snapshot_at: datetime
    prepared_by: str
    lines: tuple[ReviewLine, ...]
    removed: tuple[Grant, ...] = ()
    previous_review_id: str | None = None
    status: Status = "open"
    sign_offs: tuple[SignOff, ...] = field(default_factory=tuple)
    supersedes: str | None = None  # a later review of the same quarter links to the signed one

    def line(self, grant_id: str) -> ReviewLine:
        """The line of `grant_id` (ReviewRefused if it is not in the review)."""
        for ln in self.lines:
            if ln.grant.grant_id == grant_id:
                return ln
        known = ", ".join(ln.grant.grant_id for ln in self.lines[:20]) + (
            " …" if len(self.lines) > 20 else ""
        )
        raise NotInReview(
            f"權限 {grant_id} 不在覆核 {self.review_id} 中 / grant {grant_id} is not in review "
            f"{self.review_id} (grants: {known})"
        )

    @property
    def implementers(self) -> set[str]:
        """Everyone who implemented (set in the panel) a reviewed grant."""
        return {ln.grant.implementer.strip().casefold() for ln in self.lines if ln.grant.implementer.strip()}


def review_id(site_id: str, quarter: str, n: int = 1) -> str:
    """'ACR-2026Q4-tpe-hq' (a later review of the same quarter: '-2', '-3'…)."""
    return f"ACR-{quarter}-{site_id}" + (f"-{n}" if n > 1 else "")


def _describe(g: Grant, tz: tzinfo) -> str:
    until = g.valid_to.astimezone(tz).strftime("%Y-%m-%d") if g.valid_to else "—"
    return f"{','.join(g.zones)} | {g.schedule.text} | {g.valid_from.astimezone(tz):%Y-%m-%d}..{until}"


def review_lines(
    holders: Mapping[str, Holder],
    grants: Sequence[Grant],
    events: Iterable[Badge],
    quarter: Quarter,
    now: datetime,
    tz: tzinfo,
    rules: FlagRules | None = None,
    previous: Mapping[str, Grant] | None = None,
) -> tuple[list[ReviewLine], list[Grant]]:
    """Lines for every grant in force at some time in the quarter, and the previous review's removed ones.

    Flags are judged at `now` over the events given; use counts only the quarter's granted entries
    through the grant's zones. Without a previous review every line is 'added' if granted in the
    quarter, else 'none'.
    """
    in_scope = [
        g for g in grants if g.valid_from < quarter.end and (g.valid_to is None or g.valid_to > quarter.start)
    ]
    uses = Uses(events, now)
    flags = grant_flags(holders, in_scope, uses, now, tz, rules)
    lines: list[ReviewLine] = []
    for n, g in enumerate(sorted(in_scope, key=lambda g: (g.person_id, g.grant_id)), start=1):
        used = between(uses.covered(g), g.valid_from, None)
        in_period = len(between(used, max(g.valid_from, quarter.start), quarter.end))
        before = ""
        if previous is None or g.grant_id not in previous:
            change: ChangeType = "added" if previous is not None or g.valid_from >= quarter.start else "none"
        else:
            old = previous[g.grant_id]
            changed = (old.zones, old.schedule, old.valid_to, old.credential_id) != (
                g.zones, g.schedule, g.valid_to, g.credential_id,
            )  # fmt: skip
            change, before = ("modified", _describe(old, tz)) if changed else ("none", "")
        if g.valid_to is not None and quarter.start <= g.valid_to < quarter.end:
            change = "revoked"
        lines.append(
            ReviewLine(
                n,
                g,
                holders.get(g.person_id),
                tuple(flags[g.grant_id]),
                used[-1].at if used else None,
                in_period,
                change,
                before,
            )
        )
    current = {g.grant_id for g in in_scope}
    removed = [g for gid, g in sorted((previous or {}).items()) if gid not in current]
    return lines, removed


def check_decision(review_id_: str, quarter: str, status: str, decision: str, reason: str) -> Decision:
    """The decision; refused on a signed review, if unknown, or a change without a reason."""
    if status == "signed":
        raise ReviewSigned(
            f"覆核 {review_id_} 已簽核, 不得修改; 請建立新的覆核 / review {review_id_} is signed "
            f"off and read-only; start a new review of {quarter} to change it"
        )
    known = next((d for d in DECISIONS if d == decision), None)
    if known is None:
        raise InvalidDecision(f"decision {decision!r}: valid choices are {', '.join(DECISIONS)}")
    if known != "keep" and not reason.strip():
        raise InvalidDecision(f"決定 {known} 需說明理由 / a {known} decision needs a reason (--reason)")
    return known


def decide(review: Review, grant_id: str, decision: str, reason: str, by: str, at: datetime) -> Review:
    """The review with `by`'s decision on one grant; refused once signed, or without a reason to change."""
    known = check_decision(review.review_id, review.quarter, review.status, decision, reason)
    line = review.line(grant_id)
    new = replace(line, decision=known, reason=reason.strip(), decided_by=by, decided_at=at)
    return replace(review, lines=tuple(new if ln is line else ln for ln in review.lines))


def undecided(review: Review) -> list[ReviewLine]:
    """Lines without a decision (sign-off needs none: 100 % coverage)."""
    return [ln for ln in review.lines if ln.decision is None]


def sign_off(review: Review, by: str, at: datetime, note: str = "", *, aliases: Iterable[str] = ()) -> Review:
    """The review signed off by `by`; refused when signed, incomplete, or `by` implemented a grant.

    `aliases` are the signer's other names (a web user's login and display name): none of them may be
    an implementer's either.
    """
    if review.status == "signed":
        raise ReviewSigned(
            f"覆核 {review.review_id} 已簽核 / review {review.review_id} is already signed off"
        )
    if any(name.strip().casefold() in review.implementers for name in (by, *aliases)):
        raise SeparationOfDuties(
            f"{by} 為本期權限之設定人 (門禁管理者), 不得簽核覆核 (職責分離) / {by} implemented grants under "
            "review (the access administrator) and may not sign the review off: separation of duties "
            "(ISO/IEC 27002 5.18); another reviewer must sign"
        )
    missing = undecided(review)
    if missing:
        ids = ", ".join(ln.grant.grant_id for ln in missing[:10])
        raise ReviewRefused(
            f"尚有 {len(missing)} 筆權限未覆核 / {len(missing)} grant(s) have no decision yet: {ids}"
            f"{' …' if len(missing) > 10 else ''}"
        )
    return replace(review, status="signed", sign_offs=(*review.sign_offs, SignOff(by, at, "reviewer", note)))
