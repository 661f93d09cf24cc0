# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Power: the generator ready now (四), generator and UPS tests on their cadence (五)."""

from __future__ import annotations

from compliance.checks.cadence import due_after, every
from compliance.checks.common import (
    Finding,
    active_alarms,
    board_line,
    happened,
    num,
    record_evidence,
    silent_finding,
    span,
    telemetry,
    when,
)
from compliance.facts import DeviceInfo, Facts, Value
from compliance.items import GENERATOR_READY, GENERATOR_TEST, UPS_TEST
from compliance.kinds import GeneratorTest, UpsTest
from compliance.result import CheckResult, Evidence, Status, worst

# control_mode (catalog.yaml, genset): Auto starts the set on a mains failure by itself (NFPA 110 §8.4.1
# wants the set left ready for automatic operation); auto_manual_restore is Auto that waits for a person to
# transfer back to mains, still ready.
READY_MODES = frozenset({"auto", "auto_manual_restore"})
TEST_MODES = frozenset({"test_on_load", "test_off_load"})
MODE_ZH = {
    "stop": "停止",
    "auto": "自動",
    "manual": "手動",
    "test_on_load": "帶載測試",
    "auto_manual_restore": "自動（手動復電）",
    "user_config": "使用者設定",
    "test_off_load": "無載測試",
    "off": "關閉",
}
# UpsTest.result values that show a working UPS (warning: it worked, with a remark).
UPS_OK = frozenset({"passed", "warning"})
UPS_RESULT_ZH = {
    "passed": "通過",
    "warning": "警告",
    "failed": "失敗",
    "aborted": "中止",
    "invalid_test": "無效",
}
UPS_TYPE_ZH = {
    "self_test": "自我測試",
    "battery_inspection": "電池檢查",
    "capacity_test": "容量測試",
    "runtime_calibration": "時間校正",
}

Part = tuple[Status, str, str]


def check_generator_ready(facts: Facts) -> CheckResult:
    """(四) each generator answers, is in Auto (or under test), fuel and battery above minimums, no alarm."""
    sets = facts.devices_of("genset")
    if not sets:
        return board_line(
            GENERATOR_READY,
            [
                Finding(
                    "unknown",
                    "未設定發電機（genset），無備有發電機之佐證",
                    "no generator (genset) configured: no evidence of a standby generator",
                    (Evidence("config", "devices/genset"),),
                )
            ],
        )
    return board_line(GENERATOR_READY, [_ready(facts, g) for g in sets])


def _ready(facts: Facts, genset: DeviceInfo) -> Finding:
    how, state = telemetry(facts, genset)
    if how == "missing" or state is None:
        return silent_finding(facts, genset, how, state)
    if how == "offline":
        seen = when(state.last_seen, facts.tz) if state.last_seen else "—"
        return Finding(
            "fail",
            f"發電機 {genset.id}（{genset.room}）未回應（最後回報 {seen}），無法確認備便",
            f"generator {genset.id} ({genset.room}) is not answering (last heard from {seen}): not ready",
            (Evidence("reading", f"{genset.id}/online", state.last_seen, "offline"),),
            state.last_seen,
        )
    m = state.metrics
    cfg = facts.config.generator_readiness
    parts = [_mode(m.get("control_mode"))]
    parts.append(_at_least(m.get("fuel_level_pct"), cfg.fuel_min_pct, "燃油", "fuel", "%"))
    parts.append(_at_least(m.get("battery_voltage_v"), cfg.battery_min_v, "啟動電瓶", "starter battery", "V"))
    alarms = active_alarms(m)
    for name, value in alarms:
        parts.append(("warn", f"警報 {name}（{value}）", f"alarm {name} ({value}) active"))
    names = ["control_mode", "fuel_level_pct", "battery_voltage_v"] + [n for n, _ in alarms]
    return Finding(
        worst([p[0] for p in parts]),
        f"發電機 {genset.id}（{genset.room}）：" + "，".join(p[1] for p in parts),
        f"generator {genset.id} ({genset.room}): " + ", ".join(p[2] for p in parts),
        tuple(Evidence("reading", f"{genset.id}/{n}", state.last_seen, str(m.get(n))) for n in names),
        state.last_seen,
    )


def _mode(mode: Value) -> Part:
    if not isinstance(mode, str):
        return "unknown", "控制模式未回報", "control mode not reported"
    zh = MODE_ZH.get(mode, mode)
    if mode in READY_MODES:
        return "pass", f"{zh}模式", f"in {mode}"
    if mode in TEST_MODES:
        return "pass", f"{zh}中（測試結束後應回到自動）", f"{mode} running (back to auto after the test)"
    return "fail", f"{zh}模式，市電中斷時不會自行啟動", f"in {mode}: it will not start on a mains failure"


