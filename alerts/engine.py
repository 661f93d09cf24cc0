# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The pure rule engine: evaluate(rules, state, inputs, now) -> (state, events), with an injected clock.

Per (rule, series) a tracker goes ok → pending (condition true, hold_for not yet elapsed) → firing →
resolved (back to ok). Only pending and firing trackers are stored, so the state stays as small as the
number of open alerts plus one record per series. Inputs older than or equal to the last one seen for
their series are ignored (an outbox replay never flaps an alert); a reading whose quality is not good is
no-data: it neither fires nor clears, it only feeds staleness. `now` drives hold-for, staleness, event
expiry and group-member freshness, so a call without inputs still advances time.

Speed: rules are compiled once into a `RuleIndex` (by metric name, scopes as frozensets); a good sample
costs one dict lookup for its series, one for its metric's rules and a few comparisons per rule.
Forecasts, power-chain margins and messages are built only when an alert fires.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, cast

from alerts.dewpoint import dew_point_c
from alerts.forecast import (
    LANGS,
    GensetView,
    fmt_num,
    forecast_text,
    power_chain_margin,
    theil_sen,
    unit_of,
)
from alerts.inputs import DeviceKey, EventInput, Input, Labels, Sample, SeriesKey, StatusInput
from devices.reading import DeviceClass, Quality, Value
from siteconfig.alert_rules import (
    AnyRule,
    DewpointRule,
    EventRule,
    GroupRule,
    MatchRule,
    Messages,
    OfflineRule,
    RateRule,
    RuleSet,
    ScopeMatcher,
    Severity,
    StaleRule,
    ThresholdRule,
    is_glob,
)

STATE_VERSION = 1
# Points kept per series for trends and rate rules. Older points are thinned to window/MAX apart (the
# newest is always kept), so a 5 s poll over a 900 s window costs 32 points, not 180.
MAX_WINDOW_POINTS = 32

Phase = Literal["pending", "firing"]
AlertKind = Literal["firing", "resolved"]
# (rule id, *subject): subject is (site, room, device, metric) for series rules, (site, room, device) for
# device rules (device stale, offline, event) and the group_by values for group rules.
TrackerKey = tuple[str, ...]
WindowKey = tuple[str, ...]  # a SeriesKey, or (site, room, device, derived metric, "derived")


# ------------------------------------------------------------------------------------------- state


class SeriesState(NamedTuple):
    """What the engine remembers of one series: times seen and the latest good value.

    A NamedTuple, not a frozen dataclass: one is built per reading, and a tuple builds several times
    faster while being just as immutable."""

    first_t: float  # first reading of any quality (staleness counts from here until a good one)
    last_t: float  # newest reading of any quality: anything at or before it is a replay
    good_t: float | None  # newest good reading
    value: Value  # its value (None before the first good one)


@dataclass(frozen=True, slots=True)
class OnlineState:
    """The newest status report of a device or collector."""

    t: float
    online: bool
    reason: str | None
    target: str


class Tracker(NamedTuple):
    """An open alert of one rule on one subject: pending (waiting out hold_for) or firing."""

    phase: Phase
    since: float  # when the condition became true: the alert's started_at
    last_t: float  # newest observation folded in (event rules: newest matching event)
    value: Value  # newest value (rate: the change; group: healthy count; event: the event name)


