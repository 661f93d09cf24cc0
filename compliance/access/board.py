# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The access-rights item of the CC-16000 board ((十三)) from the reviews: signed on cadence or not (pure).

The newest signed review dates the cadence (quarterly by default: `compliance.access_review`); overdue is
`fail`, due within `warn_days` (or now) is `warn`. A signed review whose revoke/change decisions are not
yet carried out in the grants (the grant still in force as it was) is `warn` too, naming them. No signed
review at all gives None: the check says `unknown` (no evidence), never `pass`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from compliance.access.model import Grant
from compliance.access.review import Review
from compliance.checks.cadence import due_after
from compliance.items import ACCESS_REVIEW
from compliance.result import CheckResult, Evidence
from siteconfig.compliance_config import Cadence


def access_review_result(
    reviews: Sequence[Review], grants: Sequence[Grant], cadence: Cadence, now: datetime, tz: ZoneInfo
) -> CheckResult | None:
    """The board line of item (十三) from the stored reviews and the grants now; None without a review."""
    signed = [r for r in reviews if r.status == "signed" and r.sign_offs]
    if not signed:
        return None
    last = max(signed, key=lambda r: r.sign_offs[-1].at)
    signed_at = last.sign_offs[-1].at
    due = due_after(signed_at, cadence, now, tz)
    by_id = {g.grant_id: g for g in grants}
    pending = [
        ln.grant.grant_id
        for ln in last.lines
        if ln.decision in ("revoke", "change")
        and (g := by_id.get(ln.grant.grant_id)) is not None
        and g == ln.grant
        and g.valid_at(now)
    ]
    flagged = sum(1 for ln in last.lines if ln.flags)
    day = signed_at.astimezone(tz).strftime("%Y-%m-%d")
    zh = (
        f"門禁權限覆核 {last.review_id} 已於 {day} 簽核（{len(last.lines)} 筆權限，{flagged} 筆異常），"
        f"{due.zh}"
    )
    en = (
        f"access review {last.review_id} signed off {day} ({len(last.lines)} grants, {flagged} flagged), "
        f"{due.en}"
    )
    status = due.status
    if pending:
        shown = ", ".join(pending[:5]) + (" …" if len(pending) > 5 else "")
        zh += f"；{len(pending)} 筆撤銷/修改決定尚未執行：{shown}"
        en += f"; {len(pending)} revoke/change decision(s) not carried out yet: {shown}"
        status = "fail" if status == "fail" else "warn"
    return CheckResult(
        item=ACCESS_REVIEW.key,
        status=status,
        reason_zh=zh,
        reason_en=en,
        evidence=(
            Evidence("access_review", last.review_id, signed_at, f"signed by {last.sign_offs[-1].by}"),
        ),
        last_evidence_at=signed_at,
        next_due=due.next_due,
    )
