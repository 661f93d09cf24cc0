"""Pure lifecycle decisions: what to store and whom to notify, given the stored alerts, the engine's new
events, the silences in force and the notification policy. No I/O; `now` is injected.

The rules (docs in the report of each test in tests/test_alerts_lifecycle.py):

* **One row per dedup key.** A firing event opens an episode (a re-fire after resolving reuses the row:
  acknowledgement and escalation start over); a firing event for an alert already firing, or a resolved
  event for one already resolved, is a replay: nothing is notified again.
* **Grouping** (Alertmanager's group_by rule/site/room with group_wait): a new episode's firing notice
  waits `group_wait_s`; when the oldest waiting alert of a group is due, every waiting alert of the
  group goes out together: one `firing` notification, or one `summary` listing them.
* **Silences and maintenance windows** (every matcher matches a label, or `rule` the rule id) and
  **inhibition** (a firing alert whose rule lists the target's rule in `inhibits`, with equal
  `inhibit_equal` labels: engine.inhibits) keep an alert stored and visible but unnotified: no firing
  notice, no reminders. When the suppression ends while it still fires and was never notified, it is.
* **Flap damping**: at most `flap_max_notifications` firing notices per alert in any `flap_window_s`;
  an alert that fires again within the window after resolving waits (suppressed "flapping") until the
  window has room, and is then notified if it still fires.
* **Routes**: a notice goes to every route that takes its severity and room; a route with `on_call`
  also to the channels of the shifts on duty when the notice is planned (alerts.oncall, in the site's
  time zone). A resolution goes to those on duty at the episode's last notice and now.
* **Resolved** notifies once, and only when the episode's firing was notified (to the channels that
  were told: the routes, and the escalation list if it was reached).
* **Escalation**: while a notified alert fires unacknowledged and unsuppressed, every
  `renotify_every_s` a reminder goes to the same routes (levels 1..max_renotify); the step after that
  goes to `escalation_channels` (level max_renotify+1), and then nothing more. Acknowledging stops it;
  an alert acknowledged before its firing notice went out is not notified at all.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from alerts.engine import AlertEvent, inhibits
from alerts.oncall import SITE_TZ, Shift, on_call_channels
from devices.reading import Value
from siteconfig.alert_rules import AnyRule, RuleSet, Severity

if TYPE_CHECKING:
    from siteconfig.alerts_config import AlertsConfig

AlertState = Literal["firing", "resolved"]
PlanKind = Literal["firing", "resolved", "escalation", "summary"]
SilenceKind = Literal["silence", "maintenance"]
HistoryWhat = Literal[
    "fired",
    "resolved",
    "acked",
    "silenced",
    "inhibited",
    "flapping",
    "escalated",
    "notified",
    "delivery_failed",
    "summarised",
]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as stored (the current or last episode of one dedup key)."""

    key: str
    rule_id: str
    severity: Severity
    state: AlertState
    labels: Mapping[str, str]
    value: Value
    limit: float | None
    started_at: datetime
    resolved_at: datetime | None
    last_event_at: datetime
    texts: Mapping[str, Any]  # message / resolved / forecast / margin: language → text
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    notified_at: datetime | None = None  # last notice of this episode (firing or reminder)
    escalation_level: int = 0
    notify_count: int = 0  # notices ever planned for this key
    notify_after: datetime | None = None  # a firing notice waits for this time (group wait)
    suppressed: str | None = None  # silence:<id>, maintenance:<id>, inhibited:<key>, flapping
    fire_notices: tuple[datetime, ...] = ()  # firing notices within the last flap window
    id: int | None = None  # the row id, when stored

    @property
    def acked(self) -> bool:
        """True when this episode was acknowledged."""
        return self.acked_at is not None


