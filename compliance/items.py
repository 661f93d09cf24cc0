# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The CC-16000 board: one item per check, in board order, with the control text it rests on.

`key` is the pseudo-device id the item's result is published under (device class `compliance`), so
alert rules and dashboards address an item by it; it never changes once published. The Chinese
descriptions quote TWSE CC-16000 實體及環境安全 (and CC-20000 for the last two items); the English ones
say what the check looks at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    """One board line: its published key, the control clause, titles and descriptions in both languages."""

    key: str
    code: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str


DOORS = Item(
    "cc16000-01-doors",
    "CC-16000 (一)",
    "機房門禁管制",
    "Machine-room access control",
    "電腦機房應設有門禁管制。",
    "Door controllers report, no door is forced or held open now, and every door alarm in the period was "
    "acknowledged in time (or reviewed as an incident).",
)
FIRE = Item(
    "cc16000-01-fire",
    "CC-16000 (一)",
    "防火設施及水災偵測",
    "Fire protection and water detection",
    "機房內設置防火設施及緊急照明設備。另應將地震、水災等天然災害因素列入考量。",
    "The fire system's inspections are on schedule and passed, and no smoke or leak contact is active.",
)
EMERGENCY_LIGHTING = Item(
    "cc16000-01-emergency-lighting",
    "CC-16000 (一)",
    "緊急照明設備",
    "Emergency lighting",
    "機房內設置防火設施及緊急照明設備。",
    "Emergency-lighting tests (at least 30 s) are on schedule and passed.",
)
COOLING = Item(
    "cc16000-02-cooling",
    "CC-16000 (二)",
    "獨立空調系統",
    "Dedicated air conditioning",
    "電腦設備應有獨立之空調系統供其使用，供給空調系統之電力來源應自成一系統。",
    "The room's own CRAC units are configured and report (their separate feed is shown by the "
    "single-line diagram, not by telemetry).",
)
ENVIRONMENT = Item(
    "cc16000-03-environment",
    "CC-16000 (三)",
    "機房溫濕度",
    "Temperature and humidity",
    "機房內溫濕度應維持正常。",
    "Each room's inlet temperature and humidity stayed inside the allowable envelope and mostly inside the "
    "recommended one over the window.",
)
GENERATOR_READY = Item(
    "cc16000-04-generator-ready",
    "CC-16000 (四)",
    "發電機備便",
    "Generator ready",
    "電腦設備之電源供應系統，備有發電機。",
    "Each generator answers, is in Auto, has fuel and starter-battery voltage above the minimums and no "
    "active alarm.",
)
GENERATOR_TEST = Item(
    "cc16000-05-generator-test",
    "CC-16000 (五)",
    "發電機定期測試",
    "Generator tests",
    "不斷電系統、發電機等電源應定期或不定期測試其堪用性。",
    "Each generator had a run that counts as the monthly exercise (load and minutes) within the cadence.",
)
UPS_TEST = Item(
    "cc16000-05-ups-test",
    "CC-16000 (五)",
    "不斷電系統定期測試",
    "UPS tests",
    "不斷電系統、發電機等電源應定期或不定期測試其堪用性。",
    "Each UPS passed a self-test or battery test within the cadence and its last test did not fail.",
)
REDUNDANCY = Item(
    "cc16000-06-redundancy",
    "CC-16000 (六)",
    "空調及電源備援",
    "Cooling and power redundancy",
    "電腦系統使用之空調、電源等相關設備，應有適當之備援對策。",
    "At least N+1 CRAC units and N+1 UPS units are healthy now (generators noted as further backup).",
)
DUTY_ROSTER = Item(
    "cc16000-07-duty-roster",
    "CC-16000 (七)1",
    "值班人員揭示",
    "Duty roster posted",
    "機房指派專人管理…1.機房門口應揭示值班操作人員姓名及值班期間。",
    "Every moment of the past 24 h and of the look-ahead has a duty operator on the roster for every room.",
)
VENDOR_ESCORT = Item(
    "cc16000-10-vendor-escort",
    "CC-16000 (八)–(十)",
    "廠商維護陪同",
    "Vendor visits escorted",
    "（八）（九）…廠商派員前來維護。（十）廠商維護人員於維修設備時，應有相關人員會同檢修。",
    "Every vendor visit in the period has a work order, an approver, a checked ID, an escort other than the "
    "visitor, and an exit time once it is a day old.",
)
MAINTENANCE_HOURS = Item(
    "cc16000-11-maintenance-hours",
    "CC-16000 (十一)",
    "停機維護時段",
    "Maintenance outside trading hours",
    "電腦系統維護工作，應避免停用使用者，儘可能安排在夜間、無人使用狀態下進行停機作業之。",
    "No maintenance window that stops service overlaps the trading session without a recorded reason.",
)
DISPOSAL = Item(
    "cc16000-12-disposal",
    "CC-16000 (十二)",
    "設備報廢",
    "Equipment disposal",
    "應訂定設備報廢作業程序…實施安全性覆寫或實體破壞…並留存報廢紀錄，若委託第三者銷毀時，應簽訂保密合約。",
    "Every disposal in the period is complete: approval, method, tool, operator, witness, verification, "
    "certificate, and an NDA when a third party destroys.",
)
ACCESS_REVIEW = Item(
    "cc16000-13-access-review",
    "CC-16000 (十三)",
    "門禁權限審查",
    "Access-rights review",
    "公司應定期審查電腦機房門禁管制權限。",
    "The machine-room access rights were reviewed within the cadence (quarterly by default).",
)
NO_SUBLET = Item(
    "cc16000-14-no-sublet",
    "CC-16000 (十四)",
    "機房機櫃不得分租",
    "No sub-letting of rooms or racks",
    "公司自有及租用之機房或機櫃，除公司之期貨商關係企業且設有網路區隔，始得與其共同使用同一機房或機櫃外，"
    "均不得將機房或機櫃空間分租、轉租、出借或以任何方式提供第三方使用。",
    "Every rack in use now is the company's own or a futures affiliate's with network segmentation and "
    "an approval on record.",
)
INCIDENT_REVIEW = Item(
    "cc20000-05-incident-review",
    "CC-20000 (五)",
    "異常事件檢討",
    "Incident reviews",
    "電腦系統或電力、空調、消防系統發生異常，事後相關人員應確實檢討原因，並謀求改進與對應預防措施。",
    "Every incident review is closed with cause and measures by its due date, and critical alerts have one.",
)
DRILLS = Item(
    "cc20000-06-drills",
    "CC-20000 (六)",
    "復原計畫演練",
    "Recovery drills",
    "重大異常狀況系統復原計劃應定期模擬演練。",
    "A recovery-plan drill was held within the cadence (yearly by default) and did not fail.",
)

ITEMS: tuple[Item, ...] = (
    DOORS,
    FIRE,
    EMERGENCY_LIGHTING,
    COOLING,
    ENVIRONMENT,
    GENERATOR_READY,
    GENERATOR_TEST,
    UPS_TEST,
    REDUNDANCY,
    DUTY_ROSTER,
    VENDOR_ESCORT,
    MAINTENANCE_HOURS,
    DISPOSAL,
    ACCESS_REVIEW,
    NO_SUBLET,
    INCIDENT_REVIEW,
    DRILLS,
)
BY_KEY: dict[str, Item] = {i.key: i for i in ITEMS}
