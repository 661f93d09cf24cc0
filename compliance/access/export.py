# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The auditor's export of a quarterly access-rights review: XLSX, CSV, PDF and a SHA-256 manifest.

Tables (their names are also the CSV file names), in the workbook's order:

* ``A_cover`` 封面與簽核: one row: report, company, site, period, snapshot, sources, control references,
  who prepared, reviewed and approved it, the attestation;
* ``B_summary`` 摘要: metrics: active grants, changes, holders by type, coverage, flags, exceptions;
* ``C_detail`` 權限明細: one row per grant of the review, then one per grant removed since the previous
  review; credential ids masked but for their last 4 characters;
* ``D_exceptions`` 例外與改善: one row per (grant, flag) and per ACS change without an approved ticket,
  with a risk rating (`RISK`), an owner, a due date, the action and a status; its row_ref is the row
  number in sheet C, or 'E-n' for row n of sheet E;
* ``E_change_log`` 異動軌跡: the ACS changes of the period (`ChangeLogEntry`);
* ``F_reconciliation`` 對帳: leavers and vendors beside their grants (`reconcile`), then the caller's rows.

Columns of the reference layout the review holds no data for (role, credential type, approval date,
justification) are left out; the remediation and verification columns stay, empty, for the team to fill
in once an ACS export shows the change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from compliance.access.flags import FLAG_CODES, Flag
from compliance.access.model import ALL_ZONES, HOLDER_TYPES, Grant
from compliance.access.review import CHANGE_ZH, DECISION_ZH, Review, ReviewLine
from compliance.export import Column, PdfReport, Table, cell_text, write_csv, write_manifest, write_workbook

Risk = Literal["high", "medium", "low"]
# Fixed ratings: high = someone who should not can get in now (a leaver, an expired grant, a card in two
# hands, a vendor alone in the room); medium = a gap in approval or paperwork; low = hygiene (unused
# grants, entries outside the schedule) that asks for a look, not for an urgent fix.
RISK: dict[str, Risk] = {
    "LEAVER_ACTIVE": "high",
    "EXPIRED_ACTIVE": "high",
    "SHARED_CARD": "high",
    "UNESCORTED_VENDOR": "high",
    "NO_APPROVAL": "medium",
    "SELF_APPROVED": "medium",
    "VENDOR_NO_WORK_ORDER": "medium",
    "UNMATCHED_CHANGE": "medium",  # an ACS change without an approved ticket: an approval gap
    "DORMANT_90D": "low",
    "AFTER_HOURS": "low",
}
DUE_DAYS: dict[Risk, int] = {"high": 14, "medium": 30, "low": 30}
UNMATCHED = "UNMATCHED_CHANGE"
TITLE_ZH = "機房門禁權限季度覆核報告"
TITLE_EN = "Quarterly machine-room access-rights review"
CONTROL_REFS = "CC-16000 (一)(十三); 資通安全檢查機制 點6; ISO/IEC 27001 A.5.18 / A.7.2"
ATTESTATION_ZH = "本期所有有效門禁權限均已逐筆覆核；例外事項均列於工作表 D，並依期限改善。"
ATTESTATION_EN = (
    "Every access grant in force in the period was reviewed one by one; the exceptions are listed in "
    "sheet D with their remediation and due dates."
)
MANIFEST_NOTE = (
    "見 MANIFEST.sha256（各檔之 SHA-256，含工作表 B–E 之 csv/*.csv） / see MANIFEST.sha256: the SHA-256 "
    "of every file, sheets B-E as csv/*.csv"
)
CSV_DIR = "csv"
HOLDER_ZH = {
    "employee": "員工",
    "contractor": "約聘",
    "vendor": "廠商",
    "futures_affiliate": "期貨子公司",
    "other": "其他",
    "unknown": "不明",  # a grant whose holder is in neither the HR feed nor the vendor list
}
KIND_ZH = {"leaver": "離職", "vendor": "廠商"}
ROLE_ZH = {"reviewer": "覆核", "approver": "核准"}
# Tabs are named after title_zh, so it carries the English too: an auditor without Chinese finds a sheet.
SHEETS = {
    "A_cover": ("A 封面與簽核 Cover and sign-off", "Cover and sign-off"),
    "B_summary": ("B 摘要 Summary metrics", "Summary metrics"),
    "C_detail": ("C 權限明細 Access-rights detail", "Access-rights detail"),
    "D_exceptions": ("D 例外與改善 Exceptions register", "Exceptions and remediation register"),
    "E_change_log": ("E 異動軌跡 ACS change log", "ACS change log"),
    "F_reconciliation": ("F 對帳 Reconciliations", "Reconciliations"),
}


