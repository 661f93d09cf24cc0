# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Access control: the doors now and their alarms in the period (一), and the access-rights review (十三)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from compliance.checks.cadence import every
from compliance.checks.common import Finding, board_line, in_period, silent_finding, span, telemetry, when
from compliance.facts import AlertInfo, Facts
from compliance.items import ACCESS_REVIEW, DOORS
from compliance.kinds import Incident, utc_key
from compliance.result import CheckResult, Evidence, Status

# door_state (catalog.yaml, derived by the poller) in both languages.
DOOR_STATE_ZH = {"closed": "關閉", "open": "開啟", "forced_open": "遭強行開啟", "held_open": "開啟過久未關"}
DOOR_STATE_EN = {"closed": "closed", "open": "open", "forced_open": "forced open", "held_open": "held open"}
# The pack's door rules (door-forced, door-held-open) and any site rule named alike.
DOOR_RULE_WORDS = ("forced", "held")


def check_doors(facts: Facts) -> CheckResult:
    """(一) door controllers report, none is forced or held open, door alarms were acknowledged in time."""
    doors = facts.devices_of("door")
    findings: list[Finding] = []
    if not doors:
        findings.append(
            Finding(
                "unknown",
                "未設定門禁設備（door），無門禁管制之佐證",
                "no door (access-control) device configured: no evidence of access control",
                (Evidence("config", "devices/door"),),
            )
        )
    for door in doors:
        how, state = telemetry(facts, door)
        if how != "ok" or state is None:
            findings.append(silent_finding(facts, door, how, state))
            continue
        value = state.metrics.get("door_state")
        evidence = (Evidence("reading", f"{door.id}/door_state", state.last_seen, str(value)),)
        if not isinstance(value, str) or value not in DOOR_STATE_EN:
            findings.append(
                Finding(
                    "unknown",
                    f"門 {door.id}（{door.room}）狀態不明（{value}）",
                    f"door {door.id} ({door.room}) state is unknown ({value})",
                    evidence,
                    state.last_seen,
                )
            )
            continue
        zh, en = DOOR_STATE_ZH[value], DOOR_STATE_EN[value]
        status: Status = "warn" if value in ("forced_open", "held_open") else "pass"
        now = "目前" if status == "warn" else ""
        findings.append(
            Finding(
                status,
                f"門 {door.id}（{door.room}）{now}{zh}",
                f"door {door.id} ({door.room}) is {en}" + (" now" if status == "warn" else ""),
                evidence,
                state.last_seen,
            )
        )
    findings.extend(_alarm_findings(facts, quiet_is_evidence=bool(doors)))
    return board_line(DOORS, findings)


def _alarm_findings(facts: Facts, *, quiet_is_evidence: bool) -> list[Finding]:
    """Each door alarm of the period acknowledged within door_alarm_ack_minutes or reviewed as an incident."""
    limit = timedelta(minutes=facts.config.door_alarm_ack_minutes)
    limit_zh, limit_en = span(limit)
    # A closed incident review of that very firing excuses a late acknowledgement; an open one does not
    # (the compliance process opens one for every critical door alarm at once: being open proves nothing).
    reviewed = {(i.alert_id, utc_key(i.started_at)) for i in facts.of(Incident) if i.closed_at is not None}
    alarms = sorted(
        (
            a
            for a in facts.alerts
            if a.device_class == "door"
            and any(w in a.rule for w in DOOR_RULE_WORDS)
            and in_period(facts, a.started_at)
        ),
        key=lambda a: a.started_at,
    )
    out: list[Finding] = []
    good: list[AlertInfo] = []
    for a in alarms:
        deadline = a.started_at + limit
        ev = (Evidence("alert", a.id, a.started_at, a.rule),)
        name_zh = f"門禁告警 {a.id}（{a.rule}，{a.device}，{when(a.started_at, facts.tz)}）"
        name_en = f"door alarm {a.id} ({a.rule}, {a.device}, {when(a.started_at, facts.tz)})"
        if (a.id, utc_key(a.started_at)) in reviewed or (a.acked_at is not None and a.acked_at <= deadline):
            good.append(a)
        elif a.acked_at is not None:
            late_zh, late_en = span(a.acked_at - a.started_at)
            out.append(
                Finding(
                    "fail",
                    f"{name_zh}於 {late_zh}後才確認（上限 {limit_zh}），且無已結案之事件檢討",
                    f"{name_en} was acknowledged only after {late_en} (limit {limit_en}) and has no "
                    "closed incident review",
                    ev,
                    a.started_at,
                )
            )
        elif facts.now <= deadline:
            left_zh, left_en = span(deadline - facts.now)
            out.append(
                Finding(
                    "warn",
                    f"{name_zh}尚待確認（剩 {left_zh}）",
                    f"{name_en} awaits acknowledgement ({left_en} left)",
                    ev,
                    a.started_at,
                )
            )
        else:
            ago_zh, ago_en = span(facts.now - a.started_at)
            out.append(
                Finding(
                    "fail",
                    f"{name_zh}未於 {limit_zh}內確認（已過 {ago_zh}），且無已結案之事件檢討",
                    f"{name_en} was not acknowledged within {limit_en} ({ago_en} ago) and has no "
                    "closed incident review",
                    ev,
                    a.started_at,
                )
            )
    days = facts.config.lookback_days
    if good:
        out.append(
            Finding(
                "pass",
                f"近 {days} 天 {len(good)} 件門禁告警皆於 {limit_zh}內確認或已完成事件檢討",
                f"{len(good)} door alarm(s) in the last {days} days, each acknowledged within {limit_en} "
                "or closed as a reviewed incident",
                tuple(Evidence("alert", a.id, a.started_at, a.rule) for a in good),
                good[-1].started_at,
            )
        )
    elif not alarms and quiet_is_evidence:  # no alarm says something only when there are doors to raise one
        out.append(Finding("pass", f"近 {days} 天無門禁告警", f"no door alarm in the last {days} days"))
    return out


def check_access_review(facts: Facts) -> CheckResult:
    """(十三) the access-review module's result under this item's key; none recorded: unknown."""
    if facts.access_review is not None:
        return replace(facts.access_review, item=ACCESS_REVIEW.key)
    zh, en = every(facts.config.access_review)
    return board_line(
        ACCESS_REVIEW,
        [
            Finding(
                "unknown",
                f"尚無門禁權限審查紀錄（應{zh}審查一次，預設每季）",
                f"no access-rights review recorded yet (due {en}; quarterly by default)",
            )
        ],
    )
