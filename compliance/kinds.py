"""The record kinds people (and telemetry) keep for CC-16000, one pydantic model each.

A kind's model is its schema everywhere: `roomguard compliance record KIND`, `import KIND FILE`, the
database (validated JSON in `compliance_records`), the evidence pack's sheets (columns from the fields'
zh/en labels) and the checks. `ref` is the record's natural key: importing the same file twice finds
the same keys and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator


def field(zh: str, en: str, default: Any = ..., **kw: Any) -> Any:
    """A field with its Traditional Chinese label (sheet headers, import headers) and English one."""
    return Field(default, description=en, json_schema_extra={"zh": zh}, **kw)


class RecordModel(BaseModel):
    """Base of every kind: strict keys, natural key, main time, titles."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    KIND: ClassVar[str]
    ZH: ClassVar[str]
    EN: ClassVar[str]
    AT: ClassVar[str]  # the field that dates the record (periods select on it)
    UNTIL: ClassVar[str | None] = None

    @field_validator("*", mode="after")
    @classmethod
    def _in_utc_range(cls, value: Any) -> Any:
        # Times are stored in UTC: one at the edge of the calendar with an offset has no UTC value.
        if isinstance(value, datetime):
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError(
                    "超出範圍 out of range: before 0001-01-01 or after 9999-12-31 in UTC"
                ) from None
        return value

    def ref(self) -> str:
        """The natural key (unique per kind)."""
        raise NotImplementedError

    def record_at(self) -> Any:
        """When the record happened or starts."""
        return getattr(self, self.AT)

    def record_until(self) -> Any:
        """When it ended, if it has an end."""
        return getattr(self, self.UNTIL) if self.UNTIL else None


def utc_key(at: datetime) -> str:
    """A datetime as it appears in natural keys: UTC, whole seconds (the same instant, the same key)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _missing(model: BaseModel, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if getattr(model, n) in (None, "", [])]


class Asset(RecordModel):
    """An asset of the room (財產): what a disposal refers to."""

    KIND = "asset"
    ZH, EN, AT = "資產清冊", "Assets", "registered_at"

    asset_id: str = field("財產編號", "Asset (property) number", min_length=1)
    name: str = field("名稱", "Name", min_length=1)
    make: str | None = field("廠牌", "Make", None)
    model: str | None = field("型號", "Model", None)
    serial: str | None = field("序號", "Serial number", None)
    media: Literal["none", "hdd", "ssd", "tape", "flash", "other"] = field(
        "儲存媒體", "Storage media", "none"
    )
    location: str | None = field("位置", "Location (room / rack)", None)
    owner: str | None = field("保管人", "Custodian", None)
    registered_at: AwareDatetime = field("登錄時間", "Registered at")

    def ref(self) -> str:
        return self.asset_id


class Disposal(RecordModel):
    """A retirement and disposal (CC-16000 (十二), NIST SP 800-88 Appendix G fields)."""

    KIND = "disposal"
    ZH, EN, AT = "設備報廢", "Disposals", "disposed_at"
    REQUIRED_FOR_COMPLETE: ClassVar[tuple[str, ...]] = (
        "approval_ref",
        "method",
        "tool",
        "operator",
        "witness",
        "verification",
        "certificate_ref",
    )

    asset_id: str = field("財產編號", "Asset number", min_length=1)
    disposed_at: AwareDatetime = field("報廢時間", "Disposed at")
    approval_ref: str | None = field("報廢核准單號", "Disposal approval reference", None)
    method: Literal["overwrite", "degauss", "destroy"] | None = field(
        "處理方式", "Method: overwrite (clear/purge), degauss or destroy", None
    )
    tool: str | None = field("工具及版本", "Tool and version", None)
    operator: str | None = field("執行人", "Performed by", None)
    witness: str | None = field("見證人", "Witness", None)
    verification: Literal["full", "sampled", "none"] | None = field("驗證方式", "Verification", None)
    verified_by: str | None = field("驗證人", "Verified by", None)
    certificate_ref: str | None = field("銷毀證明編號", "Certificate of sanitization / destruction", None)
    third_party: str | None = field("委外銷毀廠商", "Third-party destroyer", None)
    nda_ref: str | None = field("保密合約編號", "Confidentiality (NDA) contract reference", None)
    destination: str | None = field("去向", "Destination (reuse, recycling, ...)", None)
    notes: str | None = field("備註", "Notes", None)

    def ref(self) -> str:
        return self.asset_id  # an asset is disposed of once

    def gaps(self) -> list[str]:
        """Fields still missing for a complete disposal record (a third party needs an NDA)."""
        out = _missing(self, self.REQUIRED_FOR_COMPLETE)
        if self.third_party and not self.nda_ref:
            out.append("nda_ref")
        if self.verification == "none":
            out.append("verification")
        return out


class Rack(RecordModel):
    """Who uses a rack (CC-16000 (十四): no sub-letting except a futures affiliate with segmentation)."""

    KIND = "rack"
    ZH, EN, AT = "機櫃使用", "Racks and tenants", "since"

    rack_id: str = field("機櫃編號", "Rack", min_length=1)
    room: str | None = field("機房", "Room", None)
    ownership: Literal["own", "leased", "colocation"] = field("機房權屬", "Own, leased or co-location", "own")
    tenant: str = field("使用者", "Tenant (company using the rack)", min_length=1)
    tenant_type: Literal["own", "futures_affiliate", "third_party"] = field(
        "使用者類別", "Own company, futures affiliate or third party"
    )
    segmentation_ref: str | None = field(
        "網路區隔佐證", "Network segmentation evidence (VLAN / firewall rules)", None
    )
    approval_ref: str | None = field("核准文件", "Approval document", None)
    since: AwareDatetime = field("起始", "Since")
    until: AwareDatetime | None = field("終止", "Until", None)

    UNTIL = "until"

    def ref(self) -> str:
        return f"{self.rack_id}@{utc_key(self.since)}"


class Person(RecordModel):
    """Someone who appears in records: duty operators, escorts, vendors' staff."""

    KIND = "person"
    ZH, EN, AT = "人員", "People", "since"

    person_id: str = field("人員編號", "Person id", min_length=1)
    name: str = field("姓名", "Name", min_length=1)
    organisation: str | None = field("單位/公司", "Department or company", None)
    person_type: Literal["employee", "contractor", "vendor", "futures_affiliate", "other"] = field(
        "身分別", "Employee, contractor, vendor, futures affiliate or other", "employee"
    )
    phone: str | None = field("電話", "Phone", None)
    since: AwareDatetime = field("起始", "Since")
    left_at: AwareDatetime | None = field("離職日", "Left at", None)

    def ref(self) -> str:
        return self.person_id


