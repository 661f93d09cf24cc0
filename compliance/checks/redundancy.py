# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Redundancy (六): enough healthy CRAC and UPS units now for N+1, generators named as further backup.

N is config.redundancy's crac_needed / ups_needed, or one less than the units configured (the site says
N when the room needs more than one unit). One number per site, so the count is site-wide. A single unit
with N left to the default cannot show N+1 at all: that is a fail, whatever it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compliance.checks.common import Finding, active_alarms, board_line, listing, telemetry
from compliance.checks.environment import UNIT_STATE_ZH
from compliance.facts import DeviceInfo, Facts
from compliance.items import REDUNDANCY
from compliance.result import CheckResult, Evidence

# The pack's crac-redundancy-lost rule counts these unit_state values healthy; off = stopped or failed.
CRAC_RUNNING = frozenset({"on", "standby", "idle"})
# battery_status values (catalog.yaml, ups) with which the UPS cannot carry the load on battery.
UPS_BATTERY_BAD = frozenset({"fault", "depleted", "not_present"})

# output_source (catalog.yaml, ups) in Chinese.
OUTPUT_ZH = {
    "normal": "市電供電",
    "bypass": "旁路供電",
    "booster": "升壓供電",
    "reducer": "降壓供電",
    "other": "其他",
}

Health = Literal["healthy", "unhealthy", "unknown"]


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit's health and why, for the count."""

    id: str
    health: Health
    zh: str
    en: str
    evidence: tuple[Evidence, ...]


def check_redundancy(facts: Facts) -> CheckResult:
    """(六) healthy CRAC units ≥ N+1 and healthy UPS units ≥ N+1; generators mentioned as power backup."""
    red = facts.config.redundancy
    findings = [
        _group([_crac(facts, d) for d in facts.devices_of("crac")], red.crac_needed, "空調", "CRAC"),
        _group([_ups(facts, d) for d in facts.devices_of("ups")], red.ups_needed, "不斷電系統", "UPS"),
    ]
    sets = facts.devices_of("genset")
    if sets:
        modes = [f"{g.id}（{_mode(facts, g)}）" for g in sets]
        modes_en = [f"{g.id} ({_mode(facts, g)})" for g in sets]
        findings.append(
            Finding(
                "pass",
                f"電源另有發電機備援：{listing(modes, zh=True)}（備便與否見第（四）項）",
                f"power is further backed by generator(s) {listing(modes_en, zh=False)} "
                "(readiness: item (四))",
            )
        )
    return board_line(REDUNDANCY, findings)


def _mode(facts: Facts, genset: DeviceInfo) -> str:
    state = facts.telemetry.get(genset.id)
    mode = state.metrics.get("control_mode") if state is not None else None
    return str(mode) if mode is not None else "no telemetry"


def _group(units: list[Unit], needed: int | None, zh: str, en: str) -> Finding:
    if not units:
        return Finding(
            "unknown", f"未設定{zh}，無法顯示備援", f"no {en} unit configured: no redundancy shown"
        )
    evidence = tuple(e for u in units for e in u.evidence)
    detail_zh = listing([f"{u.id} {u.zh}" for u in units], zh=True)
    detail_en = listing([f"{u.id} {u.en}" for u in units], zh=False)
    if needed is None and len(units) == 1:
        return Finding(
            "fail",
            f"僅有單一{zh}（{detail_zh}），無法達成 N+1 備援",
            f"single {en} unit ({detail_en}): N+1 cannot be shown",
            evidence,
        )
    need = needed if needed is not None else len(units) - 1
    want = need + 1
    healthy = sum(u.health == "healthy" for u in units)
    unknown = sum(u.health == "unknown" for u in units)
    count_zh = f"{zh}正常 {healthy}/{len(units)} 台，N+1 需 {want} 台（N = {need}）：{detail_zh}"
    count_en = f"{healthy} of {len(units)} {en} units healthy, N+1 needs {want} (N = {need}): {detail_en}"
    seen = [e.at for e in evidence if e.at is not None]
    last = max(seen) if seen else None
    if healthy >= want:
        return Finding("pass", count_zh, count_en, evidence, last)
    if healthy + unknown >= want:
        return Finding(
            "unknown", f"{count_zh}；部分未回報，無法確認", f"{count_en}; some do not report", evidence, last
        )
    return Finding("fail", count_zh, count_en, evidence, last)


def _crac(facts: Facts, unit: DeviceInfo) -> Unit:
    how, state = telemetry(facts, unit)
    if how == "missing" or state is None:
        return Unit(
            unit.id, "unknown", "尚無遙測", "no telemetry", (Evidence("config", f"device/{unit.id}"),)
        )
    online = Evidence("reading", f"{unit.id}/online", state.last_seen, str(state.online))
    if how == "offline":
        return Unit(unit.id, "unhealthy", "未回應", "not answering", (online,))
    mode = state.metrics.get("unit_state")
    status = state.metrics.get("status")
    ev = (
        Evidence("reading", f"{unit.id}/unit_state", state.last_seen, str(mode)),
        Evidence("reading", f"{unit.id}/status", state.last_seen, str(status)),
    )
    alarms = active_alarms(state.metrics)
    if mode is None:
        return Unit(unit.id, "unknown", "運轉狀態未回報", "unit state not reported", ev)
    if mode not in CRAC_RUNNING:
        return Unit(unit.id, "unhealthy", UNIT_STATE_ZH.get(str(mode), str(mode)), f"{mode}", ev)
    if status == "critical":
        return Unit(unit.id, "unhealthy", "嚴重警報", "critical alarm", ev)
    if alarms:
        names = listing([n for n, _ in alarms], zh=False)
        return Unit(unit.id, "unhealthy", f"警報 {names}", f"alarm {names}", ev)
    return Unit(unit.id, "healthy", UNIT_STATE_ZH.get(str(mode), str(mode)), f"{mode}", ev)


def _ups(facts: Facts, unit: DeviceInfo) -> Unit:
    how, state = telemetry(facts, unit)
    if how == "missing" or state is None:
        return Unit(
            unit.id, "unknown", "尚無遙測", "no telemetry", (Evidence("config", f"device/{unit.id}"),)
        )
    if how == "offline":
        off = (Evidence("reading", f"{unit.id}/online", state.last_seen, str(state.online)),)
        return Unit(unit.id, "unhealthy", "未回應", "not answering", off)
    m = state.metrics
    source, battery = m.get("output_source"), m.get("battery_status")
    ev = (
        Evidence("reading", f"{unit.id}/output_source", state.last_seen, str(source)),
        Evidence("reading", f"{unit.id}/battery_status", state.last_seen, str(battery)),
    )
    if source is None:
        return Unit(unit.id, "unknown", "輸出來源未回報", "output source not reported", ev)
    if source == "none" or m.get("output_off") is True:
        return Unit(unit.id, "unhealthy", "無輸出", "output off", ev)
    if battery in UPS_BATTERY_BAD:
        return Unit(unit.id, "unhealthy", f"電池 {battery}", f"battery {battery}", ev)
    if m.get("general_fault") is True:
        return Unit(unit.id, "unhealthy", "一般故障", "general fault", ev)
    if m.get("on_battery") is True:
        # Carrying the load on battery is the UPS doing its job; the outage itself is item (四)'s and the
        # alerts' concern, not a loss of redundancy.
        return Unit(unit.id, "healthy", "電池供電中", "on battery", ev)
    return Unit(unit.id, "healthy", OUTPUT_ZH.get(str(source), str(source)), f"output {source}", ev)
