# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The pages' message catalogue: zh-TW (the default) and English, one dict; `?lang=en` switches and the
`rg_lang` cookie remembers. A key missing from the catalogue shows as itself (a bug to see, not a crash)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from starlette.requests import Request

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
COOKIE = "rg_lang"
HTML_LANG = {"zh": "zh-Hant-TW", "en": "en"}

# key → (zh-TW, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("roomguard 機房監控", "roomguard room monitor"),
    "nav.status": ("機房狀態", "Room status"),
    "nav.reviews": ("權限覆核", "Access reviews"),
    "nav.records": ("新增紀錄", "Record"),
    "nav.door": ("門口看板", "Door display"),
    "nav.api": ("API 文件", "API docs"),
    "nav.main": ("主選單", "Main menu"),
    "switch": ("English", "中文"),
    "switch.label": ("Switch to English", "切換為中文"),
    "logged_in": ("已登入", "Logged in as"),
    "logout": ("登出", "Log out"),
    "status.title": ("機房狀態", "Room status"),
    "status.taken": ("資料時間", "Data as of"),
    "status.broker_down": (
        "未連線至訊息中心，顯示之讀值可能過時",
        "Not connected to the broker: readings may be old",
    ),
    "rooms": ("機房與設備讀值", "Rooms and live readings"),
    "room": ("機房", "Room"),
    "device": ("設備", "Device"),
    "class": ("類別", "Class"),
    "location": ("位置", "Location"),
    "readings": ("讀值", "Readings"),
    "quality": ("品質", "Quality"),
    "age": ("資料年齡", "Age"),
    "no_devices": ("此機房無設備", "No devices in this room"),
    "q.good": ("正常", "good"),
    "q.stale": ("過時", "stale"),
    "q.partial": ("部分", "partial"),
    "q.comm_error": ("通訊錯誤", "communication error"),
    "q.timeout": ("逾時", "timeout"),
    "q.none": ("無資料", "no data"),
    "q.offline": ("離線", "offline"),
    "stale": ("資料過時", "STALE"),
    "no_data": ("尚無資料", "NO DATA"),
    "seconds_ago": ("{n} 秒前", "{n} s ago"),
    "minutes_ago": ("{n} 分鐘前", "{n} min ago"),
    "hours_ago": ("{n} 小時前", "{n} h ago"),
    "floor": ("平面配置（區域、機櫃、感測器）", "Floor view (zones, racks, sensors)"),
    "zone": ("區域", "Zone"),
    "rack": ("機櫃", "Rack"),
    "no_zone": ("未分區", "No zone"),
    "empty_rack": ("（無感測器）", "(no sensors)"),
    "alerts": ("未結告警", "Open alerts"),
    "no_alerts": ("目前無告警", "No open alerts"),
    "severity": ("嚴重度", "Severity"),
    "since": ("開始時間", "Since"),
    "message": ("訊息", "Message"),
    "forecast": ("趨勢預測", "Forecast"),
    "acked_by": ("確認人", "Acknowledged by"),
    "actions": ("處理", "Actions"),
    "sev.critical": ("嚴重", "critical"),
    "sev.warning": ("警告", "warning"),
    "sev.info": ("資訊", "info"),
    "suppressed": ("已抑制", "suppressed"),
    "ack": ("確認", "Acknowledge"),
    "ack.note": ("備註", "Note"),
    "not_acked": ("未確認", "not acknowledged"),
    "silence": ("靜音", "Silence"),
    "silence.for": ("靜音時間", "Silence for"),
    "silence.1h": ("1 小時", "1 hour"),
    "silence.4h": ("4 小時", "4 hours"),
    "silence.until": ("直到指定時間", "until a time"),
    "silence.until_at": ("直到（當地時間）", "Until (local time)"),
    "silence.reason": ("原因", "Reason"),
    "board": ("CC-16000 查核看板", "CC-16000 board"),
    "item": ("項目", "Item"),
    "status": ("狀態", "Status"),
    "reason": ("說明", "Reason"),
    "evidence": ("佐證", "Evidence"),
    "no_evidence": ("無", "none"),
    "st.pass": ("通過", "PASS"),
    "st.warn": ("注意", "WARN"),
    "st.fail": ("未通過", "FAIL"),
    "st.unknown": ("未知", "UNKNOWN"),
    "tests": ("測試：到期、逾期與最近", "Tests: due, overdue and recent"),
    "no_tests": ("無到期資料", "Nothing due"),
    "tests.recent": ("最近測試與檢查", "Recent tests and inspections"),
    "tests.none": ("期間內無測試紀錄", "No tests in the period"),
    "tests.at": ("時間", "When"),
    "tests.kind": ("類別", "Kind"),
    "kind.generator_test": ("發電機測試", "Generator test"),
    "kind.ups_test": ("UPS 測試", "UPS test"),
    "kind.inspection": ("檢查（消防、緊急照明）", "Inspection (fire, emergency lighting)"),
    "kind.drill": ("演練", "Drill"),
    "due": ("期限", "Due"),
    "due.overdue": ("已逾期", "OVERDUE"),
    "due.due_soon": ("即將到期", "due soon"),
    "due.ok": ("正常", "on schedule"),
    "due.unknown": ("未知", "unknown"),
    "duty": ("值班人員", "Duty operator"),
    "duty.now": ("目前值班", "On duty now"),
    "duty.next": ("下一班", "Next shift"),
    "duty.none": ("未排班", "Nobody posted"),
    "phone": ("電話", "Phone"),
    "until": ("至", "until"),
    "from": ("自", "from"),
    "door.state": ("機房狀態", "Room state"),
    "door.ok": ("正常", "OK"),
    "door.alerting": ("告警中", "ALERTING"),
    "door.unknown": ("狀態不明：無即時資料", "UNKNOWN: no live data"),
    "door.worst_temp": ("最高溫度", "Highest temperature"),
    "door.worst_rh": ("最高濕度", "Highest humidity"),
    "door.updated": ("更新時間", "Updated"),
    "door.rooms": ("各機房門口看板", "Door displays"),
    "records.new": ("新增紀錄", "New record"),
    "records.save": ("儲存", "Save"),
    "records.required": ("必填", "required"),
    "records.kinds": ("可新增之紀錄", "Records you can add"),
    "records.json": ("其他紀錄請用 JSON API", "Other records: the JSON API"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "unset": ("（未填）", "(not set)"),
    "reviews": ("權限覆核", "Access reviews"),
    "no_reviews": ("尚無覆核", "No reviews yet"),
    "review": ("覆核", "Review"),
    "quarter": ("季別", "Quarter"),
    "progress": ("已覆核", "Decided"),
    "review.open": ("進行中", "open"),
    "review.signed": ("已簽核", "signed off"),
    "holder": ("持有人", "Holder"),
    "grant": ("權限", "Grant"),
    "zones": ("區域", "Zones"),
    "flags": ("旗標", "Flags"),
    "change": ("異動", "Change"),
    "decision": ("決定", "Decision"),
    "decided_by": ("覆核人", "Decided by"),
    "undecided": ("未覆核", "undecided"),
    "decide": ("送出決定", "Decide"),
    "dec.keep": ("維持", "keep"),
    "dec.revoke": ("撤銷", "revoke"),
    "dec.change": ("修改", "change"),
    "dec.to_confirm": ("待確認", "to confirm"),
    "sign_off": ("簽核", "Sign off"),
    "sign_off.note": ("簽核備註", "Sign-off note"),
    "signed_by": ("簽核人", "Signed off by"),
    "sod": (
        "職責分離：設定本期權限之門禁管理者不得簽核本覆核，請由其他覆核人簽核。",
        "Separation of duties: whoever implemented grants under review may not sign it off; "
        "another reviewer must.",
    ),
    "refused": ("無法執行", "Refused"),
    "flash.acked": ("已確認告警", "Alert acknowledged"),
    "flash.silenced": ("已靜音告警", "Alert silenced"),
    "flash.recorded": ("已儲存紀錄", "Record saved"),
    "flash.decided": ("已記錄覆核決定", "Decision recorded"),
    "flash.signed": ("覆核已簽核", "Review signed off"),
    "err.reason": ("請填寫靜音原因", "Give a reason for the silence"),
    "err.until": ("請填寫晚於現在的結束時間", "Give an end time later than now"),
    "err.duration": ("靜音時間須為 1h、4h 或 until", "Silence for must be 1h, 4h or until"),
    "err.title": ("錯誤", "Error"),
    "err.not_found": ("找不到", "Not found"),
    "err.forbidden": ("權限不足", "Not allowed"),
    "err.no_site": ("未載入場域設定", "No site file loaded"),
    "back": ("回到機房狀態", "Back to the room status"),
    "nav.audit": ("稽核軌跡", "Audit log"),
    "audit": ("稽核軌跡", "Audit log"),
    "audit.about": (
        "每一筆寫入（紀錄、告警確認與靜音、覆核簽核、登入與失敗、使用者異動）皆依序以雜湊鏈記錄，最新在前。",
        "Every write (records, alert acks and silences, review sign-offs, logins and failures, user "
        "changes) in a hash chain, newest first.",
    ),
    "audit.seq": ("序號", "No."),
    "audit.at": ("時間", "Time"),
    "audit.actor": ("操作者", "Who"),
    "audit.source": ("來源", "From"),
    "audit.action": ("動作", "Action"),
    "audit.entity": ("對象", "Record"),
    "audit.change": ("變更 (前 → 後)", "Change (before → after)"),
    "audit.note": ("備註", "Note"),
    "audit.action_prefix": ("動作開頭為", "Action starts with"),
    "audit.filter": ("篩選", "Filter"),
    "audit.verify": ("驗證雜湊鏈", "Verify the hash chain"),
    "audit.chain_ok": ("雜湊鏈完整", "The hash chain is intact"),
    "audit.chain_counts": ("共 {entries} 筆，最新第 {seq} 筆", "{entries} entries, the newest no. {seq}"),
    "audit.chain_bad": (
        "雜湊鏈有誤：稽核軌跡遭修改或刪除",
        "The hash chain is broken: entries were edited or deleted",
    ),
    "audit.export": ("匯出全部", "Export all"),
    "audit.export_note": ("匯出本身亦記入稽核軌跡", "the export itself is audited"),
    "audit.caption": ("本頁 {n} 筆", "{n} entries on this page"),
    "audit.none": ("沒有符合的紀錄", "No matching entries"),
    "audit.pages": ("分頁", "Pages"),
    "audit.newest": ("最新", "Newest"),
    "audit.older": ("較舊 →", "Older →"),
}


def translate(lang: str, key: str, **values: object) -> str:
    """The text of `key` in `lang` with `{name}` filled from `values`."""
    zh, en = MESSAGES.get(key, (key, key))
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def translator(lang: str) -> Callable[..., str]:
    """`translate` bound to `lang` (the templates' `t`)."""
    return lambda key, **values: translate(lang, key, **values)


def request_lang(request: Request) -> Lang:
    """The page language: `?lang=` first, then the `rg_lang` cookie, else zh-TW."""
    for given in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if given in LANGS:
            return "en" if given == "en" else "zh"
    return DEFAULT