@dataclass(frozen=True, slots=True)
class EngineState:
    """Everything evaluate carries from one call to the next; treat it as immutable.

    Each call copies the top-level dicts and replaces only what changed, so an old state stays valid
    (the caller may keep it, compare it or persist it). `to_json`/`from_json` round-trip it exactly,
    so a restart neither fires an open alert again nor forgets it.
    """

    labels: Mapping[DeviceKey, Labels] = field(default_factory=dict)
    series: Mapping[SeriesKey, SeriesState] = field(default_factory=dict)
    windows: Mapping[WindowKey, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    status: Mapping[DeviceKey, OnlineState] = field(default_factory=dict)
    events_seen: Mapping[tuple[str, str, str, str, str], float] = field(default_factory=dict)
    trackers: Mapping[TrackerKey, Tracker] = field(default_factory=dict)

    def open_alerts(self) -> list[tuple[str, Phase, datetime]]:
        """(dedup key, phase, started_at) of every pending or firing alert, sorted by key."""
        return sorted((dedup_key(k), tr.phase, _dt(tr.since)) for k, tr in self.trackers.items())

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (floats, strings, lists) that `from_json` turns back into this state."""
        return {
            "version": STATE_VERSION,
            "labels": [_labels_json(lb) for lb in self.labels.values()],
            "series": [[*k, s.first_t, s.last_t, s.good_t, s.value] for k, s in self.series.items()],
            "windows": [[list(k), [x for p in pts for x in p]] for k, pts in self.windows.items()],
            "status": [[*k, s.t, s.online, s.reason, s.target] for k, s in self.status.items()],
            "events_seen": [[*k, t] for k, t in self.events_seen.items()],
            "trackers": [
                [list(k), tr.phase, tr.since, tr.last_t, tr.value] for k, tr in self.trackers.items()
            ],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EngineState:
        """The state `to_json` produced; ValueError for another version or a malformed document."""
        if obj.get("version") != STATE_VERSION:
            raise ValueError(f"alert engine state version {obj.get('version')!r}; supported: {STATE_VERSION}")
        try:
            labels = {lb.key: lb for lb in (_labels_from_json(d) for d in obj["labels"])}
            series = {
                (s, r, d, m): SeriesState(float(f), float(lt), None if g is None else float(g), v)
                for s, r, d, m, f, lt, g, v in obj["series"]
            }
            windows = {
                tuple(k): tuple((float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2))
                for k, flat in obj["windows"]
            }
            status = {
                (s, r, d): OnlineState(float(t), bool(on), why, tg)
                for s, r, d, t, on, why, tg in obj["status"]
            }
            seen = {(s, r, d, k, n): float(t) for s, r, d, k, n, t in obj["events_seen"]}
            trackers = {
                tuple(k): Tracker(phase, float(since), float(last), value)
                for k, phase, since, last, value in obj["trackers"]
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed alert engine state: {exc!r}") from exc
        return cls(labels, series, windows, status, seen, trackers)


def _labels_json(lb: Labels) -> dict[str, Any]:
    return {
        "site": lb.site,
        "room": lb.room,
        "device": lb.device,
        "class": lb.device_class.value if lb.device_class is not None else None,
        "zone": lb.zone,
        "rack": lb.rack,
        "tags": [list(t) for t in lb.tags],
    }


def _labels_from_json(d: Mapping[str, Any]) -> Labels:
    cls = d["class"]
    return Labels(
        d["site"],
        d["room"],
        d["device"],
        DeviceClass(cls) if cls is not None else None,
        d["zone"],
        d["rack"],
        tuple((k, v) for k, v in d["tags"]),
    )


def dedup_key(key: TrackerKey) -> str:
    """The alert's stable id: rule id and subject joined by ':' (ids are slugs, so no '/', '+' or '#')."""
    return ":".join(key)


# ------------------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert changed: it started firing, or it resolved."""

    kind: AlertKind
    rule_id: str
    dedup_key: str
    severity: Severity
    labels: Mapping[str, str]  # site, room, device, metric, class, zone, rack (those known), tags
    value: Value
    limit: float | None
    started_at: datetime
    at: datetime
    params: Mapping[str, str]  # every template placeholder, language-neutral (forecast/margin excepted)
    localized: Mapping[str, Mapping[str, str]]  # language → {"forecast": …, "margin": …}
    messages: Mapping[str, str]  # language → rendered message


def inhibits(source_rule: AnyRule, source: AlertEvent, target: AlertEvent) -> bool:
    """Does the firing `source` alert suppress `target`? (Its rule lists the target's rule and the
    `inhibit_equal` labels agree.) The lifecycle layer applies it; the engine never drops events."""
    if target.rule_id not in source_rule.inhibits:
        return False
    return all(source.labels.get(name) == target.labels.get(name) for name in source_rule.inhibit_equal)


# ------------------------------------------------------------------------------------------- index


Handler = Any  # Callable[[_Work, rule, Labels, SeriesKey, float, Value], None]
_Entry = tuple[Handler, AnyRule, ScopeMatcher | None]  # scope None: the rule watches every device


class RuleIndex:
    """Rules compiled for the hot path: by metric name, scopes compiled, patterns memoised."""

    def __init__(self, rules: Sequence[AnyRule] | RuleSet) -> None:
        rs: Sequence[AnyRule] = rules.rules if isinstance(rules, RuleSet) else rules
        self.rules: tuple[AnyRule, ...] = tuple(rs)
        self.by_id: dict[str, AnyRule] = {r.id: r for r in self.rules}
        self.scopes: dict[str, ScopeMatcher] = {r.id: r.scope.compile() for r in self.rules}
        self._by_metric: dict[str, list[_Entry]] = {}
        self._patterns: list[tuple[re.Pattern[str], Handler, AnyRule, ScopeMatcher | None]] = []
        self._memo: dict[str, tuple[_Entry, ...]] = {}
        self._scoped: dict[
            str, tuple[tuple[ScopeMatcher | None, tuple[tuple[Handler, AnyRule], ...]], ...]
        ] = {}
        self.window_s: dict[str, float] = {}  # metric (or derived metric) → longest window wanted
        self.stale_by_metric: dict[str, list[StaleRule]] = {}
        self.device_stale: list[StaleRule] = []
        self.groups: list[GroupRule] = []
        self.events: list[EventRule] = []
        self.offline: list[OfflineRule] = []
        for r in self.rules:
            self._add(r)

    def _scope(self, rule: AnyRule) -> ScopeMatcher | None:
        # None for a scope that selects nothing, so the hot path skips the call entirely.
        scope = self.scopes[rule.id]
        return None if scope.universal else scope

    def _on(self, metric: str, handler: Handler, rule: AnyRule) -> None:
        self._by_metric.setdefault(metric, []).append((handler, rule, self._scope(rule)))

    def _want_window(self, metric: str, seconds: float) -> None:
        self.window_s[metric] = max(self.window_s.get(metric, 0.0), seconds)

    def _add(self, r: AnyRule) -> None:
        if isinstance(r, ThresholdRule):
            self._on(r.metric, _Work.threshold, r)
            self._want_window(r.metric, r.forecast_window_s)
        elif isinstance(r, RateRule):
            self._on(r.metric, _Work.rate, r)
            self._want_window(r.metric, r.window_s)
        elif isinstance(r, MatchRule):
            if is_glob(r.metric):
                rx = re.compile(fnmatch.translate(r.metric))
                self._patterns.append((rx, _Work.match, r, self._scope(r)))
            else:
                self._on(r.metric, _Work.match, r)
        elif isinstance(r, DewpointRule):
            self._on(r.temp_metric, _Work.dewpoint, r)
            self._on(r.rh_metric, _Work.dewpoint, r)
            self._want_window(r.derived_metric + "@derived", r.forecast_window_s)
        elif isinstance(r, StaleRule):
            if r.metric is None:
                self.device_stale.append(r)
            else:
                self.stale_by_metric.setdefault(r.metric, []).append(r)
                self._on(r.metric, _Work.unstale, r)
        elif isinstance(r, GroupRule):
            self.groups.append(r)
        elif isinstance(r, EventRule):
            self.events.append(r)
        else:
            self.offline.append(r)

    def scoped(
        self, metric: str
    ) -> tuple[tuple[ScopeMatcher | None, tuple[tuple[Handler, AnyRule], ...]], ...]:
        """The handlers of `metric` grouped by equal scope, in rule order within a group (memoised): a
        pack scopes most rules to one device class, so a sample checks that scope once, not per rule."""
        hit = self._scoped.get(metric)
        if hit is None:
            groups: dict[ScopeMatcher | None, list[tuple[Handler, AnyRule]]] = {}
            for handler, rule, scope in self.for_metric(metric):
                groups.setdefault(scope, []).append((handler, rule))
            hit = self._scoped[metric] = tuple((scope, tuple(entries)) for scope, entries in groups.items())
        return hit

    def for_metric(self, metric: str) -> tuple[_Entry, ...]:
        """Handlers for a metric name: exact rules, then glob rules (memoised per name)."""
        hit = self._memo.get(metric)
        if hit is None:
            exact = self._by_metric.get(metric, [])
            globbed = [(h, r, s) for rx, h, r, s in self._patterns if rx.fullmatch(metric)]
            hit = self._memo[metric] = (*exact, *globbed)
        return hit


# ------------------------------------------------------------------------------------------ helpers


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _number(v: Value) -> float | None:
    # Exact type checks: fast, and bool (an int subclass) is not a number here ("true" is not 1 °C).
    t = type(v)
    if t is float:
        return v  # type: ignore[return-value]
    if t is int:
        return float(v)  # type: ignore[arg-type]
    return None


def _text(v: Value) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return fmt_num(float(v))
    return v


def _push(
    points: tuple[tuple[float, float], ...], t: float, v: float, horizon: float
) -> tuple[tuple[float, float], ...]:
    cutoff = t - horizon
    start = 0
    while start < len(points) and points[start][0] < cutoff:
        start += 1
    kept = points[start:]
    # Thin: the newest point is always kept, but it replaces its predecessor while that one is closer
    # than window/MAX to the point before, so the count stays bounded at any poll rate.
    if len(kept) >= 2 and t - kept[-2][0] < horizon / MAX_WINDOW_POINTS:
        kept = kept[:-1]
    return (*kept, (t, v))


class _Params(dict[str, str]):
    # A placeholder a kind does not fill renders empty instead of raising in the middle of an alert.
    def __missing__(self, key: str) -> str:
        return ""


# ---------------------------------------------------------------------------------------- the work


_UNSET = object()


class _Work:
    """One evaluate call: private copies of the state's dicts, the events so far, the index."""

    def __init__(self, index: RuleIndex, state: EngineState, now: float) -> None:
        self.index = index
        self.now = now
        self.labels = dict(state.labels)
        self.series = dict(state.series)
        self.windows = dict(state.windows)
        self.status = dict(state.status)
        self.events_seen = dict(state.events_seen)
        # Trackers of rules no longer configured are dropped silently: the lifecycle layer, which owns the
        # open alerts, decides what a removed rule's alert becomes (closing it needs the old rule's data).
        self.trackers = {k: tr for k, tr in state.trackers.items() if k[0] in index.by_id}
        self.out: list[AlertEvent] = []
        self.dew_points: dict[tuple[SeriesKey, float], object] = {}

    def state(self) -> EngineState:
        return EngineState(
            self.labels, self.series, self.windows, self.status, self.events_seen, self.trackers
        )

    # -- generic state machine ---------------------------------------------------------------------

    def advance(
        self,
        rule: AnyRule,
        key: TrackerKey,
        t: float,
        bad: bool,
        cleared: bool,
        value: Value,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Fold one observation (at t) into the tracker `key`: `bad` = the trigger condition holds,
        `cleared` = the clear condition holds (for hysteresis both can be false)."""
        tr = self.trackers.get(key)
        if tr is None:
            if not bad:
                return
            tr = Tracker("pending", t, t, value)
            if rule.hold_s <= 0:
                self.fire(rule, key, tr, t, extra)
            else:
                self.trackers[key] = tr
        elif tr.phase == "pending":
            if not bad:
                del self.trackers[key]  # dropped back before hold_for elapsed: never fired, nothing to say
            elif t - tr.since >= rule.hold_s:
                self.fire(rule, key, Tracker("pending", tr.since, t, value), t, extra)
            else:
                self.trackers[key] = Tracker("pending", tr.since, t, value)
        elif cleared:
            del self.trackers[key]
            self.emit("resolved", rule, key, Tracker("firing", tr.since, t, value), t, extra)
        else:
            self.trackers[key] = Tracker("firing", tr.since, t, value)

    def fire(
        self, rule: AnyRule, key: TrackerKey, tr: Tracker, at: float, extra: Mapping[str, str] | None
    ) -> None:
        firing = Tracker("firing", tr.since, tr.last_t, tr.value)
        self.trackers[key] = firing
        self.emit("firing", rule, key, firing, at, extra)

    # -- inputs ------------------------------------------------------------------------------------

    def sample(self, s: Sample) -> None:
        lb = s.labels
        metric = s.metric
        key = (lb.site, lb.room, lb.device, metric)
        t = s.t
        series = self.series
        prev = series.get(key)
        if prev is not None and t <= prev.last_t:
            return  # a replay or duplicate: never re-judged, so it cannot flap an alert
        dkey = (lb.site, lb.room, lb.device)
        cur = self.labels.get(dkey)
        if cur is not lb and cur != lb:
            self.labels[dkey] = lb
        v = s.value
        if s.quality is not Quality.GOOD or v is None or (type(v) is float and v != v):
            # No-data (bad quality, missing, NaN): the series spoke (replays stay ordered), the last
            # good value stays.
            if prev is None:
                series[key] = SeriesState(t, t, None, None)
            else:
                series[key] = SeriesState(prev.first_t, t, prev.good_t, prev.value)
            return
        series[key] = SeriesState(t if prev is None else prev.first_t, t, t, v)
        horizon = self.index.window_s.get(metric)
        if horizon is not None:
            x = _number(v)
            if x is not None:
                self.windows[key] = _push(self.windows.get(key, ()), t, x, horizon)
        for dev_rule in self.index.device_stale:
            tkey = (dev_rule.id, *dkey)
            if tkey in self.trackers:
                self.unstale(dev_rule, lb, key, t, v, tkey)
        for scope, entries in self.index.scoped(metric):
            if scope is None or scope.matches(lb):
                for handler, rule in entries:
                    handler(self, rule, lb, key, t, v)

    def status_input(self, st: StatusInput) -> None:
        lb = st.labels
        dkey = lb.key
        prev = self.status.get(dkey)
        if prev is not None and st.t <= prev.t:
            return
        online = st.state == "online"
        self.status[dkey] = OnlineState(st.t, online, st.reason, st.target)
        self.labels.setdefault(dkey, lb)
        extra = {"reason": st.reason or "", "target": st.target}
        for rule in self.index.offline:
            if rule.target == st.target and self.index.scopes[rule.id].matches(lb):
                self.advance(rule, (rule.id, *dkey), st.t, not online, online, st.state, extra)

    def event(self, ev: EventInput) -> None:
        lb = ev.labels
        seen_key = (lb.site, lb.room, lb.device, ev.kind, ev.name)
        last = self.events_seen.get(seen_key)
        if last is not None and ev.t <= last:
            return
        self.events_seen[seen_key] = ev.t
        self.labels.setdefault(lb.key, lb)
        extra = {"event": ev.name, "source": ev.source or ""}
        for rule in self.index.events:
            if rule.event is not None and rule.event != ev.kind:
                continue
            if not self.index.scopes[rule.id].matches(lb):
                continue
            key = (rule.id, *lb.key)
            tr = self.trackers.get(key)
            after = rule.resolve_after_s
            if tr is not None and after is not None and ev.t - tr.last_t >= after:
                self.expire(rule, key, tr, ev.t)
                tr = None
            if any(fnmatch.fnmatchcase(ev.name, n) for n in rule.names):
                if tr is None:
                    self.fire(rule, key, Tracker("pending", ev.t, ev.t, ev.name), ev.t, extra)
                else:  # a repeat while firing extends the alert; it does not fire again
                    self.trackers[key] = Tracker("firing", tr.since, ev.t, ev.name)
            elif tr is not None and any(fnmatch.fnmatchcase(ev.name, n) for n in rule.resolve_names):
                del self.trackers[key]
                self.emit("resolved", rule, key, Tracker("firing", tr.since, ev.t, ev.name), ev.t, extra)

    def expire(self, rule: EventRule, key: TrackerKey, tr: Tracker, at: float) -> None:
        del self.trackers[key]
        self.emit("resolved", rule, key, tr, at, {"event": _text(tr.value)})

    # -- per-kind handlers (called with a good value) ------------------------------------------------

    def threshold(self, rule: ThresholdRule, lb: Labels, key: SeriesKey, t: float, v: Value) -> None:
        x = _number(v)
        if x is None:
            return
        tkey = (rule.id, *key)
        bad = rule.triggered(x)
        if not bad and tkey not in self.trackers:
            return  # the common case: fine before, fine now
        self.advance(rule, tkey, t, bad, rule.cleared(x), x)

    def dewpoint(self, rule: DewpointRule, lb: Labels, key: SeriesKey, t: float, v: Value) -> None:
        site, room, device, metric = key
        other = rule.rh_metric if metric == rule.temp_metric else rule.temp_metric
        o = self.series.get((site, room, device, other))
        # Pair only readings of one poll (same time); the second of the two computes the dew point.
        if o is None or o.good_t != t:
            return
        temp, rh = (
            (_number(v), _number(o.value)) if metric == rule.temp_metric else (_number(o.value), _number(v))
        )
        if temp is None or rh is None:
            return
        derived = rule.derived_metric
        wkey = (site, room, device, derived + "@derived")
        # The pack has four dew point rules on one pair: compute it and push its window point once.
        cached = self.dew_points.get((wkey, t), _UNSET)
        if cached is _UNSET:
            dp = dew_point_c(temp, rh)
            self.dew_points[(wkey, t)] = dp
            if dp is not None:
                self.windows[wkey] = _push(self.windows.get(wkey, ()), t, dp, self.index.window_s[wkey[3]])
        else:
            dp = cast(float | None, cached)
        if dp is None:
            return
        tkey = (rule.id, site, room, device, derived)
        bad = rule.triggered(dp)
        if not bad and tkey not in self.trackers:
            return  # the common case: fine before, fine now
        self.advance(rule, tkey, t, bad, rule.cleared(dp), dp)

    def rate(self, rule: RateRule, lb: Labels, key: SeriesKey, t: float, v: Value) -> None:
        x = _number(v)
        if x is None:
            return
        since = t - rule.window_s
        vals = [pv for pt, pv in self.windows.get(key, ()) if pt >= since]
        if not vals:
            return
        rise, fall = x - min(vals), max(vals) - x
        change = rise if rule.op == "rise" else fall if rule.op == "fall" else max(rise, fall)
        delta = rise if rule.op == "rise" or (rule.op == "any" and rise >= fall) else -fall
        tkey = (rule.id, *key)
        bad = change >= rule.change
        if not bad and tkey not in self.trackers:
            return
        self.advance(rule, tkey, t, bad, change < rule.clear_level, round(delta, 6))

    def match(self, rule: MatchRule, lb: Labels, key: SeriesKey, t: float, v: Value) -> None:
        bad = rule.holds(v)
        self.advance(rule, (rule.id, *key), t, bad, not bad, v)

    def unstale(
        self, rule: StaleRule, lb: Labels, key: SeriesKey, t: float, v: Value, tkey: TrackerKey | None = None
    ) -> None:
        tkey = tkey if tkey is not None else (rule.id, *key)
        tr = self.trackers.pop(tkey, None)
        if tr is not None:
            self.emit("resolved", rule, tkey, Tracker("firing", tr.since, t, v), t, None)

    # -- the clock ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """Everything `now` decides: hold_for elapsed, events expired, series stale, groups short."""
        now = self.now
        by_id = self.index.by_id
        for key, tr in list(self.trackers.items()):
            rule = by_id[key[0]]
            if isinstance(rule, GroupRule):
                continue  # judged with fresh member counts by _scan below
            if tr.phase == "pending" and now - tr.since >= rule.hold_s:
                self.fire(rule, key, tr, now, self._extra_for(rule, key))
            elif (
                isinstance(rule, EventRule)
                and rule.resolve_after_s is not None
                and now - tr.last_t >= rule.resolve_after_s
            ):
                self.expire(rule, key, tr, now)
        if self.index.stale_by_metric or self.index.device_stale or self.index.groups:
            self._scan()

    def _extra_for(self, rule: AnyRule, key: TrackerKey) -> dict[str, str] | None:
        if isinstance(rule, OfflineRule):
            st = self.status.get((key[1], key[2], key[3]))
            return {"reason": (st.reason if st is not None else None) or "", "target": rule.target}
        return None

    def _scan(self) -> None:
        # One pass over every series serves every stale and group rule: O(series) per call, not per rule.
        idx = self.index
        device_ref: dict[DeviceKey, tuple[float, Value]] = {}
        group_metrics = {g.healthy_when.metric for g in idx.groups}
        members: dict[str, list[tuple[SeriesKey, SeriesState]]] = {m: [] for m in group_metrics}
        for key, ss in self.series.items():
            metric = key[3]
            ref = ss.good_t if ss.good_t is not None else ss.first_t
            for rule in idx.stale_by_metric.get(metric, ()):
                self._stale(rule, key, ref, ss.value, key)
            if idx.device_stale:
                dkey = key[:3]
                best = device_ref.get(dkey)
                if best is None or ref > best[0]:
                    device_ref[dkey] = (ref, ss.value)
            if metric in members:
                members[metric].append((key, ss))
        for rule in idx.device_stale:
            for dkey, (ref, _v) in device_ref.items():
                self._stale(rule, dkey, ref, None, dkey)
        for group in idx.groups:
            self._group(group, members[group.healthy_when.metric])

    def _stale(
        self, rule: StaleRule, subject: tuple[str, ...], ref: float, value: Value, dkey: tuple[str, ...]
    ) -> None:
        lb = self.labels.get((dkey[0], dkey[1], dkey[2]))
        if lb is None or not self.index.scopes[rule.id].matches(lb):
            return
        key = (rule.id, *subject)
        if self.now - ref > rule.after_s and key not in self.trackers:
            self.fire(rule, key, Tracker("pending", ref + rule.after_s, self.now, value), self.now, None)

    def _group(self, rule: GroupRule, candidates: list[tuple[SeriesKey, SeriesState]]) -> None:
        scope = self.index.scopes[rule.id]
        cond = rule.healthy_when
        groups: dict[tuple[str, ...], tuple[int, int, list[str]]] = {}
        for key, ss in candidates:
            lb = self.labels.get(key[:3])
            if lb is None or not scope.matches(lb):
                continue
            gkey = tuple(_group_value(lb, g) for g in rule.group_by)
            st = self.status.get(lb.key)
            healthy = (
                ss.good_t is not None
                and self.now - ss.good_t <= rule.member_stale_s
                and (st is None or st.online)
                and cond.holds(ss.value)
            )
            ok, total, sick = groups.get(gkey, (0, 0, []))
            if not healthy:
                sick = [*sick, lb.device]
            groups[gkey] = (ok + healthy, total + 1, sick)
        # A group whose members all vanished from the state still needs its open alert judged.
        for tk in self.trackers:
            if tk[0] == rule.id:
                groups.setdefault(tk[1:], (0, 0, []))
        for gkey, (ok, total, sick) in groups.items():
            extra = {
                "healthy": str(ok),
                "total": str(total),
                "min_healthy": str(rule.min_healthy),
                "unhealthy": ", ".join(sorted(sick)) or "-",
            }
            short = ok < rule.min_healthy
            self.advance(rule, (rule.id, *gkey), self.now, short, not short, ok, extra)

    # -- events out --------------------------------------------------------------------------------

    def emit(
        self,
        kind: AlertKind,
        rule: AnyRule,
        key: TrackerKey,
        tr: Tracker,
        at: float,
        extra: Mapping[str, str] | None,
    ) -> None:
        labels, params = self._labels_params(rule, key)
        params["since"] = _dt(tr.since).isoformat()
        params["value"] = _text(tr.value)
        limit = _limit(rule)
        if limit is not None:
            params["limit"] = fmt_num(limit)
        params.update(_rule_params(rule))
        if isinstance(rule, RateRule):
            params["delta"] = params["value"]
        elif isinstance(rule, DewpointRule):
            for name, metric in (("temp", rule.temp_metric), ("rh", rule.rh_metric)):
                ss = self.series.get((key[1], key[2], key[3], metric))
                params[name] = _text(ss.value) if ss is not None else "-"
        if extra:
            params.update(extra)
        localized: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
        if kind == "firing":
            self._forecast(rule, key, localized)
            self._margin(rule, key, at, localized)
        messages = _render(rule, params, localized)
        if kind == "resolved":
            messages = {lang: _RESOLVED[lang] + text for lang, text in messages.items()}
        self.out.append(
            AlertEvent(
                kind,
                rule.id,
                dedup_key(key),
                rule.severity,
                labels,
                tr.value,
                limit,
                _dt(tr.since),
                _dt(at),
                dict(params),
                localized,
                messages,
            )
        )

    def _labels_params(self, rule: AnyRule, key: TrackerKey) -> tuple[dict[str, str], _Params]:
        params = _Params(rule=rule.id, severity=rule.severity)
        if isinstance(rule, GroupRule):
            labels: dict[str, str] = {str(g): v for g, v in zip(rule.group_by, key[1:], strict=True)}
            labels["metric"] = rule.healthy_when.metric
            if len(rule.scope.classes) == 1:
                labels["class"] = rule.scope.classes[0].value
        else:
            lb = self.labels.get((key[1], key[2], key[3]))
            labels = lb.as_dict() if lb is not None else {"site": key[1], "room": key[2], "device": key[3]}
            if len(key) > 4:
                labels["metric"] = key[4]
                params["unit"] = unit_of(key[4])
        params.update(labels)
        return labels, params

    def _forecast(self, rule: AnyRule, key: TrackerKey, localized: dict[str, dict[str, str]]) -> None:
        if isinstance(rule, ThresholdRule):
            wkey: WindowKey = key[1:]
        elif isinstance(rule, DewpointRule):
            wkey = (*key[1:4], rule.derived_metric + "@derived")
        else:
            return
        pts = self.windows.get(wkey, ())
        if pts:
            since = pts[-1][0] - rule.forecast_window_s
            pts = tuple(p for p in pts if p[0] >= since)
        target = rule.forecast_to if rule.forecast_to is not None else rule.value
        texts = forecast_text(key[4], theil_sen(pts), target, rule.op)
        for lang in LANGS:
            localized[lang]["forecast"] = texts[lang]

    def _margin(
        self, rule: AnyRule, key: TrackerKey, at: float, localized: dict[str, dict[str, str]]
    ) -> None:
        pc = getattr(rule, "power_chain", None)
        if pc is None or isinstance(rule, GroupRule):
            return
        site, room, device = key[1], key[2], key[3]
        lb = self.labels.get((site, room, device))
        if lb is not None and lb.device_class not in (None, DeviceClass.UPS):
            return

        def fresh(dkey: DeviceKey, metric: str) -> Value:
            ss = self.series.get((*dkey, metric))
            if ss is None or ss.good_t is None or at - ss.good_t > pc.fresh_s:
                return None
            return ss.value

        runtime = _number(fresh((site, room, device), "runtime_s"))
        site_gensets = sorted(
            k
            for k, g in self.labels.items()
            if g.device_class == DeviceClass.GENSET
            and k[0] == site
            and (pc.genset is None or g.device == pc.genset)
        )
        # A generator usually stands in its own room: the UPS's room first, else every genset of the site.
        gensets = [k for k in site_gensets if k[1] == room] or site_gensets
        views = [
            GensetView(
                k[2],
                _str_or_none(fresh(k, "engine_state")),
                _str_or_none(fresh(k, "control_mode")),
                _number(fresh(k, "gen_power_w")),
                _number(fresh(k, "gen_load_pct")),
            )
            for k in gensets
        ]
        # Several gensets in a room: the one carrying the load, else the first one heard from at all.
        known = [g for g in views if g.engine_state is not None or g.control_mode is not None]
        view = next((g for g in known if g.carrying_load), known[0] if known else None)
        margin = power_chain_margin(runtime, pc.transfer_s, view)
        for lang in LANGS:
            localized[lang]["margin"] = margin.text[lang]


def _str_or_none(v: Value) -> str | None:
    return v if isinstance(v, str) else None


def _group_value(lb: Labels, name: str) -> str:
    if name == "site":
        return lb.site
    if name == "room":
        return lb.room
    return lb.zone or ""


def _limit(rule: AnyRule) -> float | None:
    if isinstance(rule, ThresholdRule | DewpointRule):
        return rule.value
    if isinstance(rule, RateRule):
        return rule.change
    if isinstance(rule, StaleRule):
        return rule.after_s
    if isinstance(rule, GroupRule):
        return float(rule.min_healthy)
    return None


def _rule_params(rule: AnyRule) -> dict[str, str]:
    if isinstance(rule, ThresholdRule | DewpointRule):
        return {"clear": fmt_num(rule.clear_level), "op": rule.op}
    if isinstance(rule, RateRule):
        return {
            "change": fmt_num(rule.change),
            "window_min": fmt_num(round(rule.window_s / 60, 1)),
            "op": rule.op,
        }
    if isinstance(rule, StaleRule):
        return {"after_min": fmt_num(round(rule.after_s / 60, 1))}
    if isinstance(rule, MatchRule):
        return {"expected": rule.expected_text()}
    if isinstance(rule, GroupRule):
        return {"class": ", ".join(c.value for c in rule.scope.classes)} if rule.scope.classes else {}
    return {}


_SPACES = re.compile(r"[ \t]{2,}")  # an empty {unit} leaves two spaces behind
# A resolved alert renders the same template (the values at resolution) behind this prefix.
_RESOLVED = {"zh_TW": "已恢復：", "en": "Resolved: "}
_TAIL_SEP = {"zh_TW": "；", "en": "; "}


def _render(rule: AnyRule, params: _Params, localized: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    templates: Messages = rule.messages or rule.default_messages()
    out: dict[str, str] = {}
    for lang in LANGS:
        p = _Params(params)
        p.update(localized[lang])
        text = templates.get(lang).format_map(p)
        if rule.messages is None:
            # Default templates name no forecast or margin: append whichever is there.
            tails = [localized[lang].get(k, "") for k in ("forecast", "margin")]
            text = _TAIL_SEP[lang].join([text, *(x for x in tails if x)])
        out[lang] = _SPACES.sub(" ", text).strip()
    return out


# ---------------------------------------------------------------------------------------- evaluate


def _input_t(i: Input) -> float:
    return i.t


def evaluate(
    rules: RuleIndex | RuleSet | Sequence[AnyRule],
    state: EngineState | None,
    inputs: Iterable[Input],
    now: datetime,
) -> tuple[EngineState, list[AlertEvent]]:
    """Fold `inputs` into `state` and let `now` decide what time alone decides; return the new state and
    the alerts that fired or resolved, in the order they did. Pure: `state` is not modified.

    Inputs are processed in time order (stable, so one poll's samples keep their order); anything not
    newer than what its series, device status or event stream has already seen is ignored. Pass a
    `RuleIndex` built once; rule lists are compiled on every call.
    """
    index = rules if isinstance(rules, RuleIndex) else RuleIndex(rules)
    work = _Work(index, state if state is not None else EngineState(), now.timestamp())
    for item in sorted(inputs, key=_input_t):
        if isinstance(item, Sample):
            work.sample(item)
        elif isinstance(item, StatusInput):
            work.status_input(item)
        else:
            work.event(item)
    work.tick()
    return work.state(), work.out
