"""The flags of each access grant, with their evidence (pure: the clock and the rules are passed in).

* DORMANT_90D: the grant is in force, older than `dormant_days`, and its credential has not been let in
  through its zones for `dormant_days` or more (a last use exactly `dormant_days` ago is dormant).
* LEAVER_ACTIVE: the holder left (HR end date at or before now) and the grant is still in force.
* EXPIRED_ACTIVE: the credential was let in through the grant's zones after the grant's valid-to, and
  no other grant of that credential covered the entry.
* VENDOR_NO_WORK_ORDER: a vendor's grant names no work order.
* NO_APPROVAL: no approver. SELF_APPROVED: the requester approved it, or the approver implemented it
  (ISO/IEC 27002 5.18: approval and implementation by different people).
* SHARED_CARD: the credential is held by several people, or it was let in at two different doors
  closer in time than `min_travel` (one card in two hands).
* AFTER_HOURS: an entry the grant covered fell outside the grant's schedule (site time zone).
* UNESCORTED_VENDOR: a vendor was let in at a door and no holder who is not a vendor was let in at the
  same door within `escort_window` either side (a badge exactly at the window's edge escorts).

Only entries the panel granted count as use; entries after `now` are ignored.
"""

from __future__ import annotations

import bisect
import itertools
import typing
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from operator import attrgetter
from typing import Literal

from compliance.access.model import ALL_ZONES, Badge, FlagRules, Grant, Holder

