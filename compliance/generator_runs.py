# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Generator runs from genset telemetry, and whether each counts as the monthly exercise (NFPA 110 §8.4.2).

Pure: samples and times come in, `GeneratorTest` records come out; the per-device progress is plain JSON
(`to_json`/`from_json`) so a restart mid-run loses nothing. Live (`RunDetector.feed`) and rebuilt from
history (`detect_runs`) share one code path, so the same samples always give the same records.

The rules, per device:

* A sample is *running* when engine_state is `running`, or, for a controller that reports no engine
  state (None, `not_available`), when gen_load_pct > 0. `cooling_down`, `stopped`, `post_run`,
  `pre_start` and `warming_up` are not running.
* A run opens at the first running sample (`started_at`). Its trigger is decided then and kept: control
  mode `test_on_load`/`test_off_load` → test_mode; else the mains failed since the set was last at rest
  (at this sample or during pre_start/warming_up) → mains_failure; else `manual` → manual; else unknown.
  The mains alarm clears while the set still runs after mains returns, so a later decision would be wrong.
* A run ends at the first sample that shows a stopping engine state; without an engine state, once
  gen_load_pct has read 0 (or nothing) for `idle_end_s` (a transfer break reads 0 % for a few seconds; a
  set that carries nothing for a minute is stopped or cooling down). `ended_at` is the last sample seen
  running, so the cool-down is never part of a run.
* Silence: a run whose device sent nothing for longer than `max_gap_s` ends at its last sample, whether
  `flush(now)` notices it or the next sample does (so live and rebuilt records agree). If the set is
  still running after the gap, a new run starts with the trigger of the interrupted one, and its
  continuous on-load span starts again: time not observed is not counted.
* On load: a sample at gen_load_pct ≥ min_load_pct while running (for a test_mode run, only while
  control_mode is `test_on_load`: for a second after a test ends the mode is already `auto` while the
  set still carries the load). `on_load_minutes` is the longest unbroken stretch of such samples, from
  its first to its last sample: only observed time counts (a 5 s poll loses at most 5 s). A run counts
  when that stretch lasts ≥ min_minutes (NFPA 110 §8.4.2: ≥ 30 % of nameplate for ≥ 30 min).
* Loads: each sample's value holds until the next one (time-weighted average); min/avg are over the
  longest stretch, or over the whole run when no sample was on load.
* A sample of a device not newer than its last one (a redelivery) is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from compliance.facts import Value
from compliance.kinds import GeneratorTest, TestTrigger, utc_key
from siteconfig.compliance_config import GeneratorTests

STATE_VERSION = 1
TEST_MODES = ("test_on_load", "test_off_load")
STARTING = ("pre_start", "warming_up")
NOT_RUNNING = ("cooling_down", "stopped", "post_run", *STARTING)
# Alarm values that mean "not present"; anything else (warning, shutdown, active_indication, ...) is active.
INACTIVE_ALARM: frozenset[Value] = frozenset(
    {"not_active", "inactive_indication", "disabled", "unimplemented", False, None}
)
# A mains failure by name: alarm_mains_failed, alarm_alternative_aux_mains_fail, ... but not the breaker
# alarms alarm_mains_failed_to_close / _to_open (the name must end with the failure).
_MAINS_ALARM = re.compile(r"^alarm_(?:[a-z0-9]+_)*(?:mains|utility)_(?:fail|failed|failure|loss|lost)$")
_US_PER_MILLIMINUTE = 60_000

Source = Literal["telemetry", "history"]


@dataclass(frozen=True, slots=True)
class GensetSample:
    """One genset reading as the detector needs it (None: not reported or bad quality)."""

    ts: datetime
    device: str
    control_mode: str | None
    engine_state: str | None
    load_pct: float | None
    mains_failed: bool | None


def alarm_active(value: Value) -> bool:
    """Whether a controller alarm value means the alarm is present."""
    return value not in INACTIVE_ALARM


def sample_from_metrics(ts: datetime, device: str, metrics: Mapping[str, Value]) -> GensetSample:
    """A GensetSample from a device's metric values (catalog names: control_mode, gen_load_pct, alarm_*)."""
    if "alarm_mains_failed" in metrics:
        mains: bool | None = alarm_active(metrics["alarm_mains_failed"])
    else:
        named = [v for k, v in metrics.items() if _MAINS_ALARM.match(k)]
        mains = any(alarm_active(v) for v in named) if named else None
    return GensetSample(
        ts=ts,
        device=device,
        control_mode=_text(metrics.get("control_mode")),
        engine_state=_text(metrics.get("engine_state")),
        load_pct=_number(metrics.get("gen_load_pct")),
        mains_failed=mains,
    )