@dataclass(frozen=True, slots=True)
class ChangeLogEntry:
    """One change in the ACS audit trail (sheet E); one without an approved ticket is also a sheet D row."""

    event_at: datetime
    operator: str
    action: str  # grant / revoke / modify / schedule change / door config change
    holder_id: str
    credential_id: str
    zone: str
    before: str = ""
    after: str = ""
    ticket: str = ""
    matched: bool = False  # unmatched until shown otherwise: a forgotten value must not hide an exception


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One row of sheet F: an HR or vendor-list fact beside the grant it should have ended or covered."""

    kind: str  # 'leaver', 'vendor', or the caller's own ('mover', 'contract'...)
    holder_id: str
    event: str
    event_at: datetime | None = None
    grant_id: str = ""
    grant_valid_to: datetime | None = None
    lag_hours: float | None = None
    reference: str = ""  # work order, contract or HR ticket
    note: str = ""


def mask_credential(credential_id: str) -> str:
    """'****1234': only the last 4 characters show (an id of 4 or fewer shows none)."""
    if not credential_id:
        return ""
    return "****" + (credential_id[-4:] if len(credential_id) > 4 else "")


def reconcile(review: Review) -> list[Reconciliation]:
    """Sheet F rows the review gives: each leaver's grants with the revocation lag, each vendor's grants."""
    snap = review.snapshot_at
    out: list[Reconciliation] = []
    for ln in review.lines:
        h, g = ln.holder, ln.grant
        if h is None or h.left_at is None or h.left_at > snap:
            continue
        ended = g.valid_to if g.valid_to is not None and g.valid_to <= snap else None
        # Still in force at the snapshot: the lag so far, so an open case shows how long it has run.
        lag = max(0.0, ((ended or snap) - h.left_at).total_seconds() / 3600)
        note = "" if ended else "快照時仍有效 still in force at the snapshot"
        out.append(Reconciliation("leaver", h.person_id, "離職 left", h.left_at, g.grant_id, g.valid_to,
                                  round(lag, 1), note=note))  # fmt: skip
    for ln in review.lines:
        h, g = ln.holder, ln.grant
        if h is None or h.holder_type != "vendor":
            continue
        state = "有效 in force" if g.valid_at(snap) else "已終止 ended"
        note = state if g.work_order.strip() else f"無工單 no work order; {state}"
        event = f"廠商 vendor {h.org_unit}".strip()
        out.append(Reconciliation("vendor", h.person_id, event, None, g.grant_id, g.valid_to, None,
                                  g.work_order, note))  # fmt: skip
    return out


def review_tables(
    review: Review,
    *,
    site_name: str,
    company: str,
    tz: tzinfo,
    change_log: Sequence[ChangeLogEntry] = (),
    reconciliations: Sequence[Reconciliation] = (),
) -> list[Table]:
    """Sheets A-F of the review; F holds `reconcile(review)` and then `reconciliations`."""
    names = {ln.grant.person_id: ln.holder.name for ln in review.lines if ln.holder is not None}
    log = sorted(change_log, key=lambda e: e.event_at)  # stable: same-time changes keep their order
    recs = [*reconcile(review), *reconciliations]
    exceptions = _exceptions(review, log, names)
    return [
        _table("A_cover", COVER_COLUMNS, [_cover(review, site_name=site_name, company=company, tz=tz)]),
        _table("B_summary", SUMMARY_COLUMNS, _summary(review, exceptions, recs)),
        _table("C_detail", DETAIL_COLUMNS, _detail(review, tz)),
        _table("D_exceptions", EXCEPTION_COLUMNS, exceptions),
        _table("E_change_log", CHANGE_COLUMNS, _change_rows(log, names)),
        _table("F_reconciliation", RECONCILIATION_COLUMNS, _reconciliation_rows(recs, names)),
    ]


def write_review_export(
    review: Review,
    folder: Path,
    *,
    site_name: str,
    company: str,
    tz: tzinfo,
    change_log: Sequence[ChangeLogEntry] = (),
    reconciliations: Sequence[Reconciliation] = (),
    generated_at: datetime | None = None,
) -> list[Path]:
    """Write the XLSX, csv/<table>.csv, the PDF and MANIFEST.sha256 into `folder`; the files written.

    The same review and arguments give the same bytes: without `generated_at` the documents are stamped
    with the review's own last time (snapshot, decision or sign-off), not with the clock.
    """
    tables = review_tables(review, site_name=site_name, company=company, tz=tz, change_log=change_log,
                           reconciliations=reconciliations)  # fmt: skip
    when = generated_at or _last_time(review)
    stem = f"access-review-{review.review_id}"
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_workbook(folder / f"{stem}.xlsx", tables, tz, timestamp=when)]
    files += [write_csv(folder / CSV_DIR / f"{t.name}.csv", t, tz) for t in tables]
    report = _report(review, {t.name: t for t in tables}, site_name=site_name, tz=tz, generated_at=when)
    files.append(report.build(folder / f"{stem}.pdf"))
    # Over the files written only: anything else in the folder is not part of the export and shows up
    # in verify_manifest as an extra file.
    files.append(write_manifest(folder, files))
    return files


# -- columns

COVER_COLUMNS = (
    Column("report_id", "報告編號", "Report ID"),
    Column("company", "公司/分公司", "Company / branch"),
    Column("site_id", "機房代號", "Site ID"),
    Column("site_name", "機房", "Site"),
    Column("quarter", "季度", "Quarter"),
    Column("period_start", "覆核期間起", "Period start"),
    Column("period_end", "覆核期間迄", "Period end (last day)"),
    Column("snapshot_at", "權限快照時間", "Snapshot at"),
    Column("data_sources", "資料來源", "Data sources", width=50),
    Column("control_refs", "控制依據", "Control references", width=50),
    Column("prepared_by", "編製人", "Prepared by"),
    Column("reviewed_by", "覆核人", "Reviewed by"),
    Column("reviewed_at", "覆核時間", "Reviewed at"),
    Column("approved_by", "核准人", "Approved by"),
    Column("approved_at", "核准時間", "Approved at"),
    Column("status", "簽核狀態", "Status"),
    Column("previous_review_id", "前次覆核", "Previous review"),
    Column("attestation_zh", "聲明", "Attestation (zh)", width=50),
    Column("attestation_en", "聲明（英文）", "Attestation", width=50),
    Column("manifest_sha256", "雜湊值", "manifest_sha256", width=50),
)
SUMMARY_COLUMNS = (
    Column("metric", "指標代碼", "Metric"),
    Column("label", "指標", "Description", width=40),
    Column("value", "數值", "Value"),
    Column("note", "說明", "Note", width=40),
)
DETAIL_COLUMNS = (
    Column("row_no", "序號", "Row"),
    Column("holder_id", "持有人編號", "Holder ID"),
    Column("holder_name", "姓名", "Name"),
    Column("holder_type", "身分別", "Holder type"),
    Column("org_unit", "單位/公司", "Department or company"),
    Column("hr_status", "人事狀態", "HR status"),
    Column("hr_status_date", "人事狀態日期", "HR status date"),
    Column("grant_id", "權限編號", "Grant ID"),
    Column("credential_id", "卡號/憑證", "Credential (masked)"),
    Column("zones", "門區", "Zones"),
    Column("schedule", "時段", "Schedule"),
    Column("granted_at", "授權日", "Granted at"),
    Column("request_ticket", "申請單號", "Request ticket"),
    Column("requester", "申請人", "Requester"),
    Column("approver", "核准人", "Approver"),
    Column("implemented_by", "設定人", "Implemented by"),
    Column("work_order", "工單", "Work order"),
    Column("expires_at", "到期日", "Expires at"),
    Column("last_used_at", "最近使用", "Last used at"),
    Column("entries_in_period", "本期進出次數", "Entries in period"),
    Column("change_type", "本期異動", "Change in period"),
    Column("change_at", "異動時間", "Changed at"),
    Column("before_after", "異動前/後", "Before → after", width=50),
    Column("flags", "異常旗標", "Flags"),
    Column("flag_details", "旗標說明", "Flag reasons and evidence", width=60),
    Column("decision", "覆核結論", "Reviewer decision"),
    Column("decision_reason", "覆核理由", "Decision reason", width=40),
    Column("reviewer", "覆核人", "Reviewer"),
    Column("reviewed_at", "覆核時間", "Reviewed at"),
    Column("remediation_action", "處理措施", "Remediation action", width=40),
    Column("remediation_ticket", "處理單號", "Remediation ticket"),
    Column("remediated_at", "完成時間", "Remediated at"),
    Column("verified_by", "驗證人", "Verified by"),
    Column("comment", "備註", "Comment", width=40),
)
EXCEPTION_COLUMNS = (
    Column("exception_id", "例外編號", "Exception ID"),
    Column("row_ref", "明細序號", "Row ref"),
    Column("holder_id", "持有人編號", "Holder ID"),
    Column("holder_name", "姓名", "Name"),
    Column("flag", "異常旗標", "Flag"),
    Column("risk_rating", "風險等級", "Risk rating"),
    Column("description", "說明", "Description", width=60),
    Column("detected_at", "發現時間", "Detected at"),
    Column("owner", "負責人", "Owner"),
    Column("due_date", "改善期限", "Due date"),
    Column("action", "改善措施", "Action", width=40),
    Column("closed_at", "結案時間", "Closed at"),
    Column("verified_by", "驗證人", "Verified by"),
    Column("status", "狀態", "Status"),
    Column("carried_over_from", "前期延續", "Carried over from"),
)
CHANGE_COLUMNS = (
    Column("row_no", "序號", "Row"),
    Column("event_at", "異動時間", "Event at"),
    Column("acs_operator", "門禁操作人", "ACS operator"),
    Column("action", "動作", "Action"),
    Column("target_holder_id", "持有人編號", "Holder ID"),
    Column("holder_name", "姓名", "Name"),
    Column("credential_id", "卡號/憑證", "Credential (masked)"),
    Column("zone", "門區", "Zone"),
    Column("before", "異動前", "Before", width=40),
    Column("after", "異動後", "After", width=40),
    Column("ticket", "申請單號", "Ticket"),
    Column("matched", "符合核准單", "Matched (Y/N)"),
)
RECONCILIATION_COLUMNS = (
    Column("kind", "對帳類別", "Reconciliation"),
    Column("holder_id", "持有人編號", "Holder ID"),
    Column("holder_name", "姓名", "Name"),
    Column("event", "事件", "Event"),
    Column("event_at", "事件時間", "Event at"),
    Column("grant_id", "權限編號", "Grant ID"),
    Column("grant_valid_to", "權限終止", "Grant valid to"),
    Column("lag_hours", "延遲時數", "Lag (hours)"),
    Column("reference", "工單/合約/單號", "Work order / contract / ticket"),
    Column("note", "備註", "Note", width=40),
)


def _table(name: str, columns: Sequence[Column], rows: list[dict[str, object]]) -> Table:
    zh, en = SHEETS[name]
    return Table(name, zh, en, columns, rows)


# -- rows


def _both(zh: str, en: str) -> str:
    return f"{zh} {en}"


def _period_days(review: Review, tz: tzinfo) -> tuple[date, date]:
    """First and last local day of [period_start, period_end)."""
    last = review.period_end.astimezone(tz) - timedelta(microseconds=1)
    return review.period_start.astimezone(tz).date(), last.date()


def _last_time(review: Review) -> datetime:
    times = [review.snapshot_at, *(s.at for s in review.sign_offs)]
    times += [ln.decided_at for ln in review.lines if ln.decided_at is not None]
    return max(times)


def _cover(review: Review, *, site_name: str, company: str, tz: tzinfo) -> dict[str, object]:
    first, last = _period_days(review, tz)
    snap = cell_text(review.snapshot_at, tz)
    reviewers = [s for s in review.sign_offs if s.role == "reviewer"]
    approvers = [s for s in review.sign_offs if s.role == "approver"]
    return {
        "report_id": review.review_id,
        "company": company,
        "site_id": review.site_id,
        "site_name": site_name,
        "quarter": review.quarter,
        "period_start": first,
        "period_end": last,
        "snapshot_at": review.snapshot_at,
        "data_sources": (
            f"門禁系統權限快照 ACS grant snapshot {snap}; 人事及廠商名冊 HR and vendor holders; "
            f"刷卡紀錄 badge events {first} – {last}; 前次覆核 previous review "
            f"{review.previous_review_id or '—'}"
        ),
        "control_refs": CONTROL_REFS,
        "prepared_by": review.prepared_by,
        "reviewed_by": [s.by for s in reviewers],
        "reviewed_at": [s.at for s in reviewers],
        "approved_by": [s.by for s in approvers],
        "approved_at": [s.at for s in approvers],
        "status": _both("已簽核", "signed") if review.status == "signed" else _both("未簽核", "open"),
        "previous_review_id": review.previous_review_id,
        "attestation_zh": ATTESTATION_ZH,
        "attestation_en": ATTESTATION_EN,
        "manifest_sha256": MANIFEST_NOTE,
    }


def _holder_type(holder_type: str | None) -> str:
    holder_type = holder_type or "unknown"
    return _both(HOLDER_ZH.get(holder_type, holder_type), holder_type)


def _terms(g: Grant, tz: tzinfo) -> str:
    # The same form as a line's `before` (review.py), so "before → after" compares like with like.
    until = g.valid_to.astimezone(tz).strftime("%Y-%m-%d") if g.valid_to else "—"
    return f"{','.join(g.zones)} | {g.schedule.text} | {g.valid_from.astimezone(tz):%Y-%m-%d}..{until}"


def _flag_text(f: Flag) -> str:
    return f"{f.reason_zh} / {f.reason_en}" + (f" ({'; '.join(f.evidence)})" if f.evidence else "")


def _decision(ln: ReviewLine) -> str:
    return _both(DECISION_ZH[ln.decision], ln.decision) if ln.decision else ""


def _remediation(ln: ReviewLine) -> str:
    if ln.decision == "revoke":
        return _both("撤銷權限", "revoke the grant")
    if ln.decision == "change":
        return f"修改權限 change the grant: {ln.reason}"
    return ""


def _grant_row(row_no: int, g: Grant) -> dict[str, object]:
    return {
        "row_no": row_no,
        "holder_id": g.person_id,
        "grant_id": g.grant_id,
        "credential_id": mask_credential(g.credential_id),
        "zones": ["全部 all" if z == ALL_ZONES else z for z in g.zones],
        "schedule": g.schedule.text,
        "granted_at": g.valid_from,
        "request_ticket": g.ticket,
        "requester": g.requester,
        "approver": g.approver,
        "implemented_by": g.implementer,
        "work_order": g.work_order,
        "expires_at": g.valid_to,
    }


def _detail(review: Review, tz: tzinfo) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    holders = {ln.grant.person_id: ln.holder for ln in review.lines if ln.holder is not None}
    for ln in review.lines:
        g, h = ln.grant, ln.holder
        row = _grant_row(ln.row_no, g)
        if h is not None:
            left = h.left_at is not None and h.left_at <= review.snapshot_at
            ended = (
                _both("合約終止", "contract ended") if h.holder_type == "vendor" else _both("離職", "left")
            )
            row |= {
                "holder_name": h.name,
                "org_unit": h.org_unit,
                "hr_status": ended if left else _both("在職", "active"),
                "hr_status_date": h.left_at,
            }
        row |= {
            "holder_type": _holder_type(h.holder_type if h else None),
            "last_used_at": ln.last_used_at,
            "entries_in_period": ln.entries_in_period,
            "change_type": _both(CHANGE_ZH[ln.change_type], ln.change_type),
            "change_at": {"added": g.valid_from, "revoked": g.valid_to}.get(ln.change_type),
            "before_after": f"{ln.before} → {_terms(g, tz)}" if ln.change_type == "modified" else "",
            "flags": [f.code for f in ln.flags],
            "flag_details": "\n".join(f"{f.code}: {_flag_text(f)}" for f in ln.flags),
            "decision": _decision(ln),
            "decision_reason": ln.reason,
            "reviewer": ln.decided_by,
            "reviewed_at": ln.decided_at,
            "remediation_action": _remediation(ln),
        }
        rows.append(row)
    # Grants of the previous review gone from this one: listed so the auditor sees where each went.
    for n, g in enumerate(review.removed, start=len(review.lines) + 1):
        h = holders.get(g.person_id)
        rows.append(
            _grant_row(n, g)
            | {
                "holder_name": h.name if h else "",
                "holder_type": _holder_type(h.holder_type if h else None),
                "change_type": _both("移除", "removed"),
                "change_at": g.valid_to,
                "comment": "前次覆核有, 本期已不在範圍 / in the previous review, out of this quarter's scope",
            }
        )
    return rows


def _exceptions(
    review: Review, log: Sequence[ChangeLogEntry], names: dict[str, str]
) -> list[dict[str, object]]:
    snap = review.snapshot_at
    rows: list[dict[str, object]] = []
    for ln in review.lines:
        accepted = ln.decision == "keep" and bool(ln.reason.strip())
        if ln.decision is None:
            action = _both("待覆核", "awaiting a decision")
        elif accepted:
            action = f"接受風險 risk accepted: {ln.reason}"
        else:
            action = f"{_decision(ln)}: {ln.reason}" if ln.reason else _decision(ln)
        for f in ln.flags:
            risk = RISK[f.code]
            rows.append(
                {
                    "exception_id": f"EX-{ln.row_no:04d}-{f.code}",
                    "row_ref": ln.row_no,
                    "holder_id": ln.grant.person_id,
                    "holder_name": names.get(ln.grant.person_id, ""),
                    "flag": f.code,
                    "risk_rating": risk,
                    "description": _flag_text(f),
                    "detected_at": snap,
                    "owner": ln.decided_by or review.prepared_by,
                    # An accepted risk is not remediated: nothing falls due.
                    "due_date": None if accepted else (snap + timedelta(days=DUE_DAYS[risk])).date(),
                    "action": action,
                    "status": "accepted" if accepted else "open",
                }
            )
    for n, e in enumerate(log, start=1):
        if e.matched:
            continue
        risk = RISK[UNMATCHED]
        rows.append(
            {
                "exception_id": f"EX-E{n:03d}-{UNMATCHED}",
                "row_ref": f"E-{n}",
                "holder_id": e.holder_id,
                "holder_name": names.get(e.holder_id, ""),
                "flag": UNMATCHED,
                "risk_rating": risk,
                "description": f"門禁異動無對應核准單 / ACS change without an approved ticket: {e.action} "
                f"{e.zone} ({e.operator}, {e.ticket or '—'})",
                "detected_at": snap,
                "owner": review.prepared_by,
                "due_date": (snap + timedelta(days=DUE_DAYS[risk])).date(),
                "action": _both("補核准單或回復異動", "get the ticket approved or undo the change"),
                "status": "open",
            }
        )
    return rows


def _change_rows(log: Sequence[ChangeLogEntry], names: dict[str, str]) -> list[dict[str, object]]:
    return [
        {
            "row_no": n,
            "event_at": e.event_at,
            "acs_operator": e.operator,
            "action": e.action,
            "target_holder_id": e.holder_id,
            "holder_name": names.get(e.holder_id, ""),
            "credential_id": mask_credential(e.credential_id),
            "zone": e.zone,
            "before": e.before,
            "after": e.after,
            "ticket": e.ticket,
            "matched": "Y" if e.matched else "N",
        }
        for n, e in enumerate(log, start=1)
    ]


def _reconciliation_rows(recs: Sequence[Reconciliation], names: dict[str, str]) -> list[dict[str, object]]:
    return [
        {
            "kind": _both(KIND_ZH[r.kind], r.kind) if r.kind in KIND_ZH else r.kind,
            "holder_id": r.holder_id,
            "holder_name": names.get(r.holder_id, ""),
            "event": r.event,
            "event_at": r.event_at,
            "grant_id": r.grant_id,
            "grant_valid_to": r.grant_valid_to,
            "lag_hours": r.lag_hours,
            "reference": r.reference,
            "note": r.note,
        }
        for r in recs
    ]


def _summary(
    review: Review, exceptions: Sequence[dict[str, object]], recs: Sequence[Reconciliation]
) -> list[dict[str, object]]:
    lines = review.lines
    flagged = {code: [ln for ln in lines if any(f.code == code for f in ln.flags)] for code in FLAG_CODES}
    vendors = [ln for ln in lines if ln.holder is not None and ln.holder.holder_type == "vendor"]
    people = {ln.grant.person_id: ln.holder.holder_type if ln.holder else "unknown" for ln in lines}
    by_type = Counter(people.values())
    changes = Counter(ln.change_type for ln in lines)
    reviewed = sum(ln.decision is not None for ln in lines)
    status = Counter(str(e["status"]) for e in exceptions)
    lags = [r.lag_hours for r in recs if r.kind == "leaver" and r.lag_hours is not None]
    types = [*HOLDER_TYPES, *(["unknown"] if by_type["unknown"] else [])]
    end = review.period_end
    metrics: list[tuple[str, str, object, str]] = [
        ("active_grants_start", "期初有效權限 active grants at the start",
         sum(ln.grant.valid_at(review.period_start) for ln in lines), ""),
        ("active_grants_end", "期末有效權限 active grants at the end",
         sum(ln.grant.valid_at(end) for ln in lines), ""),
        ("granted_in_period", "本期新增 granted in the period", changes["added"], ""),
        ("revoked_in_period", "本期撤銷 revoked in the period", changes["revoked"], ""),
        ("modified_in_period", "本期修改 modified in the period", changes["modified"], ""),
        ("removed_since_previous", "自前次覆核移除 removed since the previous review", len(review.removed),
         "列於工作表 C 末 / listed at the end of sheet C"),
        *((f"holders_{t}", f"持有人：{HOLDER_ZH[t]} holders: {t}", by_type[t], "人數 people") for t in types),
        ("reviewed_count", "已覆核 reviewed", reviewed, f"共 {len(lines)} 筆 of {len(lines)}"),
        ("review_coverage_pct", "覆核涵蓋率 % review coverage",
         round(100 * reviewed / len(lines), 1) if lines else None, "應為 100 % / must be 100 %"),
        *((f"flag_{c}", f"旗標 flag {c}", len(flagged[c]), "權限數 grants") for c in FLAG_CODES),
        ("exceptions_found", "例外事項 exceptions found", len(exceptions), "工作表 D / sheet D"),
        ("exceptions_open", "未結 open", status["open"], ""),
        ("exceptions_accepted", "接受風險 accepted", status["accepted"], "維持並說明理由 kept with a reason"),
        ("leaver_revocation_max_hours", "離職撤銷最長延遲（時） longest leaver revocation lag, hours",
         max(lags, default=None), "工作表 F / sheet F"),
        ("dormant_credentials", "閒置憑證 dormant credentials",
         len({ln.grant.credential_id for ln in flagged["DORMANT_90D"]}), "≥ 90 天未使用 no use in ≥ 90 days"),
        ("vendor_grants_active", "廠商有效權限 vendor grants active at the end",
         sum(ln.grant.valid_at(end) for ln in vendors), ""),
        ("vendor_grants_expired_not_revoked", "廠商到期未撤銷 vendor grants expired, not revoked",
         sum(bool({"LEAVER_ACTIVE", "EXPIRED_ACTIVE"} & {f.code for f in ln.flags}) for ln in vendors),
         "LEAVER_ACTIVE or EXPIRED_ACTIVE"),
        ("shared_cards", "共用卡 shared or generic cards",
         len({ln.grant.credential_id for ln in flagged["SHARED_CARD"]}), ""),
        ("after_hours_grants", "時段外進出 grants with entries outside their schedule",
         len(flagged["AFTER_HOURS"]), "次數見工作表 C 旗標說明 / counts in sheet C's flag reasons"),
        ("previous_review_id", "前次覆核 previous review", review.previous_review_id, ""),
    ]  # fmt: skip
    return [{"metric": k, "label": label, "value": v, "note": note} for k, label, v, note in metrics]


# -- PDF


def _pick(table: Table, widths: dict[str, int], rows: list[dict[str, object]] | None = None) -> Table:
    """Some of a table's columns (with widths as shares of the page) for the PDF; XLSX and CSV keep all."""
    by_key = {c.key: c for c in table.columns}
    columns = [replace(by_key[k], width=w) for k, w in widths.items()]
    return Table(table.name, table.title_zh, table.title_en, columns, table.rows if rows is None else rows)