FlagCode = Literal[
    "DORMANT_90D",
    "LEAVER_ACTIVE",
    "EXPIRED_ACTIVE",
    "VENDOR_NO_WORK_ORDER",
    "NO_APPROVAL",
    "SELF_APPROVED",
    "SHARED_CARD",
    "AFTER_HOURS",
    "UNESCORTED_VENDOR",
]
FLAG_CODES: tuple[FlagCode, ...] = typing.get_args(FlagCode)
# How many example times a flag's evidence quotes (the count says how many there were).
EXAMPLES = 3
_AT = attrgetter("at")


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag of one grant: why (zh-TW and English) and the evidence (times, people, doors)."""

    code: FlagCode
    grant_id: str
    person_id: str
    reason_zh: str
    reason_en: str
    evidence: tuple[str, ...] = ()


class _Found:
    """The flags found for one grant, in the order raised."""

    def __init__(self, grant: Grant):
        self.grant = grant
        self.flags: list[Flag] = []

    def __call__(self, code: FlagCode, zh: str, en: str, *evidence: str) -> None:
        self.flags.append(Flag(code, self.grant.grant_id, self.grant.person_id, zh, en, tuple(evidence)))


def _stamp(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _same(a: str, b: str) -> bool:
    return bool(a.strip()) and a.strip().casefold() == b.strip().casefold()


class Uses:
    """The granted entries up to `now` by credential and by door, sorted by time, in UTC (what every flag
    reads): built once, shared by the flags and a review's use counts.

    Every time is compared in UTC: comparing aware datetimes of different zones computes both offsets
    on each comparison, which made up half of the flags' time over a quarter of a million entries.
    """

    def __init__(self, events: Iterable[Badge], now: datetime):
        self.now = now.astimezone(UTC)
        by_credential: dict[str, list[Badge]] = defaultdict(list)
        by_door: dict[str, list[Badge]] = defaultdict(list)
        for e in events:
            if not e.granted:
                continue
            if e.at.tzinfo is not UTC:
                e = replace(e, at=e.at.astimezone(UTC))
            if e.at <= self.now:
                by_credential[e.credential_id].append(e)
                by_door[e.door].append(e)
        for lst in (*by_credential.values(), *by_door.values()):
            lst.sort(key=_AT)  # the store's events come sorted: a linear pass
        self.by_credential: Mapping[str, list[Badge]] = by_credential
        self.by_door: Mapping[str, list[Badge]] = by_door
        self._covered: dict[tuple[str, tuple[str, ...]], list[Badge]] = {}
        self._hops: dict[str, list[tuple[Badge, Badge]]] = {}

    def covered(self, g: Grant) -> list[Badge]:
        """The entries of the grant's credential through the grant's zones, by time."""
        key = (g.credential_id, g.zones)
        found = self._covered.get(key)
        if found is None:
            entries = self.by_credential.get(g.credential_id, [])
            found = entries if ALL_ZONES in g.zones else [e for e in entries if e.zone in g.zones]
            self._covered[key] = found
        return found

    def hops(self, credential_id: str, min_travel: timedelta) -> list[tuple[Badge, Badge]]:
        """Consecutive entries of one credential at different doors closer in time than `min_travel`."""
        found = self._hops.get(credential_id)
        if found is None:
            entries = self.by_credential.get(credential_id, [])
            found = [
                (a, b)
                for a, b in itertools.pairwise(entries)
                if a.door != b.door and b.at - a.at < min_travel
            ]
            self._hops[credential_id] = found
        return found


def between(entries: Sequence[Badge], start: datetime | None, end: datetime | None) -> Sequence[Badge]:
    """The entries (sorted by time) in [start, end); None leaves that side open."""
    lo = 0 if start is None else bisect.bisect_left(entries, start, key=_AT)
    hi = len(entries) if end is None else bisect.bisect_left(entries, end, key=_AT)
    return entries[lo:hi]


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


def _always(g: Grant) -> bool:
    """A 24x7 schedule: no entry can fall outside it."""
    s = g.schedule
    return len(s.days) == 7 and s.start == s.end


def grant_flags(
    holders: Mapping[str, Holder],
    grants: Sequence[Grant],
    events: Iterable[Badge] | Uses,
    now: datetime,
    tz: tzinfo,
    rules: FlagRules | None = None,
) -> dict[str, list[Flag]]:
    """{grant id: its flags, in FLAG_CODES order} for every grant given (an unflagged grant: []).

    `events` may be a `Uses` built over the same `now` (a review reuses it for its counts).
    """
    rules = rules or FlagRules()
    uses = events if isinstance(events, Uses) else Uses(events, now)
    now = uses.now
    holders_of: dict[str, set[str]] = defaultdict(set)
    grants_of: dict[str, list[tuple[Grant, datetime, datetime | None]]] = defaultdict(list)
    for g in grants:
        holders_of[g.credential_id].add(g.person_id)
        grants_of[g.credential_id].append((g, g.valid_from.astimezone(UTC), _utc(g.valid_to)))
    # Who can escort: a credential granted to someone known who is not a vendor.
    escorts = {
        g.credential_id
        for g in grants
        if (h := holders.get(g.person_id)) is not None and h.holder_type != "vendor"
    }
    horizon = now - timedelta(days=rules.dormant_days)
    out: dict[str, list[Flag]] = {}
    for g in grants:
        holder = holders.get(g.person_id)
        flag = _Found(g)
        covered = uses.covered(g)
        valid_from, valid_to = g.valid_from.astimezone(UTC), _utc(g.valid_to)
        in_force = valid_from <= now and (valid_to is None or now < valid_to)

        # DORMANT_90D (entries are sorted: the last one is the latest use, if it is inside the grant)
        if in_force and valid_from <= horizon:
            last = covered[-1].at if covered and covered[-1].at >= valid_from else None
            if last is None or last <= horizon:
                seen = "從未使用 never used" if last is None else f"最近使用 last used {_stamp(last, tz)}"
                flag(
                    "DORMANT_90D",
                    f"{rules.dormant_days} 天以上未使用仍有效",
                    f"not used for {rules.dormant_days} days or more, still in force",
                    seen,
                )

        # LEAVER_ACTIVE
        if holder is not None and holder.left_at is not None and holder.left_at <= now and in_force:
            until = (
                "無到期日 no end date" if g.valid_to is None else f"有效至 valid to {_stamp(g.valid_to, tz)}"
            )
            flag(
                "LEAVER_ACTIVE",
                "人員已離職, 權限仍有效",
                "the holder has left; the grant is still in force",
                f"離職 left {_stamp(holder.left_at, tz)}",
                until,
            )

        # EXPIRED_ACTIVE: entries after valid-to that no other grant of the credential covered
        if valid_to is not None:
            others = [o for o in grants_of[g.credential_id] if o[0] is not g]
            late = [
                e
                for e in between(covered, valid_to, None)
                if not any(o.covers(e.zone) and o_from <= e.at and (o_to is None or e.at < o_to)
                           for o, o_from, o_to in others)
            ]  # fmt: skip
            if late:
                flag(
                    "EXPIRED_ACTIVE",
                    f"到期後仍使用 {len(late)} 次",
                    f"used {len(late)} time(s) after it expired",
                    f"到期 expired {_stamp(g.valid_to or valid_to, tz)}",
                    *(f"{_stamp(e.at, tz)} {e.door}" for e in late[:EXAMPLES]),
                )

        # VENDOR_NO_WORK_ORDER
        if holder is not None and holder.holder_type == "vendor" and not g.work_order.strip():
            flag("VENDOR_NO_WORK_ORDER", "廠商權限無工單", "a vendor's grant without a work order")

        # NO_APPROVAL / SELF_APPROVED
        if not g.approver.strip():
            flag("NO_APPROVAL", "無核准人", "no approver", f"申請單 ticket {g.ticket or '—'}")
        else:
            if _same(g.requester, g.approver):
                flag("SELF_APPROVED", "申請人自行核准", "approved by its own requester", f"{g.approver}")
            elif _same(g.approver, g.implementer):
                flag("SELF_APPROVED", "核准人自行設定", "implemented by its own approver", f"{g.approver}")

        # SHARED_CARD
        sharers = sorted(holders_of[g.credential_id] - {g.person_id})
        hops = uses.hops(g.credential_id, rules.min_travel)
        if sharers or hops:
            evidence = [f"同卡持有人 also held by {', '.join(sharers)}"] if sharers else []
            evidence += [
                f"{_stamp(a.at, tz)} {a.door} → {_stamp(b.at, tz)} {b.door}" for a, b in hops[:EXAMPLES]
            ]
            flag("SHARED_CARD", "一卡多人使用", "one credential, several people", *evidence)

        # AFTER_HOURS (a 24x7 grant has no outside)
        if not _always(g):
            outside = [e for e in between(covered, valid_from, valid_to) if not g.schedule.allows(e.at, tz)]
            if outside:
                flag(
                    "AFTER_HOURS",
                    f"授權時段外進出 {len(outside)} 次 ({g.schedule.text})",
                    f"{len(outside)} entries outside the schedule ({g.schedule.text})",
                    *(f"{_stamp(e.at, tz)} {e.door}" for e in outside[:EXAMPLES]),
                )

        # UNESCORTED_VENDOR
        if holder is not None and holder.holder_type == "vendor":
            alone = [
                e
                for e in covered
                if e.direction != "out" and not _escorted(e, uses, escorts, rules.escort_window)
            ]
            if alone:
                flag(
                    "UNESCORTED_VENDOR",
                    f"廠商進入無人陪同 {len(alone)} 次",
                    f"vendor let in without an escort {len(alone)} time(s)",
                    *(f"{_stamp(e.at, tz)} {e.door}" for e in alone[:EXAMPLES]),
                )
        out[g.grant_id] = flag.flags
    return out


def _escorted(e: Badge, uses: Uses, escorts: set[str], window: timedelta) -> bool:
    """An escort's credential was let in at the same door within `window` of `e` (edges included)."""
    at_door = uses.by_door.get(e.door, [])
    lo = bisect.bisect_left(at_door, e.at - window, key=_AT)
    hi = bisect.bisect_right(at_door, e.at + window, key=_AT)
    return any(o.credential_id in escorts and o.direction != "out" for o in at_door[lo:hi])