def _text(v: Value) -> str | None:
    return v if isinstance(v, str) else None


def _number(v: Value) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _t(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass(slots=True)
class _Span:
    """An unbroken stretch of on-load samples."""

    start: datetime
    last: datetime
    last_load: float
    integral: float  # % · s, each sample's load held until the next
    min_load: float

    @property
    def seconds(self) -> float:
        return (self.last - self.start).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "last": _iso(self.last),
            "last_load": self.last_load,
            "integral": self.integral,
            "min_load": self.min_load,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> _Span | None:
        if d is None:
            return None
        return cls(
            datetime.fromisoformat(d["start"]),
            datetime.fromisoformat(d["last"]),
            d["last_load"],
            d["integral"],
            d["min_load"],
        )


@dataclass(slots=True)
class _Run:
    """An open run: its start, trigger, load statistics so far and its on-load stretches."""

    start: datetime
    trigger: TestTrigger
    last_running: datetime
    prev_ts: datetime | None = None
    prev_load: float | None = None
    integral: float = 0.0  # whole run, % · s
    seconds: float = 0.0  # whole run, seconds with a known load
    min_load: float | None = None
    max_load: float | None = None
    span: _Span | None = None
    best: _Span | None = None
    zero_since: datetime | None = None  # no engine state and nothing on load since (maybe stopped)
    pending: list[tuple[datetime, float | None]] = field(default_factory=list)  # samples since zero_since
    resumed_from: datetime | None = None  # start of the run a gap in the readings interrupted

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "trigger": self.trigger,
            "last_running": _iso(self.last_running),
            "prev_ts": _iso(self.prev_ts),
            "prev_load": self.prev_load,
            "integral": self.integral,
            "seconds": self.seconds,
            "min_load": self.min_load,
            "max_load": self.max_load,
            "span": self.span.to_json() if self.span else None,
            "best": self.best.to_json() if self.best else None,
            "zero_since": _iso(self.zero_since),
            "pending": [[_iso(t), load] for t, load in self.pending],
            "resumed_from": _iso(self.resumed_from),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Run:
        return cls(
            start=datetime.fromisoformat(d["start"]),
            trigger=d["trigger"],
            last_running=datetime.fromisoformat(d["last_running"]),
            prev_ts=_t(d["prev_ts"]),
            prev_load=d["prev_load"],
            integral=d["integral"],
            seconds=d["seconds"],
            min_load=d["min_load"],
            max_load=d["max_load"],
            span=_Span.from_json(d["span"]),
            best=_Span.from_json(d["best"]),
            zero_since=_t(d["zero_since"]),
            pending=[(datetime.fromisoformat(t), load) for t, load in d["pending"]],
            resumed_from=_t(d["resumed_from"]),
        )

    def absorb(self, ts: datetime, load: float | None, on_load: bool) -> None:
        """Add one sample of the run to the whole-run statistics and the on-load stretches."""
        if self.prev_ts is not None and self.prev_load is not None:
            dt = (ts - self.prev_ts).total_seconds()
            self.integral += self.prev_load * dt
            self.seconds += dt
        self.prev_ts, self.prev_load = ts, load
        if load is not None:
            self.min_load = load if self.min_load is None else min(self.min_load, load)
            self.max_load = load if self.max_load is None else max(self.max_load, load)
        if on_load and load is not None:
            if self.span is None:
                self.span = _Span(ts, ts, load, 0.0, load)
            else:
                s = self.span
                s.integral += s.last_load * (ts - s.last).total_seconds()
                s.last, s.last_load, s.min_load = ts, load, min(s.min_load, load)
        else:
            self.end_span()

    def end_span(self) -> None:
        """Close the current on-load stretch; keep it if it is the longest so far (the first on a tie)."""
        if self.span is not None and (self.best is None or self.span.seconds > self.best.seconds):
            self.best = self.span
        self.span = None


@dataclass(slots=True)
class _Device:
    """What the detector remembers about one genset."""

    last_ts: datetime | None = None
    mains_seen: bool = False  # the mains failed since the set was last at rest with mains present
    run: _Run | None = None
    resume: tuple[datetime, TestTrigger] | None = None  # a run silence ended: (start, trigger)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_ts": _iso(self.last_ts),
            "mains_seen": self.mains_seen,
            "run": self.run.to_json() if self.run else None,
            "resume": None if self.resume is None else [_iso(self.resume[0]), self.resume[1]],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Device:
        resume = d["resume"]
        return cls(
            last_ts=_t(d["last_ts"]),
            mains_seen=bool(d["mains_seen"]),
            run=_Run.from_json(d["run"]) if d["run"] else None,
            resume=None if resume is None else (datetime.fromisoformat(resume[0]), resume[1]),
        )


def _floor1(x: float) -> float:
    """Rounded down to 0.1, so a value shown never reaches a threshold it did not reach."""
    return math.floor(round(x * 10.0, 6)) / 10.0


class RunDetector:
    """Turns one site's genset samples into GeneratorTest records, per device (rules: module docstring)."""

    def __init__(
        self,
        rules: GeneratorTests,
        max_gap_s: float = 60.0,
        *,
        idle_end_s: float = 60.0,
        source: Source = "telemetry",
    ) -> None:
        self.rules = rules
        self.max_gap = timedelta(seconds=max_gap_s)
        self.idle_end = timedelta(seconds=idle_end_s)
        self.source: Source = source
        self._devices: dict[str, _Device] = {}

    def to_json(self) -> dict[str, Any]:
        """The per-device progress as JSON-compatible data."""
        return {"v": STATE_VERSION, "devices": {k: d.to_json() for k, d in sorted(self._devices.items())}}

    @classmethod
    def from_json(
        cls,
        rules: GeneratorTests,
        data: Mapping[str, Any] | None,
        max_gap_s: float = 60.0,
        *,
        idle_end_s: float = 60.0,
        source: Source = "telemetry",
    ) -> RunDetector:
        """A detector that continues from saved progress (None: from scratch)."""
        det = cls(rules, max_gap_s, idle_end_s=idle_end_s, source=source)
        if data is not None:
            if data.get("v") != STATE_VERSION:
                raise ValueError(f"generator run state version {data.get('v')!r}, expected {STATE_VERSION}")
            det._devices = {k: _Device.from_json(v) for k, v in data["devices"].items()}
        return det

    def open_runs(self) -> dict[str, datetime]:
        """Devices with a run in progress, and when it started."""
        return {k: d.run.start for k, d in sorted(self._devices.items()) if d.run is not None}

    def feed(self, sample: GensetSample) -> list[GeneratorTest]:
        """Take one sample; the runs it finished (at most one; usually none)."""
        if sample.ts.utcoffset() is None:
            raise ValueError(f"sample time {sample.ts.isoformat()} has no UTC offset")
        dev = self._devices.setdefault(sample.device, _Device())
        if dev.last_ts is not None and sample.ts <= dev.last_ts:
            return []  # a redelivery or an older reading: already accounted for
        out: list[GeneratorTest] = []
        run = dev.run
        if run is not None and dev.last_ts is not None and sample.ts - dev.last_ts > self.max_gap:
            out.append(self._close(sample.device, dev, run, silent=True))
        elif run is not None and run.zero_since is not None and sample.ts - run.zero_since >= self.idle_end:
            out.append(self._close(sample.device, dev, run))
        resume, dev.resume = dev.resume, None
        dev.last_ts = sample.ts
        kind = self._kind(sample)
        run = dev.run
        if run is None:
            if kind == "run":
                self._open(dev, sample, resume)
        elif kind == "run":
            for ts, load in run.pending:  # the zero-load stretch was part of the run after all
                run.absorb(ts, load, on_load=False)
            run.pending.clear()
            run.zero_since = None
            run.absorb(sample.ts, sample.load_pct, self._on_load(run, sample))
            run.last_running = sample.ts
        elif kind == "idle":
            if run.zero_since is None:
                run.zero_since = sample.ts
            run.pending.append((sample.ts, sample.load_pct))
        else:
            out.append(self._close(sample.device, dev, run))
        if dev.run is None:
            if sample.mains_failed:
                dev.mains_seen = True
            elif sample.mains_failed is False and sample.engine_state not in STARTING:
                dev.mains_seen = False  # at rest (or stopping) with mains present
        return out

    def flush(self, now: datetime) -> list[GeneratorTest]:
        """Close the runs whose device has been silent longer than max_gap_s, or idle for idle_end_s."""
        out = []
        for name, dev in sorted(self._devices.items()):
            run = dev.run
            if run is None or dev.last_ts is None:
                continue
            if now - dev.last_ts > self.max_gap:
                out.append(self._close(name, dev, run, silent=True))
            elif run.zero_since is not None and now - run.zero_since >= self.idle_end:
                out.append(self._close(name, dev, run))
        return out

    # -- internals

    @staticmethod
    def _kind(s: GensetSample) -> Literal["run", "idle", "stop"]:
        if s.engine_state == "running":
            return "run"
        if s.engine_state in NOT_RUNNING:
            return "stop"
        return "run" if s.load_pct is not None and s.load_pct > 0 else "idle"

    def _on_load(self, run: _Run, s: GensetSample) -> bool:
        if s.load_pct is None or s.load_pct < self.rules.min_load_pct:
            return False
        return run.trigger != "test_mode" or s.control_mode == "test_on_load"

    def _open(self, dev: _Device, s: GensetSample, resume: tuple[datetime, TestTrigger] | None) -> None:
        trigger: TestTrigger
        if resume is not None:
            trigger = resume[1]  # the same run, seen again after a gap: its trigger was decided at its start
        elif s.control_mode in TEST_MODES:
            trigger = "test_mode"
        elif dev.mains_seen or s.mains_failed:
            trigger = "mains_failure"
        elif s.control_mode == "manual":
            trigger = "manual"
        else:
            trigger = "unknown"
        run = _Run(start=s.ts, trigger=trigger, last_running=s.ts)
        run.resumed_from = resume[0] if resume is not None else None
        run.absorb(s.ts, s.load_pct, self._on_load(run, s))
        dev.run = run
        dev.mains_seen = False

    def _close(self, device: str, dev: _Device, run: _Run, *, silent: bool = False) -> GeneratorTest:
        dev.run = None
        run.end_span()
        if silent:
            dev.resume = (run.start, run.trigger)
        return self._record(device, run, silent)

    def _record(self, device: str, run: _Run, silent: bool) -> GeneratorTest:
        rules = self.rules
        pct, need = rules.min_load_pct, rules.min_minutes
        best = run.best
        minutes, counts = 0.0, False
        min_load, avg = run.min_load, (run.integral / run.seconds if run.seconds > 0 else run.max_load)
        if best is not None:
            span_us = (best.last - best.start) // timedelta(microseconds=1)
            minutes = (span_us // _US_PER_MILLIMINUTE) / 1000.0
            counts = span_us >= round(need * 60e6)
            min_load = best.min_load
            avg = best.integral / best.seconds if best.seconds > 0 else best.last_load
        shown = _floor1(minutes)
        if best is not None and counts:
            reason = (
                f"{shown:.1f} min at ≥ {pct:g} % (avg {avg:.1f} %): counts / "
                f"帶載 {shown:.1f} 分鐘（≥ {pct:g} %，平均 {avg:.1f} %）：計入月測"
            )
        elif best is not None:
            reason = (
                f"only {shown:.1f} min on load at ≥ {pct:g} % (needs {need:g}) / "
                f"帶載（≥ {pct:g} %）僅 {shown:.1f} 分鐘，未達 {need:g} 分鐘，不計入"
            )
        elif run.max_load is None:
            reason = "no load reading (gen_load_pct) / 無負載讀值（gen_load_pct），不計入"
        elif run.max_load < pct:
            peak = _floor1(run.max_load)
            reason = f"load {peak:g} % below {pct:g} % / 負載 {peak:g} % 低於 {pct:g} %，不計入"
        else:
            reason = (
                f"never at ≥ {pct:g} % while in test_on_load / "
                f"測試模式（test_on_load）下負載未達 {pct:g} %，不計入"
            )
        notes = []
        if run.resumed_from is not None:
            notes.append(
                f"readings resumed after a gap; continues the run of {device}@{utc_key(run.resumed_from)} "
                f"/ 讀值中斷後恢復，接續 {device}@{utc_key(run.resumed_from)} 之運轉"
            )
        if silent:
            gap = self.max_gap.total_seconds()
            notes.append(
                f"no reading for over {gap:g} s: ended at the last reading / "
                f"逾 {gap:g} 秒無讀值，以最後讀值時間為結束"
            )
        return GeneratorTest(
            device=device,
            started_at=run.start,
            ended_at=run.last_running,
            on_load_minutes=minutes,
            min_load_pct=None if min_load is None else round(min_load, 2),
            avg_load_pct=None if avg is None else round(avg, 2),
            trigger=run.trigger,
            counts=counts,
            reason=reason,
            source=self.source,
            notes="; ".join(notes) or None,
        )


def detect_runs(
    samples: Iterable[GensetSample],
    rules: GeneratorTests,
    *,
    max_gap_s: float = 60.0,
    idle_end_s: float = 60.0,
    now: datetime | None = None,
) -> list[GeneratorTest]:
    """Rebuild runs from stored samples (source 'history'); `now` also closes runs silent or idle by then."""
    # A run still going at the end of the samples is left out: it is not over yet.
    det = RunDetector(rules, max_gap_s, idle_end_s=idle_end_s, source="history")
    out: list[GeneratorTest] = []
    for s in sorted(samples, key=lambda s: s.ts):
        out.extend(det.feed(s))
    if now is not None:
        out.extend(det.flush(now))
    return sorted(out, key=lambda r: (r.started_at, r.device))