class DutyShift(RecordModel):
    """Who is the duty operator when (CC-16000 (七)1: posted at the room's door)."""

    KIND = "duty"
    ZH, EN, AT, UNTIL = "值班表", "Duty roster", "starts_at", "ends_at"

    operator: str = field("值班人員", "Duty operator", min_length=1)
    starts_at: AwareDatetime = field("開始", "Starts at")
    ends_at: AwareDatetime = field("結束", "Ends at")
    room: str | None = field("機房", "Room (all rooms if empty)", None)
    phone: str | None = field("聯絡電話", "Phone", None)
    approved_by: str | None = field("核定人", "Roster approved by", None)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def ref(self) -> str:
        return f"{self.room or '*'}@{utc_key(self.starts_at)}"


class VendorVisit(RecordModel):
    """A vendor's maintenance visit (CC-16000 (九)(十): escorted, with a work order; PCI DSS 9.3.4)."""

    KIND = "vendor_visit"
    ZH, EN, AT, UNTIL = "廠商進出", "Vendor visits", "in_at", "out_at"

    visit_id: str = field("登記編號", "Visit id", min_length=1)
    company: str = field("廠商", "Company", min_length=1)
    person: str = field("人員", "Visitor", min_length=1)
    id_checked: bool = field("已查驗證件", "Identity document checked", False)
    work_order: str | None = field("維護申請單號", "Work order / maintenance request", None)
    purpose: str | None = field("事由", "Purpose and systems touched", None)
    escort: str | None = field("陪同人員", "Escorting employee", None)
    approved_by: str | None = field("核准人", "Authorised by", None)
    room: str | None = field("機房", "Room", None)
    in_at: AwareDatetime = field("進入時間", "In at")
    out_at: AwareDatetime | None = field("離開時間", "Out at", None)
    items_in: list[str] = field("攜入物品", "Items carried in", default_factory=list)
    items_out: list[str] = field("攜出物品", "Items carried out", default_factory=list)
    nda_ref: str | None = field("保密合約", "NDA or contract reference", None)
    result: str | None = field("作業結果", "Work performed and result", None)

    def ref(self) -> str:
        return self.visit_id