@dataclass(frozen=True, slots=True)
class SilenceView:
    """A silence or maintenance window: alerts matching every matcher between starts and ends."""

    id: int
    kind: SilenceKind
    matchers: Mapping[str, str | Sequence[str]]
    starts_at: datetime
    ends_at: datetime
    removed_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """In force at `now` (not removed, starts_at <= now < ends_at)?"""
        return self.removed_at is None and self.starts_at <= now < self.ends_at

    def matches(self, rule_id: str, labels: Mapping[str, str]) -> bool:
        """Every matcher matches: `rule` the rule id, any other name the label; a value may be a glob,
        a list means any of them."""
        return all(
            matcher_matches(want, rule_id if name == "rule" else labels.get(name))
            for name, want in self.matchers.items()
        )


def matcher_matches(want: str | Sequence[str], have: str | None) -> bool:
    """One matcher: a value (glob allowed) or a list of them; a missing label never matches."""
    if have is None:
        return False
    wants = [want] if isinstance(want, str) else list(want)
    return any(fnmatch.fnmatchcase(have, w) for w in wants)


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts of these severities (and rooms; empty: every room) go to these channels, and with `on_call`
    also to the channels of whoever is on call when the notification is planned."""

    channels: tuple[str, ...]
    severities: frozenset[str] = frozenset(SEVERITIES)
    rooms: frozenset[str] = frozenset()
    on_call: bool = False

    def takes(self, severity: str, room: str | None) -> bool:
        """Does this route take an alert of `severity` in `room`?"""
        return severity in self.severities and (not self.rooms or room in self.rooms)


@dataclass(frozen=True, slots=True)
class Policy:
    """Notification policy (the site file's alerts: section, `from_config`)."""

    routes: tuple[Route, ...] = ()
    escalation_channels: tuple[str, ...] = ()
    group_wait_s: float = 10.0
    renotify_every_s: float = 900.0  # 0: no reminders
    max_renotify: int = 3
    flap_window_s: float = 600.0
    flap_max_notifications: int = 2
    on_call: tuple[Shift, ...] = ()  # the shifts, for routes with on_call
    tz: tzinfo = SITE_TZ  # the site's time zone, in which the shifts are given

    @classmethod
    def from_config(cls, cfg: AlertsConfig, tz: tzinfo | str = SITE_TZ) -> Policy:
        """From a siteconfig.alerts_config.AlertsConfig and the site's time zone (SiteConfig.site.timezone,
        an IANA name or a tzinfo; the site file's default when not given)."""
        return cls(
            routes=tuple(
                Route(tuple(r.channels), frozenset(r.severities), frozenset(r.rooms), r.on_call)
                for r in cfg.routes
            ),
            escalation_channels=tuple(cfg.escalation.then_channels),
            group_wait_s=float(cfg.group_wait_s),
            renotify_every_s=float(cfg.escalation.renotify_every_s),
            max_renotify=int(cfg.escalation.max_renotify),
            flap_window_s=float(cfg.flap_window_s),
            flap_max_notifications=int(cfg.flap_max_notifications),
            on_call=tuple(Shift.of(s) for s in cfg.on_call),
            tz=ZoneInfo(tz) if isinstance(tz, str) else tz,
        )

    @property
    def top_level(self) -> int:
        """The last escalation level (the escalation list if there is one, else the last reminder)."""
        if self.renotify_every_s <= 0:
            return 0
        return self.max_renotify + (1 if self.escalation_channels else 0)

    def channels(
        self, severity: str, room: str | None, level: int, now: datetime | None = None
    ) -> tuple[str, ...]:
        """Where a notice of `level` planned at `now` goes: the matching routes (a route with on_call also
        to the channels of the shifts on duty at `now`), or beyond max_renotify the escalation list."""
        if level > self.max_renotify:
            return self.escalation_channels
        return self._routed(severity, room, () if now is None else (now,))

    def resolved_channels(
        self, severity: str, room: str | None, level: int, at: Sequence[datetime | None] = ()
    ) -> tuple[str, ...]:
        """Everyone told about the episode: the routes (with on_call: the shifts on duty at any of the
        times `at`: the last notice and now), plus the escalation list when it was reached."""
        out = list(self._routed(severity, room, tuple(t for t in at if t is not None)))
        if level > self.max_renotify:
            out += [c for c in self.escalation_channels if c not in out]
        return tuple(out)

    def _routed(self, severity: str, room: str | None, times: tuple[datetime, ...]) -> tuple[str, ...]:
        out: list[str] = []
        on_call = False
        for r in self.routes:
            if r.takes(severity, room):
                out += [c for c in r.channels if c not in out]
                on_call = on_call or r.on_call
        if on_call and self.on_call:
            for t in times:
                out += [c for c in on_call_channels(self.on_call, t, self.tz) if c not in out]
        return tuple(out)


@dataclass(frozen=True, slots=True)
class NotificationPlan:
    """A notification to create: about `keys` (one alert, or a summary of several), at route `level`."""

    kind: PlanKind
    key: str  # the notification's own key: the alert's dedup key, or the summary's group key
    keys: tuple[str, ...]
    level: int
    channels: tuple[str, ...]
    to_escalation_list: bool = False
    at: datetime | None = None  # when it was decided


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One lifecycle event of one alert."""

    key: str
    at: datetime
    what: HistoryWhat
    note: str | None = None
    who: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to store (new and changed alerts, history) and which notifications to create."""

    alerts: list[AlertView] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    notifications: list[NotificationPlan] = field(default_factory=list)


def rules_by_id(rules: RuleSet | Sequence[AnyRule] | Mapping[str, AnyRule]) -> dict[str, AnyRule]:
    """Rules keyed by id."""
    if isinstance(rules, Mapping):
        return dict(rules)
    rs = rules.rules if isinstance(rules, RuleSet) else rules
    return {r.id: r for r in rs}


def group_key(a: AlertView) -> tuple[str, str, str]:
    """Alerts of one rule in one room are grouped into one notification."""
    return (a.rule_id, a.labels.get("site", ""), a.labels.get("room", ""))


def texts_of(ev: AlertEvent) -> dict[str, Any]:
    """The stored texts of an event: message (language → text), forecast and margin when there are."""
    texts: dict[str, Any] = {"message": dict(ev.messages)}
    for part in ("forecast", "margin"):
        by_lang = {lang: t[part] for lang, t in ev.localized.items() if t.get(part)}
        if by_lang:
            texts[part] = by_lang
    return texts


def _as_event(a: AlertView) -> AlertEvent:
    # engine.inhibits judges AlertEvents: a stored firing alert seen as the event that fired it.
    return AlertEvent(
        "firing", a.rule_id, a.key, a.severity, a.labels, a.value, a.limit, a.started_at,
        a.last_event_at, {}, {}, {},
    )  # fmt: skip


def _inhibitor(a: AlertView, firing: Sequence[AlertView], rules: Mapping[str, AnyRule]) -> AlertView | None:
    target = _as_event(a)
    for src in firing:
        rule = rules.get(src.rule_id)
        if src.key != a.key and rule is not None and inhibits(rule, _as_event(src), target):
            return src
    return None


class _Work:
    def __init__(self, alerts: Iterable[AlertView], policy: Policy, now: datetime) -> None:
        self.cur: dict[str, AlertView] = {a.key: a for a in alerts}
        self.changed: dict[str, None] = {}  # insertion-ordered set
        self.history: list[HistoryEntry] = []
        self.plans: list[NotificationPlan] = []
        self.policy = policy
        self.now = now

    def put(self, a: AlertView) -> None:
        self.cur[a.key] = a
        self.changed[a.key] = None

    def log(self, key: str, what: HistoryWhat, note: str | None = None, at: datetime | None = None) -> None:
        self.history.append(HistoryEntry(key, at if at is not None else self.now, what, note))

    def recent(self, notices: tuple[datetime, ...]) -> tuple[datetime, ...]:
        horizon = self.now - timedelta(seconds=self.policy.flap_window_s)
        return tuple(t for t in notices if t > horizon)

    # -- events

    def fired(self, ev: AlertEvent) -> None:
        prev = self.cur.get(ev.dedup_key)
        if prev is not None and prev.state == "firing":
            if ev.at > prev.last_event_at:  # a replay or a repeat: newer value, nothing to tell
                self.put(replace(prev, value=ev.value, last_event_at=ev.at))
            return
        self.put(
            AlertView(
                key=ev.dedup_key,
                rule_id=ev.rule_id,
                severity=ev.severity,
                state="firing",
                labels=dict(ev.labels),
                value=ev.value,
                limit=ev.limit,
                started_at=ev.started_at,
                resolved_at=None,
                last_event_at=ev.at,
                texts=texts_of(ev),
                notify_count=prev.notify_count if prev is not None else 0,
                notify_after=self.now + timedelta(seconds=self.policy.group_wait_s),
                fire_notices=self.recent(prev.fire_notices) if prev is not None else (),
                id=prev.id if prev is not None else None,
            )
        )
        self.log(ev.dedup_key, "fired", ev.messages.get("en"), ev.at)

    def resolved(self, ev: AlertEvent) -> None:
        prev = self.cur.get(ev.dedup_key)
        if prev is not None and prev.state == "resolved":
            return  # a replay
        texts = dict(prev.texts) if prev is not None else texts_of(ev)
        texts["resolved"] = dict(ev.messages)
        if prev is None:  # the engine resolved an alert never stored: keep the record
            a = AlertView(
                ev.dedup_key, ev.rule_id, ev.severity, "resolved", dict(ev.labels), ev.value, ev.limit,
                ev.started_at, ev.at, ev.at, texts,
            )  # fmt: skip
            self.put(a)
            self.log(ev.dedup_key, "resolved", ev.messages.get("en"), ev.at)
            return
        notify = prev.notified_at is not None
        a = replace(
            prev,
            state="resolved",
            value=ev.value,
            resolved_at=ev.at,
            last_event_at=max(ev.at, prev.last_event_at),
            texts=texts,
            notify_after=None,
            suppressed=None,
            notify_count=prev.notify_count + (1 if notify else 0),
        )
        self.put(a)
        note = ev.messages.get("en")
        if not notify:
            note = f"{note} (never notified: {prev.suppressed or 'resolved within the group wait'})"
        self.log(ev.dedup_key, "resolved", note, ev.at)
        if notify:
            room = a.labels.get("room")
            self.plans.append(
                NotificationPlan(
                    "resolved",
                    a.key,
                    (a.key,),
                    a.escalation_level,
                    self.policy.resolved_channels(
                        a.severity, room, a.escalation_level, (prev.notified_at, self.now)
                    ),
                )
            )

    # -- suppression, grouping, escalation

    def suppress(self, silences: Sequence[SilenceView], rules: Mapping[str, AnyRule]) -> None:
        firing = [a for a in self.cur.values() if a.state == "firing"]
        active = [s for s in silences if s.active(self.now)]
        for a in firing:
            reason: str | None = None
            what: HistoryWhat = "silenced"
            note = ""
            sil = next((s for s in active if s.matches(a.rule_id, a.labels)), None)
            if sil is not None:
                reason, note = f"{sil.kind}:{sil.id}", f"{sil.kind} #{sil.id} until {sil.ends_at.isoformat()}"
            else:
                src = _inhibitor(a, firing, rules)
                if src is not None:
                    reason, what, note = f"inhibited:{src.key}", "inhibited", f"by {src.key}"
                elif a.notify_after is not None:
                    recent = self.recent(a.fire_notices)
                    if len(recent) >= self.policy.flap_max_notifications:
                        reason, what = "flapping", "flapping"
                        note = (
                            f"{len(recent)} firing notices within {self.policy.flap_window_s:g} s: held "
                            "back until the window has room"
                        )
            if reason != a.suppressed:
                self.put(replace(a, suppressed=reason))
                if reason is not None:
                    self.log(a.key, what, note)

    def flush(self) -> None:
        groups: dict[tuple[str, str, str], list[AlertView]] = {}
        for a in list(self.cur.values()):
            if a.state != "firing" or a.notify_after is None:
                continue
            if a.acked:  # somebody is on it already
                self.put(replace(a, notify_after=None))
            elif a.suppressed is None:
                groups.setdefault(group_key(a), []).append(a)
        for gkey, members in sorted(groups.items()):
            if min(m.notify_after or self.now for m in members) > self.now:
                continue
            members.sort(key=lambda m: (m.started_at, m.key))
            severity = max((m.severity for m in members), key=_RANK.__getitem__)
            channels = self.policy.channels(severity, gkey[2] or None, 0, self.now)
            if len(members) == 1:
                plan = NotificationPlan("firing", members[0].key, (members[0].key,), 0, channels)
            else:
                # summary:{site}:{room}:{unix time} as the rate-limit summaries (docs/mqtt.md), and the rule.
                skey = f"summary:{gkey[1] or '-'}:{gkey[2] or '-'}:{int(self.now.timestamp())}:{gkey[0]}"
                plan = NotificationPlan(
                    "summary", skey, tuple(m.key for m in members), 0, channels, at=self.now
                )
            self.plans.append(plan)
            for m in members:
                self.put(
                    replace(
                        m,
                        notify_after=None,
                        notified_at=self.now,
                        escalation_level=0,
                        notify_count=m.notify_count + 1,
                        fire_notices=(*self.recent(m.fire_notices), self.now),
                    )
                )

    def escalate(self) -> None:
        p = self.policy
        if p.renotify_every_s <= 0:
            return
        step = timedelta(seconds=p.renotify_every_s)
        for a in list(self.cur.values()):
            if (
                a.state != "firing"
                or a.notified_at is None
                or a.acked
                or a.suppressed is not None
                or a.escalation_level >= p.top_level
                or self.now - a.notified_at < step
            ):
                continue
            level = a.escalation_level + 1
            final = level > p.max_renotify
            self.plans.append(
                NotificationPlan(
                    "escalation",
                    a.key,
                    (a.key,),
                    level,
                    p.channels(a.severity, a.labels.get("room"), level, self.now),
                    to_escalation_list=final,
                )
            )
            self.put(
                replace(a, escalation_level=level, notified_at=self.now, notify_count=a.notify_count + 1)
            )
            note = "to the escalation list" if final else f"reminder {level} of {p.max_renotify}"
            self.log(a.key, "escalated", f"unacknowledged: {note}")


def decide(
    alerts: Iterable[AlertView],
    events: Sequence[AlertEvent],
    silences: Sequence[SilenceView],
    rules: Mapping[str, AnyRule],
    policy: Policy,
    now: datetime,
) -> Decision:
    """Apply the engine's `events` (in order) to the stored `alerts` (every firing one, and any other the
    events name) under `silences` and `policy` at `now`; pure."""
    work = _Work(alerts, policy, now)
    for ev in events:
        if ev.kind == "firing":
            work.fired(ev)
        else:
            work.resolved(ev)
    work.suppress(silences, rules)
    work.flush()
    work.escalate()
    return Decision([work.cur[k] for k in work.changed], work.history, work.plans)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delivery retries: exponential backoff from `first_s`, doubling, capped at `cap_s`; after
    `max_attempts` failed tries a delivery is failed for good."""

    first_s: float = 10.0
    factor: float = 2.0
    cap_s: float = 900.0
    max_attempts: int = 12

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones (1, 2, ...)."""
        return float(min(self.cap_s, self.first_s * self.factor ** max(0, attempts - 1)))
