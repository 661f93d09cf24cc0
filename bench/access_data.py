"""The synthetic quarter of bench.access: holders, grants and badge events as the generic CSV files.

One site (Asia/Taipei, no DST) with the zones mr1, mr2, ups, battery, noc and cage-01 .. cage-24 (one
or two doors each; the MR2 panel logs no direction), deterministic for a seed (docs/access-import.md
columns, UTF-8 with BOM, date-times in local wall time):

* holders: employees in office hours, operations staff on 24x7 shifts, security guards (who escort
  vendors), contractors (some on weekend nights), futures-affiliate staff, vendors (~3 %), others;
  ~4 % of employees and contractors left (half before the quarter), their grants revoked within 36 h
  but for ~15 % of them;
* grants: ~4 per person on disjoint zones (a base grant on mr1 or mr2, then ups/battery, noc, cages),
  one schedule per person ('24x7', 'mon-fri 08:00-18:00', 'mon-fri 07:00-20:00', 'mon,wed,fri
  09:00-17:30', 'sat-sun 22:00-06:00'), granted between 2021 and the quarter (~8 % inside it);
  planted defects: no approver (~1.5 %), self-approved or approver = implementer (~1.5 %), vendors'
  grants without a work order (~15 % of them), expired grants still used (~1 %), shared cards
  (~0.5 % of people use another's card), grants nobody uses (dormant, ~10 % plus idle people);
* badge events: visits inside each credential's schedule (a door in, the door out; a cage through
  the MR1 door first), a card never let in at two doors within 90 s but ~15 planted ones (10-40 s),
  ~3 % of office-hours people with 1-3 visits in the evening or on a Saturday, ~1 % of visits after a
  refused badge at a door the card does not open, vendors' visits escorted by a guard badging right
  after them at each door (~85 %) or alone. The total is exactly the number asked for.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from compliance.access.review import Quarter

DATASET_VERSION = "access-bench/1"
SEED = 16000
TZ = ZoneInfo("Asia/Taipei")  # no DST since 1979: local seconds are wall-clock seconds
DAY = 86_400
HOUR = 3_600
ZONE_DOORS: dict[str, tuple[str, ...]] = {
    "mr1": ("MR1 正門 main door", "MR1 後門 rear door"),
    "mr2": ("MR2 正門 main door",),
    "ups": ("UPS 室 UPS room",),
    "battery": ("電池室 battery room",),
    "noc": ("NOC 監控室",),
    **{f"cage-{n:02d}": (f"cage-{n:02d} 籠門 cage door",) for n in range(1, 25)},
}
CAGES = tuple(z for z in ZONE_DOORS if z.startswith("cage-"))
DOORS: tuple[tuple[str, str], ...] = tuple((d, z) for z, ds in ZONE_DOORS.items() for d in ds)
DOOR_INDEX = {d: i for i, (d, _) in enumerate(DOORS)}
NO_DIRECTION = {"MR2 正門 main door"}  # a panel without in/out readers: 'unknown'
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐周葉蘇莊呂江何蕭羅高"
GIVEN = [
    "志明",
    "淑芬",
    "建宏",
    "美玲",
    "俊傑",
    "雅婷",
    "家豪",
    "怡君",
    "宗翰",
    "佩珊",
    "冠宇",
    "欣怡",
    "承恩",
    "詩涵",
    "柏翰",
    "宜蓁",
    "彥廷",
    "心怡",
    "冠廷",
    "思妤",
]
UNITS = [
    "資訊部 IT",
    "網路組 Network",
    "系統組 Systems",
    "資料庫組 DBA",
    "資安組 Security Ops",
    "交易系統組 Trading systems",
    "稽核室 Audit",
    "設施組 Facilities",
]
CONTRACTOR_UNITS = ["系統整合商 SI", "網路維運 NetOps Co.", "駐點工程師 Resident engineers"]
VENDOR_UNITS = [
    ("大同機電 Tatung M&E", "ups;battery"),
    ("冷氣工程 HVAC Co.", "mr1"),
    ("消防設備 Fire safety", "mr1"),
    ("電池更換 Battery service", "battery"),
    ("機櫃安裝 Rack install", "cage"),
    ("電信業者 Telecom carrier", "mr2"),
]
REQUESTERS = ["李組長", "陳課長", "王組長", "張課長", "劉組長", "蔡課長"]
APPROVERS = ["黃經理", "林協理", "吳經理", "鄭副理"]
IMPLEMENTERS = ["門禁管理員 許", "門禁管理員 邱"]
OFFICE = "mon-fri 08:00-18:00"
LONG_DAY = "mon-fri 07:00-20:00"
MWF = "mon,wed,fri 09:00-17:30"
NIGHTS = "sat-sun 22:00-06:00"
ALWAYS = "24x7"
# Each schedule's visit slots: weekday -> (start, end, weight), seconds of the local day (end may pass
# midnight). A visit lies inside one slot, and a card's slots never overlap: its events are in order.
_H = HOUR
SLOTS: dict[str, dict[int, list[tuple[int, int, float]]]] = {
    ALWAYS: {
        d: [(h * _H, (h + 3) * _H, 1.5 if 6 <= h < 21 else 0.4) for h in range(0, 24, 3)] for d in range(7)
    },
    OFFICE: {
        d: [
            (8 * _H, 11 * _H + 1200, 1.2),
            (11 * _H + 1200, 14 * _H + 2400, 0.8),
            (14 * _H + 2400, 18 * _H, 1.0),
        ]
        for d in range(5)
    },
    LONG_DAY: {
        d: [
            (7 * _H, 10 * _H + 900, 1.0),
            (10 * _H + 900, 13 * _H + 1800, 1.0),
            (13 * _H + 1800, 16 * _H + 2700, 1.0),
            (16 * _H + 2700, 20 * _H, 0.6),
        ]
        for d in range(5)
    },
    MWF: {
        d: [
            (9 * _H, 11 * _H + 3000, 1.0),
            (11 * _H + 3000, 14 * _H + 2400, 0.8),
            (14 * _H + 2400, 17 * _H + 1800, 1.0),
        ]
        for d in (0, 2, 4)
    },
    NIGHTS: {d: [(22 * _H, 26 * _H, 1.0), (26 * _H, 30 * _H, 0.5)] for d in (5, 6)},
}
# Outside every office-hours schedule: a weekday evening, a Saturday morning.
AFTER_HOURS_SLOTS = {
    **{d: [(20 * _H + 1800, 23 * _H + 1800, 1.0)] for d in range(5)},
    5: [(9 * _H, 13 * _H, 1.0)],
}


@dataclass(frozen=True)
class Spec:
    """What to generate: sizes, the quarter (in TZ) and the seed."""

    people: int = 5_000
    grants: int = 20_000
    events: int = 1_000_000
    quarter: str = "2026Q4"
    seed: int = SEED

    @property
    def period(self) -> Quarter:
        return Quarter.parse(self.quarter, TZ)

    @property
    def now(self) -> datetime:
        """The snapshot: 09:00 on the third day after the quarter (2027-01-04, a Monday, for 2026Q4)."""
        return self.period.end + timedelta(days=3, hours=9)


@dataclass
class Person:
    index: int
    pid: str
    name: str
    holder_type: str
    unit: str
    profile: str  # ops, guard, office, idle, contractor, night, affiliate, other, vendor
    schedule: str
    card: str
    left_at: int | None = None  # seconds from the quarter's start
    revoked: bool = True
    weight: float = 1.0


@dataclass
class GrantPlan:
    gid: str
    person: Person
    credential: str
    credential_type: str
    zones: tuple[str, ...]
    valid_from: int
    valid_to: int | None
    requester: str = ""
    approver: str = ""
    implementer: str = ""
    ticket: str = ""
    work_order: str = ""
    justification: str = ""
    used: bool = True
    expired_in_use: bool = False  # planted: the panel still lets the card in after valid_to


@dataclass
class Stream:
    """One credential's events: the grants it uses, its budget, the slots it may visit in."""

    credential: str
    person: Person
    grants: list[GrantPlan]
    budget: int = 0
    slots: list[tuple[int, int, float]] = field(default_factory=list)
    extra_slots: list[tuple[int, int, float]] = field(default_factory=list)  # planted after-hours visits
    hop: bool = False  # planted: two doors 10-40 s apart once