TestTrigger = Literal["test_mode", "mains_failure", "manual", "unknown"]


class GeneratorTest(RecordModel):
    """A generator run and whether it counts as the monthly exercise (NFPA 110 §8.4.2)."""

    KIND = "generator_test"
    ZH, EN, AT, UNTIL = "發電機測試", "Generator tests", "started_at", "ended_at"

    device: str = field("設備", "Generator", min_length=1)
    started_at: AwareDatetime = field("開始時間", "Started at")
    ended_at: AwareDatetime | None = field("結束時間", "Ended at", None)
    on_load_minutes: float = field("帶載分鐘數", "Minutes on load (cool-down excluded)", ge=0)
    min_load_pct: float | None = field("最低負載 %", "Lowest load, % of rated", None)
    avg_load_pct: float | None = field("平均負載 %", "Average load, % of rated", None)
    trigger: TestTrigger = field("啟動原因", "Started by: test mode, mains failure or by hand", "unknown")
    counts: bool = field("計入月測", "Counts as the monthly test")
    reason: str | None = field("判定說明", "Why it counts or not", None)
    source: Literal["telemetry", "history", "manual"] = field(
        "來源", "Telemetry, rebuilt from history, or entered", "manual"
    )
    technician: str | None = field("技術人員", "Technician (vendor and licence)", None)
    witness: str | None = field("見證人", "Company witness", None)
    notes: str | None = field("備註", "Abnormalities and corrective action", None)

    def ref(self) -> str:
        return f"{self.device}@{utc_key(self.started_at)}"


class UpsTest(RecordModel):
    """A UPS self-test result or battery test (CC-16000 (五))."""

    KIND = "ups_test"
    ZH, EN, AT = "UPS 測試", "UPS tests", "tested_at"

    device: str = field("設備", "UPS", min_length=1)
    tested_at: AwareDatetime = field("測試時間", "Tested at")
    test_type: Literal["self_test", "battery_inspection", "capacity_test", "runtime_calibration"] = field(
        "測試類型", "Self-test, battery inspection, capacity test or runtime calibration", "self_test"
    )
    result: Literal["passed", "warning", "failed", "aborted", "invalid_test"] = field("結果", "Result")
    started_by: str | None = field("啟動來源", "Started by (internal schedule, front panel, protocol)", None)
    time_known: bool = field(
        "測試時間已知",
        "The test time is known (false: a result the device already showed when first read, time unknown)",
        True,
    )
    source: Literal["telemetry", "history", "manual"] = field(
        "來源", "Telemetry, rebuilt from history, or entered", "manual"
    )
    technician: str | None = field("技術人員", "Technician", None)
    notes: str | None = field("備註", "Notes", None)

    def ref(self) -> str:
        return f"{self.device}@{utc_key(self.tested_at)}"


class Inspection(RecordModel):
    """A fire-system inspection or emergency-lighting test (CC-16000 (一); NFPA 101 §7.9.3)."""

    KIND = "inspection"
    ZH, EN, AT = "消防及緊急照明檢查", "Fire and emergency-lighting inspections", "inspected_at"

    system: Literal["fire", "emergency_lighting"] = field("系統", "Fire system or emergency lighting")
    inspected_at: AwareDatetime = field("檢查時間", "Inspected at")
    inspector: str = field("檢查人", "Inspector", min_length=1)
    licence: str | None = field("證照字號", "Licence (消防設備師/士)", None)
    result: Literal["pass", "fail"] = field("結果", "Result")
    duration_s: float | None = field("測試秒數", "Test duration, s (emergency lighting ≥ 30 s monthly)", None)
    findings: str | None = field("缺失", "Findings", None)
    corrective_action: str | None = field("改善措施", "Corrective action", None)
    report_ref: str | None = field("申報/報告編號", "Report or filing reference", None)

    def ref(self) -> str:
        return f"{self.system}@{utc_key(self.inspected_at)}"


