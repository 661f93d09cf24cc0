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
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from compliance.access.model import Badge, FlagRules, Grant, Holder

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


class _Uses:
    """The granted entries by credential, sorted by time (what every flag reads)."""

    def __init__(self, events: Iterable[Badge], now: datetime):
        by_credential: dict[str, list[Badge]] = defaultdict(list)
        by_door: dict[str, list[Badge]] = defaultdict(list)
        for e in events:
            if e.granted and e.at <= now:
                by_credential[e.credential_id].append(e)
                by_door[e.door].append(e)
        for lst in (*by_credential.values(), *by_door.values()):
            lst.sort(key=lambda e: e.at)
        self.by_credential = by_credential
        self.by_door = by_door
        self.door_times = {door: [e.at for e in lst] for door, lst in by_door.items()}


def grant_flags(
    holders: Mapping[str, Holder],
    grants: Sequence[Grant],
    events: Iterable[Badge],
    now: datetime,
    tz: tzinfo,
    rules: FlagRules | None = None,
) -> dict[str, list[Flag]]:
    """{grant id: its flags, in FLAG_CODES order} for every grant given (an unflagged grant: [])."""
    rules = rules or FlagRules()
    uses = _Uses(events, now)
    holders_of: dict[str, set[str]] = defaultdict(set)
    for g in grants:
        holders_of[g.credential_id].add(g.person_id)
    grants_of: dict[str, list[Grant]] = defaultdict(list)
    for g in grants:
        grants_of[g.credential_id].append(g)
    # Who can escort: a credential granted to someone known who is not a vendor.
    escorts = {
        g.credential_id
        for g in grants
        if (h := holders.get(g.person_id)) is not None and h.holder_type != "vendor"
    }
    out: dict[str, list[Flag]] = {}
    for g in grants:
        holder = holders.get(g.person_id)
        flag = _Found(g)
        covered = [e for e in uses.by_credential.get(g.credential_id, []) if g.covers(e.zone)]
        in_force = g.valid_at(now)

        # DORMANT_90D
        horizon = now - timedelta(days=rules.dormant_days)
        if in_force and g.valid_from <= horizon:
            last = max((e.at for e in covered if e.at >= g.valid_from), default=None)
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

        # EXPIRED_ACTIVE
        if g.valid_to is not None:
            late = [
                e
                for e in covered
                if e.at >= g.valid_to
                and not any(
                    o is not g and o.valid_at(e.at) and o.covers(e.zone) for o in grants_of[g.credential_id]
                )
            ]
            if late:
                flag(
                    "EXPIRED_ACTIVE",
                    f"到期後仍使用 {len(late)} 次",
                    f"used {len(late)} time(s) after it expired",
                    f"到期 expired {_stamp(g.valid_to, tz)}",
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
        others = sorted(holders_of[g.credential_id] - {g.person_id})
        hops = _fast_hops(uses.by_credential.get(g.credential_id, []), rules.min_travel)
        if others or hops:
            evidence = [f"同卡持有人 also held by {', '.join(others)}"] if others else []
            evidence += [
                f"{_stamp(a.at, tz)} {a.door} → {_stamp(b.at, tz)} {b.door}" for a, b in hops[:EXAMPLES]
            ]
            flag("SHARED_CARD", "一卡多人使用", "one credential, several people", *evidence)

        # AFTER_HOURS
        outside = [e for e in covered if g.valid_at(e.at) and not g.schedule.allows(e.at, tz)]
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


def _fast_hops(entries: Sequence[Badge], min_travel: timedelta) -> list[tuple[Badge, Badge]]:
    """Consecutive entries of one credential at different doors closer in time than `min_travel`."""
    return [(a, b) for a, b in itertools.pairwise(entries) if a.door != b.door and b.at - a.at < min_travel]


def _escorted(e: Badge, uses: _Uses, escorts: set[str], window: timedelta) -> bool:
    """An escort's credential was let in at the same door within `window` of `e` (edges included)."""
    times, at_door = uses.door_times.get(e.door, []), uses.by_door.get(e.door, [])
    lo = bisect.bisect_left(times, e.at - window)
    hi = bisect.bisect_right(times, e.at + window)
    return any(o.credential_id in escorts and o.direction != "out" for o in at_door[lo:hi])