def _report(
    review: Review, tables: dict[str, Table], *, site_name: str, tz: tzinfo, generated_at: datetime
) -> PdfReport:
    cover = tables["A_cover"]
    row = cover.rows[0]
    first, last = _period_days(review, tz)
    shown = {"site_name", "period_start", "period_end", "attestation_zh", "attestation_en", "manifest_sha256"}
    report = PdfReport(
        TITLE_ZH,
        TITLE_EN,
        site=f"{site_name} ({review.site_id})",
        period=f"{review.quarter}: {first} – {last}",
        generated_at=generated_at,
        tz=tz,
        details=[
            (f"{c.zh} {c.en}", cell_text(row.get(c.key), tz))
            for c in cover.columns
            if c.key not in shown and row.get(c.key) not in (None, "", [])
        ],
    )
    report.heading("封面與簽核", "Cover and sign-off")
    report.paragraph(f"{ATTESTATION_ZH}\n{ATTESTATION_EN}")
    for s in review.sign_offs:
        note = f" — {s.note}" if s.note else ""
        role = _both(ROLE_ZH[s.role], s.role) if s.role in ROLE_ZH else s.role
        report.paragraph(f"{role}: {s.by}, {cell_text(s.at, tz)}{note}")
    report.paragraph(MANIFEST_NOTE)
    report.sign_off(
        prepared_by=review.prepared_by,
        reviewed_by=cell_text(row.get("reviewed_by"), tz),
        approved_by=cell_text(row.get("approved_by"), tz),
    )

    report.page_break()
    report.heading("摘要", "Summary metrics")
    report.table(
        _pick(tables["B_summary"], {"metric": 18, "label": 24, "value": 8, "note": 20}), caption=False
    )

    report.page_break()
    report.heading("例外與改善", "Exceptions and remediation register")
    exceptions = {"exception_id": 22, "row_ref": 6, "holder_name": 8, "flag": 15, "risk_rating": 7,
                  "due_date": 10, "action": 21, "status": 8}  # fmt: skip
    report.table(_pick(tables["D_exceptions"], exceptions), caption=False)

    report.heading("異常權限明細", "Detail of the flagged grants")
    flagged = [r for r in tables["C_detail"].rows if r.get("flags")]
    detail = {"row_no": 4, "holder_id": 10, "holder_name": 8, "holder_type": 10, "credential_id": 10,
              "zones": 7, "expires_at": 10, "last_used_at": 10, "flag_details": 24,
              "decision": 11}  # fmt: skip
    report.table(_pick(tables["C_detail"], detail, flagged), caption=False)
    changes = tables["E_change_log"].rows
    unmatched = sum(r["matched"] == "N" for r in changes)
    report.paragraph(
        f"門禁異動 {len(changes)} 筆，其中 {unmatched} 筆無對應核准單（列入工作表 D）；對帳 "
        f"{len(tables['F_reconciliation'].rows)} 筆；全部明細見 XLSX 及 CSV。"
        f"{len(changes)} ACS changes, {unmatched} without an approved ticket (in sheet D); "
        f"{len(tables['F_reconciliation'].rows)} reconciliation rows; every row is in the XLSX and CSV."
    )
    return report