@dataclass
class Dataset:
    """What was written, with the defects planted (before the flags say what they make of them)."""

    holders: Path
    grants: Path
    badges: Path
    people: dict[str, int]
    grant_count: int
    credentials: int
    events: int
    granted_events: int
    planted: dict[str, int]


# Local seconds from the quarter's start, door index, credential, let in, direction.
Event = tuple[int, int, str, bool, str]


class _Gen:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        q = spec.period
        self.start = q.start.replace(tzinfo=None)  # local wall clock
        self.length = int((q.end - q.start).total_seconds())
        self.now = int((spec.now - q.start).total_seconds())
        self.days = self.length // DAY
        self.planted: dict[str, int] = {}
        self.people: list[Person] = []
        self.grants: list[GrantPlan] = []
        self.ticket = 0

    def plant(self, what: str, n: int = 1) -> None:
        self.planted[what] = self.planted.get(what, 0) + n

    def wall(self, s: int) -> str:
        return (self.start + timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S")

    def day(self, n: int) -> datetime:
        """Local midnight `n` days after the quarter's first day."""
        return self.start + timedelta(days=n)

    def day_at(self, first: datetime, last: datetime, hour: int = 0) -> int:
        """A random local day in [first, last] at `hour`, as seconds from the quarter's start."""
        span = (last - first).days
        d = first + timedelta(days=self.rng.randint(0, span), hours=hour)
        return int((d - self.start).total_seconds())

    # -- holders

    def make_people(self) -> None:
        n, rng = self.spec.people, self.rng
        counts = {
            "vendor": max(1, round(0.03 * n)),
            "guard": max(1, round(0.004 * n)),
            "ops": max(1, round(0.04 * n)),
            "contractor": round(0.14 * n),
            "affiliate": round(0.03 * n),
            "other": round(0.01 * n),
        }
        counts["office"] = n - sum(counts.values())
        if counts["office"] < 1:
            raise ValueError(f"--people {n}: too few for every kind of holder")
        kinds = [k for k, c in counts.items() for _ in range(c)]
        rng.shuffle(kinds)
        for i, kind in enumerate(kinds, start=1):
            name = SURNAMES[rng.randrange(len(SURNAMES))] + GIVEN[rng.randrange(len(GIVEN))]
            card = f"{4100000000 + i * 7:010d}"
            if kind in ("office", "ops", "guard"):
                profile = kind if kind != "office" or rng.random() > 0.08 else "idle"
                unit = (
                    "保全 Security"
                    if kind == "guard"
                    else "值班 Operations"
                    if kind == "ops"
                    else rng.choice(UNITS)
                )
                schedule = ALWAYS if kind in ("ops", "guard") else OFFICE if rng.random() < 0.75 else LONG_DAY
                p = Person(i, f"E{i:05d}", name, "employee", unit, profile, schedule, card)
            elif kind == "contractor":
                r = rng.random()
                schedule, profile = (
                    (NIGHTS, "night") if r < 0.05 else (MWF, kind) if r < 0.3 else (OFFICE, kind)
                )
                p = Person(
                    i, f"C{i:05d}", name, "contractor", rng.choice(CONTRACTOR_UNITS), profile, schedule, card
                )
            elif kind == "affiliate":
                p = Person(
                    i, f"F{i:05d}", name, "futures_affiliate", "期貨子公司 Futures", kind, OFFICE, card
                )
            elif kind == "other":
                p = Person(i, f"O{i:05d}", name, "other", "外部稽核 External audit", kind, OFFICE, card)
            else:
                unit, _ = rng.choice(VENDOR_UNITS)
                schedule = ALWAYS if rng.random() < 0.35 else OFFICE
                p = Person(i, f"V{i:05d}", name, "vendor", unit, "vendor", schedule, card)
            p.weight = {
                "ops": 4.0,
                "office": 1.0,
                "contractor": 1.0,
                "night": 0.6,
                "affiliate": 0.7,
                "other": 0.3,
            }.get(p.profile, 0.0) * rng.uniform(0.3, 1.7)
            if p.holder_type in ("employee", "contractor") and p.profile != "guard" and rng.random() < 0.04:
                before = rng.random() < 0.5
                first, last = (
                    (self.day(-183), self.day(-1)) if before else (self.day(0), self.day(self.days - 1))
                )
                p.left_at = self.day_at(first, last, 18)
                p.revoked = rng.random() > 0.15
                self.plant("leavers")
                if not p.revoked:
                    self.plant("leavers with grants not revoked")
            self.people.append(p)

    # -- grants

    def zone_sets(self, p: Person, count: int) -> list[tuple[str, ...]]:
        """`count` disjoint zone sets: the base one first."""
        rng = self.rng
        if p.profile == "guard":
            return [("*",)]
        if p.profile == "vendor":
            _, zones = next(v for v in VENDOR_UNITS if v[0] == p.unit)
            first = (rng.choice(CAGES),) if zones == "cage" else tuple(zones.split(";"))
            out = [first]
            if count > 1:
                out.append((rng.choice([c for c in CAGES if c not in first]),))
            return out
        base = {"ops": ("mr1", "mr2"), "affiliate": ("mr2",)}.get(p.profile)
        if base is None:
            base = ("mr1", "mr2") if rng.random() < 0.2 else ("mr1",)
        out, taken = [base], set(base)
        extras = [("ups", "battery"), ("noc",)] if p.profile == "ops" else []
        cages = list(CAGES)
        rng.shuffle(cages)
        while len(out) < count:
            if extras:
                z = extras.pop(0)
            elif p.profile != "ops" and rng.random() < 0.2 and not {"ups", "noc"} <= taken:
                z = (rng.choice([x for x in ("ups", "noc") if x not in taken]),)
            else:
                if not cages:
                    break
                z = tuple(sorted(cages.pop() for _ in range(min(len(cages), rng.choice((1, 1, 2))))))
            if taken & set(z):
                continue
            out.append(z)
            taken |= set(z)
        return out

    def make_grants(self) -> None:
        rng = self.rng
        per = {
            "ops": (6, 8),
            "office": (3, 5),
            "idle": (2, 4),
            "contractor": (2, 4),
            "night": (2, 3),
            "affiliate": (2, 4),
            "other": (2, 3),
            "vendor": (1, 2),
            "guard": (1, 1),
        }
        counts = {p.pid: rng.randint(*per[p.profile]) for p in self.people}
        adjustable = [p for p in self.people if p.profile not in ("vendor", "guard")]
        diff = self.spec.grants - sum(counts.values())
        while diff:
            p = rng.choice(adjustable)
            if diff > 0 and counts[p.pid] < 12:
                counts[p.pid], diff = counts[p.pid] + 1, diff - 1
            elif diff < 0 and counts[p.pid] > 1:
                counts[p.pid], diff = counts[p.pid] - 1, diff + 1
        for p in self.people:
            pin = p.profile in ("office", "contractor") and rng.random() < 0.08
            sets = self.zone_sets(p, counts[p.pid])
            while len(sets) < counts[p.pid]:  # out of cages (never with the defaults): one more base-like
                sets.append(sets[-1])
            for k, zones in enumerate(sets):
                self.grants.append(self.grant(p, k, zones, pin and k > 0))

    def grant(self, p: Person, k: int, zones: tuple[str, ...], pin: bool) -> GrantPlan:
        rng = self.rng
        self.ticket += 1
        r = rng.random()
        if p.profile == "vendor":
            valid_from = self.day_at(self.day(-200), self.day(60), 0)
            ends_inside = rng.random() < 0.3
            valid_to: int | None = (self.length + 90 * DAY) // DAY * DAY  # the next quarter's end
            if ends_inside:
                valid_to = max(valid_from + 14 * DAY, self.day_at(self.day(20), self.day(85)))
        else:
            if r < 0.85:
                valid_from = self.day_at(self.day(-2100), self.day(-93), 9)
            elif r < 0.92:
                valid_from = self.day_at(self.day(-92), self.day(-1), 9)
            else:
                valid_from = self.day_at(self.day(0), self.day(self.days - 10), 9)
            valid_to = None
            if p.holder_type == "contractor":
                e = rng.random()
                if e < 0.6:
                    valid_to = (self.length + 180 * DAY) // DAY * DAY  # the contract ends in 9 months
                elif e < 0.7:
                    valid_to = self.day_at(self.day(10), self.day(85))
        if p.left_at is not None and p.revoked:
            valid_to = p.left_at + rng.randrange(0, 37) * HOUR
        if valid_to is not None and valid_to <= valid_from:
            valid_from = valid_to - 30 * DAY
        credential = f"pin:{p.pid}" if pin else p.card
        g = GrantPlan(
            gid=f"G{len(self.grants) + 1:06d}",
            person=p,
            credential=credential,
            credential_type="pin" if pin else "card",
            zones=zones,
            valid_from=valid_from,
            valid_to=valid_to,
            requester=rng.choice(REQUESTERS),
            approver=rng.choice(APPROVERS),
            implementer=rng.choice(IMPLEMENTERS),
            ticket=f"REQ-{self.ticket:06d}",
            justification={
                "vendor": "維護作業 maintenance",
                "guard": "陪同巡查 escort and patrol",
                "ops": "值班維運 operations shifts",
            }.get(p.profile, "機房作業 machine-room work"),
        )
        if p.profile == "vendor":
            if rng.random() < 0.85:
                g.work_order = f"WO-2026-{self.ticket:05d}"
            else:
                self.plant("vendor grants without a work order")
        d = rng.random()
        if d < 0.015:
            g.approver = ""
            self.plant("grants without an approver")
        elif d < 0.0225:
            g.approver = g.requester
            self.plant("grants approved by their requester")
        elif d < 0.03:
            g.implementer = g.approver
            self.plant("grants implemented by their approver")
        # Dormant: some grants nobody uses (the base one always is, but by idle people).
        g.used = p.profile not in ("idle",) and (
            k == 0 or p.profile in ("ops", "guard", "vendor") or rng.random() > 0.1
        )
        return g

    def plant_grant_defects(self) -> None:
        rng = self.rng
        # Expired and still used: a non-base grant of an active card ends mid-quarter, the panel still opens.
        active = [
            g
            for g in self.grants
            if g.used
            and g.valid_to is None
            and g.person.left_at is None
            and g.person.profile in ("office", "ops", "contractor")
            and g.zones != ("mr1",)
            and g.zones != ("mr1", "mr2")
            and g.valid_from < 0
        ]
        for g in rng.sample(active, min(len(active), round(0.01 * len(self.grants)))):
            g.valid_to = self.day_at(self.day(20), self.day(60))
            g.expired_in_use = True
            self.plant("grants expired but still used")
        # Shared cards: someone's grants all on a colleague's card (that colleague's events are the card's).
        pool = [p for p in self.people if p.profile in ("office", "ops") and p.left_at is None]
        rng.shuffle(pool)
        pairs = max(1, round(0.005 * len(self.people)))
        by_person: dict[str, list[GrantPlan]] = {}
        for g in self.grants:
            by_person.setdefault(g.person.pid, []).append(g)
        for owner, borrower in zip(pool[0:pairs], pool[pairs : 2 * pairs], strict=True):
            for g in by_person[borrower.pid]:
                g.credential, g.credential_type, g.used = owner.card, "card", False
            borrower.weight = 0.0
            self.plant("people using another's card")

    # -- badge events

    def streams(self) -> list[Stream]:
        by_cred: dict[str, Stream] = {}
        for g in self.grants:
            if not g.used:
                continue
            s = by_cred.get(g.credential)
            if s is None:
                s = by_cred[g.credential] = Stream(g.credential, g.person, [])
            s.grants.append(g)
        out = list(by_cred.values())
        for s in out:
            s.slots = self.valid_slots(s, SLOTS[s.person.schedule])
        return out

    def valid_slots(
        self, s: Stream, template: dict[int, list[tuple[int, int, float]]]
    ) -> list[tuple[int, int, float]]:
        """The slots of the quarter (before now) in which the card opens at least one zone throughout."""
        windows = [
            (g.valid_from, self.length if g.expired_in_use or g.valid_to is None else g.valid_to)
            for g in s.grants
        ]
        left = s.person.left_at if s.person.left_at is not None else self.length
        first_weekday = self.start.weekday()
        out = []
        for day in range(self.days):
            for a, b, w in template.get((first_weekday + day) % 7, ()):
                lo, hi = day * DAY + a, day * DAY + b
                if hi > min(self.length, self.now, left):
                    continue
                if any(f <= lo and hi < t for f, t in windows):
                    out.append((lo, hi, w))
        return out

    def zones_at(self, s: Stream, lo: int, hi: int) -> list[tuple[str, float]]:
        out = []
        for g in s.grants:
            end = self.length if g.expired_in_use or g.valid_to is None else g.valid_to
            if g.valid_from <= lo and hi < end:
                for z in g.zones:
                    out.append((z, 3.0 if z in ("mr1", "mr2") else 2.0 if g.expired_in_use else 1.0))
        return out

    def visit(self, s: Stream, lo: int, hi: int, hop: bool = False) -> list[Event]:
        """One visit inside [lo, hi): events in order, at least 90 s between two doors (but a hop)."""
        rng, cred = self.rng, s.credential
        options = self.zones_at(s, lo, hi)
        zones = [z for z, _ in options]
        if "*" in zones:
            zones = list(ZONE_DOORS)
            options = [(z, 1.0) for z in zones]
        zone = rng.choices([z for z, _ in options], [w for _, w in options])[0]
        t = lo + rng.randrange(120, 600)
        events: list[Event] = []
        if rng.random() < 0.01:
            refused = [z for z in ZONE_DOORS if z not in zones]
            if refused:
                events.append(
                    _event(t - rng.randrange(30, 90), ZONE_DOORS[rng.choice(refused)][0], cred, "in", False)
                )
        if hop and "mr1" in zones:
            main, rear = ZONE_DOORS["mr1"]
            t1 = t + rng.randrange(10, 41)
            return [
                *events,
                _event(t, main, cred, "in"),
                _event(t1, rear, cred, "in"),
                _event(t1 + rng.randrange(600, 3600), rear, cred, "out"),
            ]
        room = hi - t - 120
        if zone.startswith("cage-") and "mr1" in zones:
            main, cage = ZONE_DOORS["mr1"][0], ZONE_DOORS[zone][0]
            t1 = t + rng.randrange(120, 480)
            t2 = t1 + rng.randrange(600, max(601, min(5400, room - 1000)))
            t3 = t2 + rng.randrange(120, 360)
            return [
                *events,
                _event(t, main, cred, "in"),
                _event(t1, cage, cred, "in"),
                _event(t2, cage, cred, "out"),
                _event(t3, main, cred, "out"),
            ]
        doors = ZONE_DOORS[zone]
        door = doors[0] if len(doors) == 1 or rng.random() < 0.75 else doors[1]
        t1 = t + rng.randrange(600, max(601, min(7200, room)))
        return [*events, _event(t, door, cred, "in"), _event(t1, door, cred, "out")]

    def run(self, s: Stream, budget: int) -> list[list[Event]]:
        """The card's visits, `budget` events in all (the last visit cut short), in time order."""
        rng = self.rng
        visits: list[list[Event]] = []
        left = budget
        for lo, hi, _ in s.extra_slots:
            if left <= 0:
                break
            v = self.visit(s, lo, hi)[:left]
            visits.append(v)
            left -= len(v)
        # Weighted sampling without replacement (Efraimidis-Spirakis keys), taken lazily.
        keyed = sorted(s.slots, key=lambda x: -(rng.random() ** (1.0 / x[2])))
        for i, (lo, hi, _) in enumerate(keyed):
            if left <= 0:
                break
            v = self.visit(s, lo, hi, hop=s.hop and i == 0)[:left]
            visits.append(v)
            left -= len(v)
        if left > 0:
            raise RuntimeError(f"credential {s.credential}: {left} events left over, no slot left")
        visits.sort(key=lambda v: v[0][0])
        return visits

    def make_events(self) -> list[Event]:
        rng, n = self.rng, self.spec.events
        streams = self.streams()
        events: list[Event] = []
        # Vendors first: their visits decide the guards' escort badges.
        vendors = [s for s in streams if s.person.profile == "vendor" and s.slots]
        guards = [s for s in streams if s.person.profile == "guard"]
        vendor_visits: list[list[Event]] = []
        for s in vendors:
            visits = rng.randint(2, 12)
            vendor_visits += self.run(s, min(2 * visits, 2 * len(s.slots)))
        vendor_visits.sort(key=lambda v: v[0][0])
        free = {g.credential: -DAY for g in guards}
        escort_events: list[Event] = []
        for v in vendor_visits:
            events += v
            available = [c for c, t in free.items() if t <= v[0][0] - 600]
            if rng.random() < 0.15 or not available:
                self.plant("vendor visits without a guard")
                continue
            guard = rng.choice(available)
            for e in v:  # right after each entry (a door without direction: each badge)
                if e[3] and e[4] != "out":
                    escort_events.append((e[0] + rng.randrange(1, 31), e[1], guard, True, "in"))
            free[guard] = v[-1][0] + 600
        events += escort_events
        # Everyone else shares what is left, in proportion to their weight, within what their slots hold.
        others = [
            s
            for s in streams
            if s.person.profile not in ("vendor", "guard") and s.person.weight > 0 and s.slots
        ]
        office = [s for s in others if s.person.schedule in (OFFICE, LONG_DAY, MWF)]
        for s in rng.sample(office, round(0.03 * len(office))):
            days = rng.sample(range(self.days), 3)
            for d in days[: rng.randint(1, 3)]:
                for a, b, w in AFTER_HOURS_SLOTS.get((self.start.weekday() + d) % 7, ()):
                    lo, hi = d * DAY + a, d * DAY + b
                    if self.zones_at(s, lo, hi):
                        s.extra_slots.append((lo, hi, w))
            if s.extra_slots:
                self.plant("people with after-hours visits")
        hoppers = [s for s in others if any("mr1" in g.zones and g.valid_from < 0 for g in s.grants)]
        for s in rng.sample(hoppers, min(15, len(hoppers))):
            s.hop = True
            self.plant("cards at two doors 10-40 s apart")
        budgets = _allocate(
            n - len(events),
            [s.person.weight * len(s.grants) for s in others],
            [int(1.6 * len(s.slots)) for s in others],
        )
        for s, b in zip(others, budgets, strict=True):
            for v in self.run(s, b):
                events += v
        if len(events) != n:
            raise RuntimeError(f"{len(events)} events generated, {n} asked for")
        return events

    # -- files

    def write(self, folder: Path, events: list[Event]) -> Dataset:
        folder.mkdir(parents=True, exist_ok=True)
        holders, grants, badges = folder / "holders.csv", folder / "grants.csv", folder / "badges.csv"
        with holders.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["person_id", "name", "holder_type", "org_unit", "left_at"])
            for p in self.people:
                w.writerow(
                    [p.pid, p.name, p.holder_type, p.unit, "" if p.left_at is None else self.wall(p.left_at)]
                )
        with grants.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "grant_id",
                    "person_id",
                    "credential_id",
                    "credential_type",
                    "zones",
                    "schedule",
                    "valid_from",
                    "valid_to",
                    "requester",
                    "approver",
                    "implementer",
                    "ticket",
                    "work_order",
                    "justification",
                ]
            )
            for g in self.grants:
                w.writerow(
                    [
                        g.gid,
                        g.person.pid,
                        g.credential,
                        g.credential_type,
                        ";".join(g.zones),
                        g.person.schedule,
                        self.wall(g.valid_from),
                        "" if g.valid_to is None else self.wall(g.valid_to),
                        g.requester,
                        g.approver,
                        g.implementer,
                        g.ticket,
                        g.work_order,
                        g.justification,
                    ]
                )
        events.sort()
        first = min(0, events[0][0] // DAY) if events else 0
        last = events[-1][0] // DAY + 1 if events else 1
        days = {d: (self.start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(first, last + 1)}
        clock = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]
        with badges.open("w", encoding="utf-8-sig", newline="") as fh:
            fh.write("at,door,zone,credential_id,granted,direction\r\n")
            lines = []
            for t, di, cred, ok, direction in events:
                door, zone = DOORS[di]
                sod = t % DAY
                lines.append(
                    f"{days[t // DAY]} {clock[sod // 60]}:{sod % 60:02d},{door},{zone},{cred},"
                    f"{'yes' if ok else 'no'},{direction}\r\n"
                )
                if len(lines) >= 50_000:
                    fh.write("".join(lines))
                    lines = []
            fh.write("".join(lines))
        kinds: dict[str, int] = {}
        for p in self.people:
            kinds[p.holder_type] = kinds.get(p.holder_type, 0) + 1
        return Dataset(
            holders,
            grants,
            badges,
            kinds,
            len(self.grants),
            len({g.credential for g in self.grants}),
            len(events),
            sum(1 for e in events if e[3]),
            dict(sorted(self.planted.items())),
        )


def _event(t: int, door: str, credential: str, direction: str, granted: bool = True) -> Event:
    return (t, DOOR_INDEX[door], credential, granted, "unknown" if door in NO_DIRECTION else direction)


def _allocate(total: int, weights: Sequence[float], caps: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, none above its cap (water-filling), summing exactly."""
    if total < 0:
        raise ValueError("more vendor and escort events than events asked for: ask for more events")
    if total > sum(c for c, w in zip(caps, weights, strict=True) if w > 0):
        raise ValueError(f"{total:,} events do not fit in the people's schedules: ask for fewer events")
    out = [0.0] * len(weights)
    open_ = [i for i, w in enumerate(weights) if w > 0]
    left = float(total)
    while left > 1e-9 and open_:
        share = left / sum(weights[i] for i in open_)
        capped = [i for i in open_ if out[i] + weights[i] * share >= caps[i]]
        if not capped:
            for i in open_:
                out[i] += weights[i] * share
            left = 0.0
            break
        for i in capped:
            left -= caps[i] - out[i]
            out[i] = float(caps[i])
        open_ = [i for i in open_ if i not in set(capped)]
    ints = [math.floor(x) for x in out]
    rest = total - sum(ints)
    order = sorted(range(len(out)), key=lambda i: ints[i] - out[i])  # largest fraction first
    for i in order:
        if rest == 0:
            break
        if ints[i] < caps[i] and weights[i] > 0:
            ints[i] += 1
            rest -= 1
    return ints


def generate(folder: Path, spec: Spec) -> Dataset:
    """Write holders.csv, grants.csv and badges.csv of `spec` into `folder`; what they hold."""
    gen = _Gen(spec)
    gen.make_people()
    gen.make_grants()
    gen.plant_grant_defects()
    events = gen.make_events()
    return gen.write(folder, events)
