# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Assets: disposals complete (十二) and no rack used by a third party (十四)."""

from __future__ import annotations

from compliance.checks.common import Finding, board_line, in_period, listing, record_evidence, when
from compliance.facts import Facts
from compliance.items import DISPOSAL, NO_SUBLET
from compliance.kinds import Disposal, Rack, labels
from compliance.result import CheckResult

DISPOSAL_ZH = {name: zh for name, zh, _ in labels(Disposal)}
TENANT_ZH = {"own": "本公司", "futures_affiliate": "期貨商關係企業", "third_party": "第三方"}


def check_disposal(facts: Facts) -> CheckResult:
    """(十二) every disposal of the period has no gaps (Disposal.gaps); none in the period → pass."""
    days = facts.config.lookback_days
    disposals = sorted(
        (d for d in facts.of(Disposal) if in_period(facts, d.disposed_at)), key=lambda d: d.disposed_at
    )
    if not disposals:
        return board_line(
            DISPOSAL,
            [Finding("pass", f"近 {days} 天無設備報廢", f"no disposals in the period (last {days} days)")],
        )
    findings = []
    complete = []
    for d in disposals:
        gaps = list(dict.fromkeys(d.gaps()))  # verification can be named twice (missing, or 'none')
        if not gaps:
            complete.append(d)
            continue
        at = when(d.disposed_at, facts.tz)
        gaps_zh = listing([DISPOSAL_ZH[g] for g in gaps], zh=True)
        findings.append(
            Finding(
                "fail",
                f"財產 {d.asset_id}（{at} 報廢）紀錄不完整，缺：{gaps_zh}",
                f"disposal of asset {d.asset_id} ({at}) is incomplete, missing {listing(gaps, zh=False)}",
                (record_evidence(d, "incomplete"),),
                d.disposed_at,
            )
        )
    if complete:
        findings.append(
            Finding(
                "pass",
                f"近 {days} 天 {len(complete)} 筆報廢紀錄完整"
                "（核准、方式、工具、執行人、見證人、驗證、證明）",
                f"{len(complete)} disposal(s) in the last {days} days, each complete (approval, method, "
                "tool, operator, witness, verification, certificate)",
                tuple(record_evidence(d) for d in complete),
                complete[-1].disposed_at,
            )
        )
    return board_line(DISPOSAL, findings)


def check_no_sublet(facts: Facts) -> CheckResult:
    """(十四) racks in use now: a third party → fail; a futures affiliate needs segmentation and approval
    evidence; no rack record in use → unknown."""
    now = facts.now
    racks = sorted(
        (r for r in facts.of(Rack) if r.since <= now and (r.until is None or r.until > now)),
        key=lambda r: (r.rack_id, r.since),
    )
    if not racks:
        return board_line(
            NO_SUBLET,
            [
                Finding(
                    "unknown",
                    "尚無使用中之機櫃紀錄，無法確認未分租",
                    "no rack records in use now: no evidence that nothing is sub-let",
                )
            ],
        )
    findings = []
    fine = []
    for r in racks:
        where = f"{r.rack_id}（{r.room}）" if r.room else f"{r.rack_id} "
        where_en = f"{r.rack_id}" + (f" ({r.room})" if r.room else "")
        if r.tenant_type == "third_party":
            findings.append(
                Finding(
                    "fail",
                    f"機櫃 {where}由第三方 {r.tenant} 使用",
                    f"rack {where_en} is used by a third party, {r.tenant}",
                    (record_evidence(r, "third party"),),
                    r.since,
                )
            )
            continue
        if r.tenant_type == "futures_affiliate":
            missing = [n for n in ("segmentation_ref", "approval_ref") if not getattr(r, n)]
            if missing:
                zh = {"segmentation_ref": "網路區隔佐證", "approval_ref": "核准文件"}
                findings.append(
                    Finding(
                        "fail",
                        f"機櫃 {where}由期貨商關係企業 {r.tenant} 共用，"
                        f"但缺{listing([zh[m] for m in missing], zh=True)}",
                        f"rack {where_en} is shared with futures affiliate {r.tenant} without "
                        f"{listing(missing, zh=False)}",
                        (record_evidence(r, "affiliate without evidence"),),
                        r.since,
                    )
                )
                continue
        fine.append(r)
    if fine:
        detail_zh = listing([f"{r.rack_id} {TENANT_ZH[r.tenant_type]}" for r in fine], zh=True)
        detail_en = listing([f"{r.rack_id} {r.tenant_type}" for r in fine], zh=False)
        findings.append(
            Finding(
                "pass",
                f"使用中機櫃 {len(fine)} 座皆為本公司或具網路區隔之期貨商關係企業：{detail_zh}",
                f"{len(fine)} rack(s) in use, each the company's own or a segmented futures affiliate's: "
                f"{detail_en}",
                tuple(record_evidence(r) for r in fine),
                max(r.since for r in fine),
            )
        )
    return board_line(NO_SUBLET, findings)