def _at_least(value: Value, minimum: float, zh: str, en: str, unit: str) -> Part:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "unknown", f"{zh}未回報", f"{en} not reported"
    if value < minimum:
        return (
            "fail",
            f"{zh} {num(value)} {unit} 低於下限 {num(minimum)} {unit}",
            f"{en} {num(value)} {unit} below the minimum {num(minimum)} {unit}",
        )
    return (
        "pass",
        f"{zh} {num(value)} {unit}（下限 {num(minimum)} {unit}）",
        f"{en} {num(value)} {unit} (min {num(minimum)} {unit})",
    )


def _devices(facts: Facts, device_class: str, recorded: list[str]) -> list[str]:
    """Configured devices of a class, then devices only the records name (a set since removed)."""
    configured = [d.id for d in facts.devices_of(device_class)]
    return configured + sorted(set(recorded) - set(configured))


def check_generator_test(facts: Facts) -> CheckResult:
    """(五) each generator's last counted test (NFPA 110 §8.4.2 load and minutes) within the cadence.

    No counted test: no run recorded at all → unknown ("no test recorded yet"); only runs that do not count
    → warn while the cadence window since the first recorded run is open, fail once it has passed.
    """
    tests = facts.of(GeneratorTest)
    devices = _devices(facts, "genset", [t.device for t in tests])
    if not devices:
        return board_line(
            GENERATOR_TEST,
            [
                Finding(
                    "unknown", "未設定發電機，亦無測試紀錄", "no generator configured and no test recorded"
                )
            ],
        )
    return board_line(
        GENERATOR_TEST, [_gen_test(facts, d, [t for t in tests if t.device == d]) for d in devices]
    )


def _load(test: GeneratorTest) -> tuple[str, str]:
    if test.avg_load_pct is not None:
        return f"，平均負載 {num(test.avg_load_pct)} %", f", average load {num(test.avg_load_pct)} %"
    if test.min_load_pct is not None:
        return f"，最低負載 {num(test.min_load_pct)} %", f", lowest load {num(test.min_load_pct)} %"
    return "", ""


def _gen_test(facts: Facts, device: str, records: list[GeneratorTest]) -> Finding:
    rule = facts.config.generator_tests
    cadence = rule.cadence
    runs = happened(facts, records)
    need_zh = f"帶載 ≥ {num(rule.min_load_pct)} % 至少 {num(rule.min_minutes)} 分鐘，{every(cadence)[0]}一次"
    need_en = f"≥ {num(rule.min_minutes)} min at ≥ {num(rule.min_load_pct)} % load {every(cadence)[1]}"
    if not runs:
        return Finding(
            "unknown",
            f"發電機 {device} 尚無測試紀錄（應{need_zh}）",
            f"generator {device}: no test recorded yet (required: {need_en})",
        )
    counted = [t for t in runs if t.counts]
    if counted:
        last = counted[-1]
        due = due_after(last.started_at, cadence, facts.now, facts.tz)
        load_zh, load_en = _load(last)
        return Finding(
            due.status,
            f"發電機 {device} 最近一次計入月測之測試於 {when(last.started_at, facts.tz)}"
            f"（帶載 {num(last.on_load_minutes)} 分鐘{load_zh}），{due.zh}",
            f"generator {device}: last counted test {when(last.started_at, facts.tz)} "
            f"({num(last.on_load_minutes)} min on load{load_en}), {due.en}",
            (record_evidence(last, "counts"),),
            last.started_at,
            due.next_due,
        )
    first, latest = runs[0], runs[-1]
    due = due_after(first.started_at, cadence, facts.now, facts.tz)
    load_zh, load_en = _load(latest)
    why_zh = f"：{latest.reason}" if latest.reason else ""
    why_en = f": {latest.reason}" if latest.reason else ""
    latest_zh = (
        f"最近一次運轉 {when(latest.started_at, facts.tz)}"
        f"（帶載 {num(latest.on_load_minutes)} 分鐘{load_zh}）不計入{why_zh}"
    )
    latest_en = (
        f"the last run {when(latest.started_at, facts.tz)} ({num(latest.on_load_minutes)} min on load"
        f"{load_en}) does not count{why_en}"
    )
    since_zh, since_en = span(facts.now - first.started_at)
    status: Status = "fail" if due.status == "fail" else "warn"
    head_zh = (
        f"發電機 {device} 自首筆運轉紀錄（{when(first.started_at, facts.tz)}）{since_zh}以來無計入月測之測試"
    )
    head_en = (
        f"generator {device}: no run that counts as the monthly test in the {since_en} since the first "
        f"recorded run ({when(first.started_at, facts.tz)})"
    )
    return Finding(
        status,
        f"{head_zh}；{latest_zh}；{due.zh}",
        f"{head_en}; {latest_en}; {due.en}",
        (record_evidence(latest, "does not count"),),
        latest.started_at,
        due.next_due,
    )