class Maintenance(RecordModel):
    """A maintenance window (CC-16000 (十一): stopping systems at night, not during trading)."""

    KIND = "maintenance"
    ZH, EN, AT, UNTIL = "維護作業", "Maintenance windows", "starts_at", "ends_at"

    window_id: str = field("作業編號", "Window id", min_length=1)
    system: str = field("系統", "System or device", min_length=1)
    starts_at: AwareDatetime = field("開始", "Starts at")
    ends_at: AwareDatetime = field("結束", "Ends at")
    stops_service: bool = field("需停機", "Stops systems users need", True)
    description: str | None = field("說明", "Description", None)
    approved_by: str | None = field("核准人", "Approved by", None)
    vendor_visit: str | None = field("廠商進出登記", "Vendor visit id", None)
    justification: str | None = field("交易時段作業理由", "Why during trading hours (emergency)", None)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def ref(self) -> str:
        return self.window_id


class Incident(RecordModel):
    """A review of an abnormal event (CC-20000 (五)): cause, corrective and preventive measures."""

    KIND = "incident"
    ZH, EN, AT, UNTIL = "異常事件檢討", "Incident reviews", "started_at", "resolved_at"
    CLOSE_NEEDS: ClassVar[tuple[str, ...]] = ("cause", "corrective_action", "preventive_action")

    incident_id: str = field("事件編號", "Incident id", min_length=1)
    alert_id: str | None = field("告警編號", "Alert id", None)
    rule: str | None = field("告警規則", "Alert rule", None)
    severity: str | None = field("嚴重度", "Severity", None)
    device_class: str | None = field("系統類別", "System class (ups, genset, crac, ...)", None)
    room: str | None = field("機房", "Room", None)
    device: str | None = field("設備", "Device", None)
    summary: str = field("事件摘要", "What happened", min_length=1)
    started_at: AwareDatetime = field("發生時間", "Started at")
    resolved_at: AwareDatetime | None = field("恢復時間", "Resolved at", None)
    timeline: list[str] = field("時間軸", "Alert timeline", default_factory=list)
    cause: str | None = field("原因", "Cause", None)
    corrective_action: str | None = field("矯正措施", "Corrective action", None)
    preventive_action: str | None = field("預防措施", "Preventive action", None)
    owner: str | None = field("負責人", "Owner", None)
    due_at: AwareDatetime = field("檢討期限", "Review due")
    closed_at: AwareDatetime | None = field("結案時間", "Closed at", None)
    closed_by: str | None = field("結案人", "Closed by", None)

    @model_validator(mode="after")
    def _closed_complete(self) -> Self:
        if self.closed_at is not None:
            missing = _missing(self, (*self.CLOSE_NEEDS, "closed_by"))
            if missing:
                raise ValueError(f"a closed review needs {', '.join(missing)}")
        return self

    def ref(self) -> str:
        return self.incident_id


class Drill(RecordModel):
    """A recovery-plan drill (CC-20000 (六))."""

    KIND = "drill"
    ZH, EN, AT = "復原演練", "Recovery drills", "held_at"

    drill_id: str = field("演練編號", "Drill id", min_length=1)
    held_at: AwareDatetime = field("演練時間", "Held at")
    plan: str = field("復原計畫", "Recovery plan", min_length=1)
    scenario: str = field("演練情境", "Scenario", min_length=1)
    participants: list[str] = field("參與人員", "Participants", default_factory=list)
    result: Literal["pass", "partial", "fail"] = field("結果", "Result")
    findings: str | None = field("缺失", "Findings", None)
    follow_up: str | None = field("改善事項", "Follow-up", None)

    def ref(self) -> str:
        return self.drill_id


KINDS: dict[str, type[RecordModel]] = {
    k.KIND: k
    for k in (
        Asset,
        Disposal,
        Rack,
        Person,
        DutyShift,
        VendorVisit,
        GeneratorTest,
        UpsTest,
        Inspection,
        Maintenance,
        Incident,
        Drill,
    )
}


class UnknownKind(ValueError):
    """A record kind that does not exist; the message lists the valid ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown record kind {name!r}; valid kinds: {', '.join(KINDS)}")


def kind(name: str) -> type[RecordModel]:
    """The model of a record kind by name (UnknownKind lists the valid ones)."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(name) from None


def labels(model: type[BaseModel]) -> list[tuple[str, str, str]]:
    """(field name, zh label, en label) of every field, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        out.append((name, str(extra.get("zh", name)), info.description or name))
    return out
