# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Fire protection and emergency lighting (一): inspections on their cadence, smoke and leak contacts now."""

from __future__ import annotations

from datetime import timedelta

from compliance.checks.cadence import due_after, every
from compliance.checks.common import (
    Finding,
    board_line,
    happened,
    listing,
    num,
    record_evidence,
    silent_finding,
    telemetry,
    when,
)
from compliance.facts import Facts
from compliance.items import EMERGENCY_LIGHTING, FIRE
from compliance.kinds import Inspection
from compliance.result import CheckResult, Evidence
from siteconfig.compliance_config import Cadence

# NFPA 101 §7.9.3.1.1: the monthly functional test runs the emergency lighting for at least 30 s.
MIN_LIGHTING_TEST_S = 30.0
# Contact metrics (catalog.yaml, class contact) that are alarms of item (一): fire and water.
CONTACT_ALARMS = {"smoke": ("煙霧", "smoke"), "leak": ("漏水", "water leak")}


def check_fire(facts: Facts) -> CheckResult:
    """(一) fire-system inspections on cadence and passed; no smoke or leak contact active now."""
    findings = _inspections(
        facts, "fire", facts.config.fire_inspection, "消防安全設備檢修", "fire inspection"
    )
    findings.extend(_contacts(facts))
    return board_line(FIRE, findings)


def check_emergency_lighting(facts: Facts) -> CheckResult:
    """(一) emergency-lighting tests of at least 30 s on cadence and passed."""
    cadence = facts.config.emergency_lighting
    return board_line(
        EMERGENCY_LIGHTING,
        _inspections(facts, "emergency_lighting", cadence, "緊急照明測試", "emergency-lighting test"),
    )


def _counts(record: Inspection) -> bool:
    """A passed inspection; an emergency-lighting test only when it lasted the 30 s (or gave no time)."""
    if record.result != "pass":
        return False
    short = record.duration_s is not None and record.duration_s < MIN_LIGHTING_TEST_S
    return not (record.system == "emergency_lighting" and short)


def _inspections(facts: Facts, system: str, cadence: Cadence, zh: str, en: str) -> list[Finding]:
    records = happened(facts, (r for r in facts.of(Inspection) if r.system == system))
    if not records:
        zh_every, en_every = every(cadence)
        return [
            Finding(
                "unknown",
                f"尚無{zh}紀錄（應{zh_every}一次）",
                f"no {en} recorded yet (due {en_every})",
            )
        ]
    counted = [r for r in records if _counts(r)]
    last = records[-1]
    if last.result == "fail":
        # Still due from the last pass: the failed one does not restart the cadence.
        last_pass = counted[-1].inspected_at if counted else None
        next_due = last_pass + timedelta(days=cadence.every_days) if last_pass else None
        what = f"：{last.findings}" if last.findings else ""
        what_en = f": {last.findings}" if last.findings else ""
        return [
            Finding(
                "fail",
                f"最近一次{zh}（{when(last.inspected_at, facts.tz)}，{last.inspector}）未通過{what}，"
                "其後尚無通過之紀錄",
                f"the last {en} ({when(last.inspected_at, facts.tz)}, {last.inspector}) failed{what_en}, "
                "with no passing one since",
                (record_evidence(last, "fail"),),
                last.inspected_at,
                next_due,
            )
        ]
    if not counted:
        at = when(last.inspected_at, facts.tz)
        return [
            Finding(
                "fail",
                f"{zh}之測試時間皆未達 {num(MIN_LIGHTING_TEST_S)} 秒"
                f"（最近一次 {at}，{num(last.duration_s or 0)} 秒）",
                f"no {en} lasted the {num(MIN_LIGHTING_TEST_S)} s (last {at}, {num(last.duration_s or 0)} s)",
                (record_evidence(last, "too short"),),
                last.inspected_at,
            )
        ]
    good = counted[-1]
    due = due_after(good.inspected_at, cadence, facts.now, facts.tz)
    by = f"{good.inspector}" + (f"，{good.licence}" if good.licence else "")
    by_en = f"{good.inspector}" + (f", {good.licence}" if good.licence else "")
    note_zh = note_en = ""
    evidence = [record_evidence(good, "pass")]
    if last is not good:  # a later pass too short to count
        at, secs = when(last.inspected_at, facts.tz), num(last.duration_s or 0)
        note_zh = f"；{at} 之測試僅 {secs} 秒，不予計入"
        note_en = f"; the test of {at} lasted {secs} s, not counted"
        evidence.append(record_evidence(last, "too short"))
    return [
        Finding(
            due.status,
            f"最近一次{zh}於 {when(good.inspected_at, facts.tz)} 通過（{by}），{due.zh}{note_zh}",
            f"last {en} passed {when(good.inspected_at, facts.tz)} ({by_en}), {due.en}{note_en}",
            tuple(evidence),
            good.inspected_at,
            due.next_due,
        )
    ]


def _contacts(facts: Facts) -> list[Finding]:
    """Smoke and leak contacts: active now → fail naming the device; silent → unknown."""
    out: list[Finding] = []
    clear: list[str] = []
    evidence: list[Evidence] = []
    for device in facts.devices_of("contact"):
        how, state = telemetry(facts, device)
        if how != "ok" or state is None:
            out.append(silent_finding(facts, device, how, state))
            continue
        seen = [m for m in CONTACT_ALARMS if m in state.metrics]
        if not seen:
            out.append(
                Finding(
                    "unknown",
                    f"{device.id}（{device.room}）未回報煙霧或漏水狀態",
                    f"{device.id} ({device.room}) reports neither smoke nor leak",
                    (Evidence("config", f"device/{device.id}"),),
                )
            )
            continue
        active = [m for m in seen if state.metrics[m] is True]
        refs = tuple(
            Evidence("reading", f"{device.id}/{m}", state.last_seen, str(state.metrics[m])) for m in seen
        )
        if active:
            names_zh = listing([CONTACT_ALARMS[m][0] for m in active], zh=True)
            names_en = listing([CONTACT_ALARMS[m][1] for m in active], zh=False)
            out.append(
                Finding(
                    "fail",
                    f"{device.id}（{device.room}）目前偵測到{names_zh}",
                    f"{device.id} ({device.room}) detects {names_en} now",
                    refs,
                    state.last_seen,
                )
            )
        else:
            clear.append(device.id)
            evidence.extend(refs)
    if clear:
        out.append(
            Finding(
                "pass",
                f"煙霧及漏水偵測正常（{listing(clear, zh=True)}）",
                f"no smoke or leak detected ({listing(clear, zh=False)})",
                tuple(evidence),
            )
        )
    return out
