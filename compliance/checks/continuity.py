# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Continuity (CC-20000): incident reviews closed in time (五), recovery drills on their cadence (六)."""

from __future__ import annotations

from datetime import timedelta

from compliance.checks.cadence import due_after, every
from compliance.checks.common import (
    Finding,
    board_line,
    happened,
    in_period,
    listing,
    record_evidence,
    span,
    when,
)
from compliance.facts import Facts
from compliance.items import DRILLS, INCIDENT_REVIEW
from compliance.kinds import Drill, Incident, labels, utc_key
from compliance.result import CheckResult, Evidence, Status, worst

INCIDENT_ZH = {name: zh for name, zh, _ in labels(Incident)}
# The compliance process opens a review within seconds of a critical alert (compliance.incidents); an hour
# covers a restart of that process before a missing review is worth a warning.
REVIEW_OPENS_WITHIN = timedelta(hours=1)
DRILL_RESULT_ZH = {"pass": "成功", "partial": "部分成功", "fail": "失敗"}


def check_incident_review(facts: Facts) -> CheckResult:
    """CC-20000 (五): open reviews past due → fail, open within due → warn, a critical alert with no review
    → warn, all closed → pass; no incident in the period → pass."""
    days = facts.config.lookback_days
    incidents = facts.of(Incident)
    open_ = sorted((i for i in incidents if i.closed_at is None), key=lambda i: i.due_at)
    closed = sorted(
        (i for i in incidents if i.closed_at is not None and in_period(facts, i.closed_at)),
        key=lambda i: i.closed_at or i.started_at,
    )
    findings = [_open(facts, i) for i in open_]
    findings.extend(_unreviewed(facts, incidents))
    if closed:
        last = closed[-1]
        findings.append(
            Finding(
                "pass",
                f"近 {days} 天 {len(closed)} 件異常事件已完成檢討（原因、矯正及預防措施）",
                f"{len(closed)} incident review(s) closed in the last {days} days with cause, corrective and "
                "preventive action",
                tuple(record_evidence(i, "closed") for i in closed),
                last.closed_at,
            )
        )
    if not findings:
        findings.append(
            Finding("pass", f"近 {days} 天無異常事件", f"no incidents in the period (last {days} days)")
        )
    return board_line(INCIDENT_REVIEW, findings)


def _open(facts: Facts, incident: Incident) -> Finding:
    missing = [n for n in Incident.CLOSE_NEEDS if not getattr(incident, n)]
    lacks_zh = f"，尚缺{listing([INCIDENT_ZH[n] for n in missing], zh=True)}" if missing else ""
    lacks_en = f", still without {listing(missing, zh=False)}" if missing else ""
    name_zh = f"異常事件 {incident.incident_id}（{incident.summary}，{when(incident.started_at, facts.tz)}）"
    name_en = f"incident {incident.incident_id} ({incident.summary}, {when(incident.started_at, facts.tz)})"
    due = when(incident.due_at, facts.tz)
    left = incident.due_at - facts.now
    zh_left, en_left = span(left)
    status: Status
    if left < timedelta(0):
        status = "fail"
        zh = f"{name_zh}檢討已逾期 {zh_left}（期限 {due}）{lacks_zh}"
        en = f"{name_en}: review overdue by {en_left} (due {due}){lacks_en}"
    elif left == timedelta(0):
        status = "warn"
        zh = f"{name_zh}檢討中，現在到期（{due}）{lacks_zh}"
        en = f"{name_en}: review open, due now ({due}){lacks_en}"
    else:
        status = "warn"
        zh = f"{name_zh}檢討中，期限 {due}（剩 {zh_left}）{lacks_zh}"
        en = f"{name_en}: review open, due {due} (in {en_left}){lacks_en}"
    return Finding(status, zh, en, (record_evidence(incident, "open"),), incident.started_at, incident.due_at)


def _unreviewed(facts: Facts, incidents: list[Incident]) -> list[Finding]:
    """Critical alerts of the reviewed classes without a review (an alert firing twice needs two)."""
    classes = set(facts.config.incidents.classes)
    reviewed = {(i.alert_id, utc_key(i.started_at)) for i in incidents if i.alert_id}
    out = []
    for a in sorted(facts.alerts, key=lambda a: a.started_at):
        if (
            a.severity == "critical"
            and a.device_class in classes
            and in_period(facts, a.started_at)
            and facts.now - a.started_at > REVIEW_OPENS_WITHIN
            and (a.id, utc_key(a.started_at)) not in reviewed
        ):
            at = when(a.started_at, facts.tz)
            out.append(
                Finding(
                    "warn",
                    f"重大告警 {a.id}（{a.rule}，{a.device}，{at}）尚無異常事件檢討",
                    f"critical alert {a.id} ({a.rule}, {a.device}, {at}) has no incident review",
                    (Evidence("alert", a.id, a.started_at, a.rule),),
                    a.started_at,
                )
            )
    return out


def check_drills(facts: Facts) -> CheckResult:
    """CC-20000 (六): the last drill within the cadence; a failed or partial one → warn; none → unknown."""
    cadence = facts.config.drills
    drills = happened(facts, facts.of(Drill))
    if not drills:
        zh, en = every(cadence)
        return board_line(
            DRILLS,
            [
                Finding(
                    "unknown",
                    f"尚無復原演練紀錄（應{zh}演練一次）",
                    f"no recovery drill recorded yet (due {en})",
                )
            ],
        )
    last = drills[-1]
    due = due_after(last.held_at, cadence, facts.now, facts.tz)
    result_status: Status = "pass" if last.result == "pass" else "warn"
    follow_zh = f"，缺失：{last.findings}" if last.findings and last.result != "pass" else ""
    follow_en = f", findings: {last.findings}" if last.findings and last.result != "pass" else ""
    at = when(last.held_at, facts.tz)
    return board_line(
        DRILLS,
        [
            Finding(
                worst([due.status, result_status]),
                f"最近一次復原演練 {last.drill_id}（{last.plan}：{last.scenario}）於 {at} 舉行，"
                f"結果{DRILL_RESULT_ZH[last.result]}{follow_zh}；{due.zh}",
                f"last recovery drill {last.drill_id} ({last.plan}: {last.scenario}) held {at}, result "
                f"{last.result}{follow_en}; {due.en}",
                (record_evidence(last, last.result),),
                last.held_at,
                due.next_due,
            )
        ],
    )
