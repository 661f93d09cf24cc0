# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The room's climate: a dedicated air conditioning that reports (二), temperature and humidity (三)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from compliance.checks.common import Finding, board_line, last_seen, num, silent_finding, telemetry, when
from compliance.facts import EnvWindow, Facts
from compliance.items import COOLING, ENVIRONMENT
from compliance.result import CheckResult, Evidence, Status

UNIT_STATE_ZH = {"on": "運轉", "off": "停止", "standby": "待機", "idle": "閒置"}


def check_cooling(facts: Facts) -> CheckResult:
    """(二) CRAC units configured and reporting; some silent → warn; none reporting or none at all → unknown.

    One reporting unit is evidence that the room has its own air conditioning; a silent unit beside it is
    named (whether there are enough is item (六)'s question).
    """
    units = facts.devices_of("crac")
    if not units:
        return board_line(
            COOLING,
            [
                Finding(
                    "unknown",
                    "未設定機房空調（CRAC），無獨立空調系統之佐證",
                    "no CRAC unit configured: no evidence of a dedicated air conditioning",
                    (Evidence("config", "devices/crac"),),
                )
            ],
        )
    reporting: list[Finding] = []
    silent: list[Finding] = []
    for unit in units:
        how, state = telemetry(facts, unit)
        if how != "ok" or state is None:
            silent.append(silent_finding(facts, unit, how, state))
            continue
        mode = state.metrics.get("unit_state")
        ret = state.metrics.get("return_air_temp_c")
        ret_zh = f"，回風 {num(ret)} °C" if isinstance(ret, int | float) else ""
        ret_en = f", return air {num(ret)} °C" if isinstance(ret, int | float) else ""
        reporting.append(
            Finding(
                "pass",
                f"空調 {unit.id}（{unit.room}）回報中：{UNIT_STATE_ZH.get(str(mode), str(mode))}{ret_zh}",
                f"CRAC {unit.id} ({unit.room}) reports: {mode}{ret_en}",
                (Evidence("reading", f"{unit.id}/unit_state", state.last_seen, str(mode)),),
                state.last_seen,
            )
        )
    if not reporting:
        return board_line(COOLING, silent)
    return board_line(COOLING, reporting + [replace(f, status="warn") for f in silent])


def check_environment(facts: Facts) -> CheckResult:
    """(三) per room: no samples → unknown; outside allowable → fail; too often outside recommended → warn."""
    sensors = facts.devices_of("env")
    known = {d.room for d in sensors} | set(facts.environment)
    rooms = [r for r in facts.rooms if r in known] + sorted(known - set(facts.rooms))
    if not rooms:
        return board_line(
            ENVIRONMENT,
            [
                Finding(
                    "unknown",
                    "未設定溫濕度感測器（env），無溫濕度之佐證",
                    "no temperature/humidity sensor (env) configured: no evidence of the room's climate",
                    (Evidence("config", "devices/env"),),
                )
            ],
        )
    findings = []
    for room in rooms:
        here = [d for d in sensors if d.room == room]
        seen = [t for d in here if (t := last_seen(facts, d.id)) is not None]
        refs = [
            Evidence("reading", f"{d.id}/{m}", last_seen(facts, d.id))
            for d in here
            for m in ("temp_c", "rh_pct")
        ] or [Evidence("reading", f"{room}/env")]
        window = facts.environment.get(room)
        findings.append(_room(facts, room, window, tuple(refs), max(seen) if seen else None))
    return board_line(ENVIRONMENT, findings)


def _room(
    facts: Facts, room: str, window: EnvWindow | None, refs: tuple[Evidence, ...], last: datetime | None
) -> Finding:
    cfg = facts.config.environment
    hours = num(cfg.window_h)
    if window is None or window.samples <= 0:
        return Finding(
            "unknown",
            f"機房 {room} 近 {hours} 小時無溫濕度樣本",
            f"room {room}: no temperature/humidity samples in the last {hours} h",
            refs,
        )
    rec = 100 * window.outside_recommended / window.samples
    allow = 100 * window.outside_allowable / window.samples
    worst_zh = []
    worst_en = []
    if window.worst_temp_c is not None:
        worst_zh.append(f"最高 {num(window.worst_temp_c)} °C")
        worst_en.append(f"{num(window.worst_temp_c)} °C")
    if window.worst_rh_pct is not None:
        worst_zh.append(f"最高 {num(window.worst_rh_pct)} %RH")
        worst_en.append(f"{num(window.worst_rh_pct)} % RH")
    since_zh = f"自 {when(window.since, facts.tz)} 起" if window.since else f"近 {hours} 小時"
    since_en = f"since {when(window.since, facts.tz)}" if window.since else f"in the last {hours} h"
    head_zh = f"機房 {room} {since_zh} {window.samples} 筆樣本" + (
        f"，{'、'.join(worst_zh)}" if worst_zh else ""
    )
    head_en = f"room {room}: {window.samples} samples {since_en}" + (
        f", worst {' / '.join(worst_en)}" if worst_en else ""
    )
    # The envelope's name only when the site chose another than ASHRAE's recommended one.
    named_zh = f"{cfg.recommended}，" if cfg.recommended != "recommended" else ""
    named_en = f"{cfg.recommended}, " if cfg.recommended != "recommended" else ""
    shares_zh = (
        f"{num(rec)} % 超出建議範圍（{named_zh}逾 {num(cfg.warn_outside_pct)} % 即警示），"
        f"{num(allow)} % 超出容許範圍 {cfg.allowable}"
    )
    shares_en = (
        f"{num(rec)} % outside recommended ({named_en}warn above {num(cfg.warn_outside_pct)} %), "
        f"{num(allow)} % outside allowable {cfg.allowable}"
    )
    status: Status = "pass"
    if window.outside_allowable > 0:
        status = "fail"
        shares_zh = f"{window.outside_allowable} 筆超出容許範圍 {cfg.allowable}；" + shares_zh
        shares_en = f"{window.outside_allowable} sample(s) outside allowable {cfg.allowable}; " + shares_en
    elif rec > cfg.warn_outside_pct:
        status = "warn"
    return Finding(status, f"{head_zh}；{shares_zh}", f"{head_en}; {shares_en}", refs, last)