def check_ups_test(facts: Facts) -> CheckResult:
    """(五) each UPS's last passed (or warning) test within the cadence; a failed last test → fail.

    Only aborted or invalid tests: warn while the cadence window since the first is open, then fail.
    """
    tests = facts.of(UpsTest)
    devices = _devices(facts, "ups", [t.device for t in tests])
    if not devices:
        return board_line(
            UPS_TEST,
            [Finding("unknown", "未設定不斷電系統，亦無測試紀錄", "no UPS configured and no test recorded")],
        )
    return board_line(UPS_TEST, [_ups_test(facts, d, [t for t in tests if t.device == d]) for d in devices])


def _ups_name(test: UpsTest, facts: Facts) -> tuple[str, str]:
    at = when(test.tested_at, facts.tz)
    zh = f"{at} {UPS_TYPE_ZH[test.test_type]}{UPS_RESULT_ZH[test.result]}"
    return zh, f"{test.test_type} {at} {test.result}"


def _ups_test(facts: Facts, device: str, records: list[UpsTest]) -> Finding:
    cadence = facts.config.ups_tests
    # A result the UPS already showed when roomguard first read it has no test time: it proves a test
    # happened once, not when, so it cannot start the cadence (a missing input is unknown, never pass).
    untimed = [t for t in happened(facts, records) if not t.time_known]
    runs = [t for t in happened(facts, records) if t.time_known]
    if not runs and untimed:
        first_zh, first_en = _ups_name(untimed[-1], facts)
        return Finding(
            "unknown",
            f"UPS {device} 僅有首次讀取時已存在之結果（{first_zh}，測試時間不明）；"
            "請執行一次自我測試或登錄測試紀錄",
            f"UPS {device}: only a result already present when first read ({first_en}, test time unknown); "
            "run a self-test or record one",
            (record_evidence(untimed[-1], untimed[-1].result),),
            untimed[-1].tested_at,
            None,
        )
    if not runs:
        zh_every, en_every = every(cadence)
        return Finding(
            "unknown",
            f"UPS {device} 尚無測試紀錄（應{zh_every}自我測試一次）",
            f"UPS {device}: no self-test recorded yet (due {en_every})",
        )
    last = runs[-1]
    ok = [t for t in runs if t.result in UPS_OK]
    last_zh, last_en = _ups_name(last, facts)
    if last.result == "failed":
        next_due = due_after(ok[-1].tested_at, cadence, facts.now, facts.tz).next_due if ok else None
        return Finding(
            "fail",
            f"UPS {device} 最近一次測試失敗（{last_zh}），其後尚無通過之測試",
            f"UPS {device}: the last test failed ({last_en}), with no passing one since",
            (record_evidence(last, "failed"),),
            last.tested_at,
            next_due,
        )
    if not ok:
        first = runs[0]
        due = due_after(first.tested_at, cadence, facts.now, facts.tz)
        since = when(first.tested_at, facts.tz)
        return Finding(
            "fail" if due.status == "fail" else "warn",
            f"UPS {device} 自 {since} 起之測試皆未完成（最近：{last_zh}）；{due.zh}",
            f"UPS {device}: no test completed since {since} (last: {last_en}); {due.en}",
            (record_evidence(last, last.result),),
            last.tested_at,
            due.next_due,
        )
    good = ok[-1]
    due = due_after(good.tested_at, cadence, facts.now, facts.tz)
    good_zh, good_en = _ups_name(good, facts)
    status = worst([due.status, "warn" if good.result == "warning" else "pass"])
    remark_zh = remark_en = ""
    if good.result == "warning":
        remark_zh = "；測試結果為警告" + (f"：{good.notes}" if good.notes else "")
        remark_en = "; the test passed with a warning" + (f": {good.notes}" if good.notes else "")
    if last is not good:
        remark_zh += f"；其後 {last_zh}，不予計入"
        remark_en += f"; the later {last_en} does not count"
    return Finding(
        status,
        f"UPS {device} 最近一次通過之測試：{good_zh}，{due.zh}{remark_zh}",
        f"UPS {device}: last good test {good_en}, {due.en}{remark_en}",
        (record_evidence(good, good.result),),
        good.tested_at,
        due.next_due,
    )
