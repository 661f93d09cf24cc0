# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The synthetic half-year of bench.compliance: the example site's readings as line protocol, and records.

Readings (docs/influx-schema.md: a measurement per class, tags site/room/device/model plus zone/rack and
the device's own tags, every number a float, a `quality` field, a failed poll without the metric), every
device at the same 5 s poll, deterministic (a fixed seed):

* env: cold-aisle probes at 22-23 °C with a daily cycle (warmest at 15:00) and a seasonal drift, RH
  44-55 % moving against the temperature; the hot-aisle Watchdogs 11.5 °C warmer at the same absolute
  humidity; the power bay at 24 °C. Excursions: a CRAC failure (2 h 30 min, cold aisle up to 28.5 °C:
  outside recommended, inside A1), a humid night (6 h at RH 63-66 %), a heat spike in row B (40 min at
  33 °C: outside A1), and per probe a 20-minute comm_error gap each month;
* ups: on_battery, output_source, battery_charge_pct, runtime_s, input_voltage_v, output_load_pct (higher in
  the trading session), test_result (a monthly self-test: 10 s in_progress, then passed);
* genset: control_mode, engine_state, gen_load_pct, engine_speed_rpm, coolant_temp_c, fuel_level_pct,
  battery_voltage_v; one monthly test run (the second Tuesday, 10:00 local): 60 s warming up, 32 min at
  40 % in test_on_load, 3 min cooling down;
* crac: unit_state, return/supply air temperature, cooling_capacity_pct, status (crac-1 off during the
  CRAC failure);
* door: door_open, door_state (a few openings a day in office hours).

Records (`records()`): the monthly generator tests matching those runs, a monthly UPS self-test per UPS,
duty shifts every 12 h, vendor visits, disposals, incidents, inspections, a drill, maintenance windows,
and check results, each written at a plausible time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from compliance.items import COOLING, ENVIRONMENT, ITEMS
from compliance.kinds import (
    Disposal,
    Drill,
    DutyShift,
    GeneratorTest,
    Incident,
    Inspection,
    Maintenance,
    RecordModel,
    UpsTest,
    VendorVisit,
)
from compliance.result import CheckResult, Evidence
from devices.reading import DeviceRef
from devices.registry import ProfileRegistry
from ingest.lineproto import series_key
from siteconfig.config import SiteConfig

POLL_S = 5
DAY_S = 86_400
STEPS = DAY_S // POLL_S  # polls per device and day
CLASSES = ("env", "ups", "genset", "crac", "door")
# Bump when the generated data changes: bench.compliance then rewrites a reused database.
DATASET_VERSION = "compliance-bench/1"

_NOISE_N = 100_003  # prime: the walk through the table never lines up with a day
_rng = random.Random(16000)
_NOISE = [_rng.gauss(0.0, 1.0) for _ in range(_NOISE_N)]


@dataclass(frozen=True, slots=True)
class Device:
    """One polled device: its class, series key (`measurement,tags`) and place in the poll cycle."""

    id: str
    device_class: str
    key: str
    phase: int  # seconds after each 5 s tick this device is polled at
    index: int
    hot_aisle: bool = False
    fine: bool = False  # 0.01 °C resolution (x100)


def site_devices(site: SiteConfig) -> list[Device]:
    """The example site's env, UPS, genset, CRAC and door devices with their series keys, as ingest writes."""
    registry = ProfileRegistry.builtin()
    out: list[Device] = []
    for d in site.devices:
        profile = registry.for_unit(d.profile, d.settings)
        cls = profile.device_class.value
        if cls not in CLASSES:
            continue
        tags = dict(d.tags)
        if d.zone:
            tags["zone"] = d.zone
        if d.rack:
            tags["rack"] = d.rack
        ref = DeviceRef(site.site.id, d.room, d.id, profile.device_class, profile.model, tags)
        out.append(
            Device(
                d.id,
                cls,
                series_key(ref),
                phase=len(out) % POLL_S,
                index=len(out),
                hot_aisle=tags.get("aisle") == "hot",
                fine=d.settings.get("resolution") == "x100",
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of local time [start, end) on one day, as poll steps of that day."""

    day: date
    first: int
    last: int  # exclusive

    @classmethod
    def at(cls, day: date, hh: int, mm: int, minutes: float) -> Window:
        first = (hh * 3600 + mm * 60) // POLL_S
        return cls(day, first, first + int(minutes * 60) // POLL_S)


def second_tuesday(year: int, month: int) -> date:
    """The generator's monthly test day."""
    first = date(year, month, 1)
    return first + timedelta(days=(1 - first.weekday()) % 7 + 7)


@dataclass(frozen=True, slots=True)
class Plan:
    """What happens when in the period: excursions, gaps, generator test days."""

    start: date
    days: int
    tz: ZoneInfo

    def day(self, i: int) -> date:
        return self.start + timedelta(days=i)

    def months(self) -> list[date]:
        out: list[date] = []
        for i in range(self.days):
            first = self.day(i).replace(day=1)
            if first not in out:
                out.append(first)
        return out

    def _in_period(self, d: date) -> bool:
        return self.start <= d < self.start + timedelta(days=self.days)

    def _nth(self, n: int) -> date:
        """The n-th day of the period, or its last day in a shorter run (--days)."""
        return self.day(min(n, self.days - 1))

    def crac_failure(self) -> Window:
        return Window.at(self._nth(44), 14, 0, 150)  # 2026-07-15

    def humid_night(self) -> Window:
        return Window.at(self._nth(80), 2, 0, 360)  # 2026-08-20

    def heat_spike(self) -> Window:
        return Window.at(self._nth(124), 11, 0, 40)  # 2026-10-03

    def generator_tests(self) -> list[Window]:
        tests = [Window.at(second_tuesday(m.year, m.month), 10, 0, 36) for m in self.months()]
        return [w for w in tests if self._in_period(w.day)]

    def ups_tests(self) -> list[Window]:
        tests = [Window.at(m.replace(day=5), 9, 30, 1) for m in self.months()]
        return [w for w in tests if self._in_period(w.day)]

    def comm_gaps(self, device: Device) -> list[Window]:
        gaps = [Window.at(m.replace(day=10 + device.index), 3, 0, 20) for m in self.months()]
        return [w for w in gaps if self._in_period(w.day)]

    def local(self, day: date, step: int = 0) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(seconds=step * POLL_S)


def _daily(amplitude: float, peak_hour: float) -> list[float]:
    """A sine over the day's poll steps, `amplitude` at `peak_hour` local."""
    return [amplitude * math.cos(2 * math.pi * (k * POLL_S / 3600 - peak_hour) / 24) for k in range(STEPS)]


_TEMP_CYCLE = _daily(0.8, 15.0)
_LOAD_CYCLE = [10.0 if 9 * 720 <= k < 13.5 * 720 else 0.0 for k in range(STEPS)]  # the trading session
# Seasonal offsets by calendar month (June..November; outside them 0).
_SEASON_T = {6: 0.3, 7: 0.6, 8: 0.6, 9: 0.4, 10: 0.0, 11: -0.4}
_SEASON_RH = {6: 51.0, 7: 52.0, 8: 53.0, 9: 50.0, 10: 47.0, 11: 44.0}
_MAGNUS_A, _MAGNUS_B = 17.625, 243.04


def _noise(seed: int) -> Iterator[float]:
    i = seed % _NOISE_N
    while True:
        yield _NOISE[i]
        i = (i + 7) % _NOISE_N


def _rh_at(temp_from: float, temp_to: float) -> float:
    """Factor on RH when air of `temp_from` is heated to `temp_to` (same absolute humidity, Magnus)."""
    return math.exp(
        _MAGNUS_A * temp_from / (_MAGNUS_B + temp_from) - _MAGNUS_A * temp_to / (_MAGNUS_B + temp_to)
    )


class Generator:
    """The lines of one device-day; `lines(device, i)` for day `i` of the plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._gen_tests = {w.day: w for w in plan.generator_tests()}
        self._ups_tests = {w.day: w for w in plan.ups_tests()}

    def _epochs(self, device: Device, day: date) -> range:
        t0 = int(self.plan.local(day).timestamp()) + device.phase
        return range(t0, t0 + DAY_S, POLL_S)

    def lines(self, device: Device, i: int) -> list[str]:
        day = self.plan.day(i)
        by_class = {"env": self._env, "ups": self._ups, "genset": self._genset, "crac": self._crac}
        return by_class.get(device.device_class, self._door)(device, day, i)

    # -- env
    def _env(self, dev: Device, day: date, i: int) -> list[str]:
        noise = _noise(i * 7919 + dev.index * 104_729)
        t_base = 22.3 + 0.15 * (dev.index % 3) + _SEASON_T.get(day.month, 0.0)
        rh_base = _SEASON_RH.get(day.month, 48.0)
        power_bay = "zone=power" in dev.key
        if power_bay:
            t_base += 1.7
        temps = [t_base + c + 0.15 * next(noise) for c in _TEMP_CYCLE]
        rhs = [rh_base - 1.5 * c + 0.8 * next(noise) for c in _TEMP_CYCLE]
        plan = self.plan
        row_b = "zone=row-b" in dev.key
        for w, shape in (
            (plan.crac_failure(), "crac"),
            (plan.humid_night(), "humid"),
            (plan.heat_spike(), "spike"),
        ):
            if w.day != day or power_bay or (shape == "spike" and not row_b):
                continue
            n = w.last - w.first
            for k in range(w.first, w.last):
                x = (k - w.first) / n
                if shape == "crac":  # up 6 °C over the first hour, back over the last half hour
                    temps[k] += 6.0 * min(1.0, x / 0.4, (1.0 - x) / 0.2)
                elif shape == "humid":
                    rhs[k] = 63.0 + 3.0 * math.sin(math.pi * x) + 0.3 * next(noise)
                else:
                    temps[k] = 33.0 + 0.2 * next(noise)
        if dev.hot_aisle:
            factor = _rh_at(t_base, t_base + 11.5)
            temps = [t + 11.5 for t in temps]
            rhs = [h * factor for h in rhs]
        key = dev.key
        fmt = "{:.2f}" if dev.fine else "{:.1f}"
        ft = fmt.format
        out = [
            f'{key} temp_c={ft(t)},rh_pct={ft(h)},quality="good" {ts}'
            for t, h, ts in zip(temps, rhs, self._epochs(dev, day), strict=True)
        ]
        for gap in plan.comm_gaps(dev):
            if gap.day == day:
                epochs = self._epochs(dev, day)
                for k in range(gap.first, gap.last):
                    out[k] = (
                        f'{key} temp_c_quality="comm_error",rh_pct_quality="comm_error",quality="comm_error",'
                        f'error="DeviceTimeout: no response after 2.0 s" {epochs[k]}'
                    )
        return out

    # -- ups
    def _ups(self, dev: Device, day: date, i: int) -> list[str]:
        noise = _noise(i * 31 + dev.index * 7)
        key = dev.key
        base = 34.0 + 4.0 * (dev.index % 3)
        test = self._ups_tests.get(day)
        out: list[str] = []
        for k, ts in enumerate(self._epochs(dev, day)):
            load = base + _LOAD_CYCLE[k] + 0.6 * next(noise)
            result = "passed"
            if test is not None and test.first <= k < test.first + 2:
                result = "in_progress"
            out.append(
                f'{key} on_battery=false,output_source="normal",battery_charge_pct=100.0,'
                f"runtime_s={3600.0 - 20 * load:.1f},input_voltage_v={220.0 + 1.5 * next(noise):.1f},"
                f'output_load_pct={load:.1f},test_result="{result}",quality="good" {ts}'
            )
        return out

    # -- genset
    def _genset(self, dev: Device, day: date, i: int) -> list[str]:
        noise = _noise(i * 13 + 5)
        key = dev.key
        test = self._gen_tests.get(day)
        fuel = 95.0 - 0.5 * sum(1 for d in self._gen_tests if d < day)
        rest = (
            f'{key} control_mode="auto",engine_state="stopped",gen_load_pct=0.0,engine_speed_rpm=0.0,'
            f"coolant_temp_c=38.0,fuel_level_pct={fuel:.1f},battery_voltage_v="
        )
        out = [f'{rest}{27.2 + 0.05 * next(noise):.2f},quality="good" {ts}' for ts in self._epochs(dev, day)]
        if test is not None:
            epochs = self._epochs(dev, day)
            warm, on_load = 12, 32 * 60 // POLL_S  # 60 s warming up, 32 min at 40 %
            for n, k in enumerate(range(test.first, test.last)):
                if n < warm:
                    mode, state, load, rpm = "test_on_load", "warming_up", 0.0, 1800.0
                elif n < warm + on_load:
                    mode, state, load, rpm = "test_on_load", "running", 40.0 + 0.8 * next(noise), 1800.0
                else:
                    mode, state, load, rpm = "auto", "cooling_down", 0.0, 1800.0
                coolant = 38.0 + min(45.0, n * 0.25)
                out[k] = (
                    f'{key} control_mode="{mode}",engine_state="{state}",gen_load_pct={load:.1f},'
                    f"engine_speed_rpm={rpm:.1f},coolant_temp_c={coolant:.1f},fuel_level_pct={fuel:.1f},"
                    f'battery_voltage_v={27.8 + 0.05 * next(noise):.2f},quality="good" {epochs[k]}'
                )
        return out

    # -- crac
    def _crac(self, dev: Device, day: date, i: int) -> list[str]:
        noise = _noise(i * 17 + dev.index * 3)
        key = dev.key
        failure = self.plan.crac_failure()
        out: list[str] = []
        for k, ts in enumerate(self._epochs(dev, day)):
            c = _TEMP_CYCLE[k]
            failed = dev.index % 2 == 1 and failure.day == day and failure.first <= k < failure.last
            if failed:
                out.append(
                    f'{key} unit_state="off",return_air_temp_c={34.0 + c:.1f},'
                    f"supply_air_temp_c={30.0 + c:.1f},cooling_capacity_pct=0.0,"
                    f'status="critical",quality="good" {ts}'
                )
                continue
            out.append(
                f'{key} unit_state="on",return_air_temp_c={33.5 + c + 0.2 * next(noise):.1f},'
                f"supply_air_temp_c={18.0 + 0.1 * next(noise):.1f},"
                f'cooling_capacity_pct={55.0 + 8 * c + next(noise):.1f},status="normal",quality="good" {ts}'
            )
        return out

    # -- door
    def _door(self, dev: Device, day: date, i: int) -> list[str]:
        key = dev.key
        closed = f'{key} door_open=false,door_state="closed",quality="good" '
        out = [closed + str(ts) for ts in self._epochs(dev, day)]
        if day.weekday() < 5:
            epochs = self._epochs(dev, day)
            for hh, mm in ((8, 55), (12, 10), (13, 40), (17, 35)):
                k = (hh * 3600 + mm * 60) // POLL_S + dev.index
                for j in range(2):
                    out[k + j] = f'{key} door_open=true,door_state="open",quality="good" {epochs[k + j]}'
        return out


def lines(site: SiteConfig, plan: Plan) -> Iterator[list[str]]:
    """Every line of the period, a device-day at a time, day after day (time order per shard)."""
    devices = site_devices(site)
    gen = Generator(plan)
    for i in range(plan.days):
        for dev in devices:
            yield gen.lines(dev, i)


# ------------------------------------------------------------------------------------------- records

OPERATORS = ("王小明", "林怡君", "陳志豪", "張雅婷")


def records(site: SiteConfig, plan: Plan) -> list[tuple[datetime, list[RecordModel]]]:
    """The records of the period as (written at, records written together), oldest first."""
    tz = plan.tz
    out: list[tuple[datetime, list[RecordModel]]] = []
    gens = [d.id for d in site_devices(site) if d.device_class == "genset"]
    upses = [d.id for d in site_devices(site) if d.device_class == "ups"]
    for w in plan.generator_tests():
        began = plan.local(w.day, w.first)
        rec = GeneratorTest(
            device=gens[0],
            started_at=began,
            ended_at=began + timedelta(minutes=36),
            on_load_minutes=32.0,
            min_load_pct=38.4,
            avg_load_pct=40.0,
            trigger="test_mode",
            counts=True,
            reason="≥ 30 % for ≥ 30 min",
            source="telemetry",
        )
        out.append((began + timedelta(minutes=37), [rec]))
    for w in plan.ups_tests():
        at = plan.local(w.day, w.first)
        ups: list[RecordModel] = [
            UpsTest(device=u, tested_at=at, test_type="self_test", result="passed", source="telemetry")
            for u in upses
        ]
        out.append((at + timedelta(minutes=1), ups))
    # The duty roster, written month by month before the month starts: 08:00-20:00 and 20:00-08:00.
    for first in plan.months():
        shifts: list[RecordModel] = []
        for i in range(plan.days):
            day = plan.day(i)
            if day.replace(day=1) != first:
                continue
            for n, hh in enumerate((8, 20)):
                lo = datetime.combine(day, time(hh), tzinfo=tz)
                shifts.append(
                    DutyShift(
                        operator=OPERATORS[(i * 2 + n) % len(OPERATORS)],
                        starts_at=lo,
                        ends_at=lo + timedelta(hours=12),
                        phone="02-2345-6789",
                        approved_by="林主任",
                    )
                )
        out.append((datetime.combine(first, time(9), tzinfo=tz) - timedelta(days=3), shifts))
    for n, first in enumerate(plan.months()):
        day = first.replace(day=18)
        if not plan.start <= day < plan.start + timedelta(days=plan.days):
            continue
        lo = datetime.combine(day, time(14), tzinfo=tz)
        visit = VendorVisit(
            visit_id=f"V-{day:%Y%m}-1",
            company="台灣空調工程",
            person="黃技師",
            id_checked=True,
            work_order=f"WO-{day:%Y%m}-CRAC",
            purpose="精密空調保養 CRAC preventive maintenance",
            escort=OPERATORS[n % len(OPERATORS)],
            approved_by="林主任",
            room="mr1",
            in_at=lo,
            out_at=lo + timedelta(hours=2),
            items_in=["工具箱 toolbox"],
            items_out=["工具箱 toolbox"],
            nda_ref="NDA-2026-03",
            result="正常 normal",
        )
        window = Maintenance(
            window_id=f"MW-{day:%Y%m}",
            system="crac-1",
            starts_at=lo,
            ends_at=lo + timedelta(hours=2),
            stops_service=False,
            description="精密空調保養 CRAC maintenance",
            approved_by="林主任",
            vendor_visit=visit.visit_id,
        )
        lighting = Inspection(
            system="emergency_lighting",
            inspected_at=lo + timedelta(hours=3),
            inspector=OPERATORS[(n + 1) % len(OPERATORS)],
            result="pass",
            duration_s=45.0,
        )
        out.append((lo + timedelta(hours=3, minutes=5), [visit, window, lighting]))
    mid = plan.day(plan.days // 2)
    at = datetime.combine(mid, time(10), tzinfo=tz)
    out.append(
        (
            at,
            [
                Inspection(
                    system="fire",
                    inspected_at=at,
                    inspector="李消防",
                    licence="消防設備師 123",
                    result="pass",
                    report_ref="FS-2026-0412",
                ),
                Drill(
                    drill_id=f"DR-{mid:%Y}-2",
                    held_at=at + timedelta(days=1),
                    plan="機房復原計畫",
                    scenario="市電中斷 utility outage",
                    participants=list(OPERATORS),
                    result="pass",
                ),
            ],
        )
    )
    disposals: list[RecordModel] = [
        Disposal(
            asset_id=f"HDD-{n:04d}",
            disposed_at=at + timedelta(days=n),
            approval_ref=f"DA-2026-{n:03d}",
            method="destroy",
            tool="碎盤機 shredder",
            operator=OPERATORS[n],
            witness="林主任",
            verification="full",
            verified_by="林主任",
            certificate_ref=f"CD-2026-{n:03d}",
        )
        for n in range(1, 4)
    ]
    out.append((at + timedelta(days=4), disposals))
    fail = plan.crac_failure()
    began = plan.local(fail.day, fail.first)
    out.append(
        (
            began + timedelta(days=5),
            [
                Incident(
                    incident_id=f"INC-{fail.day:%Y%m%d}-1",
                    rule="env-temp-high",
                    severity="critical",
                    device_class="crac",
                    room="mr1",
                    device="crac-1",
                    summary="精密空調 1 停機，冷通道升溫 CRAC 1 stopped, cold aisle warming",
                    started_at=began,
                    resolved_at=began + timedelta(minutes=150),
                    cause="壓縮機過熱 compressor overheat",
                    corrective_action="更換壓縮機 compressor replaced",
                    preventive_action="每月保養 monthly maintenance",
                    owner="陳志豪",
                    due_at=began + timedelta(days=14),
                    closed_at=began + timedelta(days=5),
                    closed_by="林主任",
                )
            ],
        )
    )
    spike = plan.heat_spike()
    began = plan.local(spike.day, spike.first)
    out.append(
        (
            began + timedelta(hours=1),
            [
                Incident(
                    incident_id=f"INC-{spike.day:%Y%m%d}-1",
                    rule="env-temp-critical",
                    severity="critical",
                    device_class="env",
                    room="mr1",
                    device="th-b01",
                    summary="B 列冷通道 33 °C row B cold aisle at 33 °C",
                    started_at=began,
                    resolved_at=began + timedelta(minutes=40),
                    owner="張雅婷",
                    due_at=began + timedelta(days=14),
                )
            ],
        )
    )
    out.sort(key=lambda x: x[0])
    return out


def check_results(plan: Plan) -> list[tuple[datetime, list[CheckResult]]]:
    """Board results: every item passing at the start, a few changes during the period."""
    at = plan.local(plan.start) + timedelta(hours=1)
    ok = [CheckResult(i.key, "pass", "符合", "ok", (Evidence("config", "site.yaml"),)) for i in ITEMS]
    out = [(at, ok)]
    for w, item in ((plan.crac_failure(), COOLING.key), (plan.heat_spike(), ENVIRONMENT.key)):
        began = plan.local(w.day, w.first)
        out.append((began, [CheckResult(item, "fail", "超出範圍", "out of range", ())]))
        out.append((began + timedelta(hours=3), [CheckResult(item, "pass", "符合", "ok", ())]))
    return out
