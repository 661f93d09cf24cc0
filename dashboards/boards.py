"""The seven roomguard dashboards. Every field comes from the metric catalog through `field()`; titles are
zh-TW with the English name, descriptions English (docs/dashboards.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.influxql import (
    DEVICE,
    PER_INTERVAL,
    ROOM,
    SITE,
    Field,
    Query,
    device_classes,
    field,
    measurements_regex,
)
from dashboards.panels import DATASOURCE, graph, number_panels, rows, single, states
from devices.reading import DeviceClass as C

COMPLIANCE_ROOM = "_compliance"
QUALITY = '"quality"'  # the poll's quality field every line has (docs/influx-schema.md)
# ASHRAE TC 9.9 (2021) at server inlets: recommended 18-27 °C, dew point -9..15 °C and RH <= 60 %;
# allowable A1 15-32 °C, 8-80 % RH (docs/compliance.md). Magnus constants as alerts/dewpoint.py.
MAGNUS_A, MAGNUS_B_C = 17.625, 243.04
TEMP_BANDS = ((None, "blue"), (15.0, "yellow"), (18.0, "green"), (27.0, "yellow"), (32.0, "red"))
RH_BANDS = ((None, "red"), (8.0, "yellow"), (20.0, "green"), (60.0, "yellow"), (80.0, "red"))
DEW_BANDS = ((None, "yellow"), (-9.0, "green"), (15.0, "yellow"), (17.0, "red"))

BOOL_ALARM = {"true": ("警報 alarm", "red"), "false": ("正常 normal", "green")}
DOOR_STATES = {
    "closed": ("關 closed", "green"), "open": ("開 open", "blue"), "forced_open": ("強行開啟 forced", "red"),
    "held_open": ("逾時未關 held", "orange"), "unknown": ("未知 unknown", "gray"),
}  # fmt: skip
CHECK_STATES = {
    "pass": ("通過 pass", "green"), "warn": ("注意 warn", "yellow"), "fail": ("不符 fail", "red"),
    "unknown": ("未知 unknown", "gray"),
}  # fmt: skip
QUALITY_STATES = {
    "good": ("正常 good", "green"), "partial": ("部分 partial", "yellow"), "stale": ("過時 stale", "yellow"),
    "unavailable": ("無值 unavailable", "orange"), "comm_error": ("通訊錯誤 comm_error", "red"),
    "decode_error": ("解碼錯誤 decode_error", "red"), "auth_error": ("認證錯誤 auth_error", "red"),
}  # fmt: skip

ROOM_SCOPE = f"{SITE} AND {ROOM}"
DEVICE_SCOPE = f"{SITE} AND {ROOM} AND {DEVICE}"
COMPLIANCE_SCOPE = f"{SITE} AND \"room\" = '{COMPLIANCE_ROOM}'"
BY_DEVICE = "$tag_device"


def over_time(
    f: Field, scope: str = DEVICE_SCOPE, agg: str = "mean", ref: str = "A", alias: str = BY_DEVICE
) -> Query:
    """`agg(field)` per interval and device."""
    return Query(
        f'SELECT {agg}({f.q}) FROM {f.m} WHERE $timeFilter AND {scope} {PER_INTERVAL}, "device" fill(none)',
        ref_id=ref,
        alias=alias,
    )


def latest(f: Field, scope: str = DEVICE_SCOPE, ref: str = "A", expr: str = "") -> Query:
    """The last value per device in the time range."""
    return Query(
        f'SELECT last({f.q}){expr} FROM {f.m} WHERE $timeFilter AND {scope} GROUP BY "device"',
        ref_id=ref,
        alias=BY_DEVICE,
    )


def variables(device_from: str | None, *, rooms: bool = True) -> list[cogbuilder.Builder[dm.VariableModel]]:
    """site (one), room and device (several, default all) as InfluxQL tag-value queries."""
    out: list[cogbuilder.Builder[dm.VariableModel]] = [
        db.QueryVariable("site")
        .label("站點 site")
        .description("The site (tag site)")
        .datasource(DATASOURCE)
        .query('SHOW TAG VALUES WITH KEY = "site"')
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    ]
    if rooms:
        out.append(
            _many(
                "room",
                "機房 room",
                f'SHOW TAG VALUES WITH KEY = "room" WHERE {SITE} AND "room" != \'{COMPLIANCE_ROOM}\'',
            )
        )
    if device_from:
        out.append(
            _many(
                "device",
                "設備 device",
                f'SHOW TAG VALUES FROM {device_from} WITH KEY = "device" WHERE {ROOM_SCOPE}',
            )
        )
    return out


def _many(name: str, label: str, query: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .description(f"Tag {name}; several or all")
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def dashboard(
    uid: str, title: str, description: str, variables_: list[cogbuilder.Builder[dm.VariableModel]],
    panels: Sequence[cogbuilder.Builder[dm.Panel]],
) -> dm.Dashboard:  # fmt: skip
    """One dashboard: stable uid, tags, last 6 hours, refresh every 30 s."""
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["roomguard"])
        .time("now-6h", "now")
        .timezone("browser")
        .refresh("30s")
        .variables(variables_)
    )
    for p in number_panels(panels):
        d = d.with_panel(p)
    return d.build()


# --------------------------------------------------------------------------------------------- boards


def room() -> dm.Dashboard:
    """Room overview: temperature and RH against the ASHRAE bands, dew point, worst inlet, doors, leak."""
    temp, rh = field(C.ENV, "temp_c"), field(C.ENV, "rh_pct")
    g = f"ln({rh.q} / 100) + {MAGNUS_A!r} * {temp.q} / ({MAGNUS_B_C!r} + {temp.q})"
    dew = (
        f'SELECT mean("dp") FROM (SELECT {MAGNUS_B_C!r} * "g" / ({MAGNUS_A!r} - "g") AS "dp" FROM '
        f'(SELECT {g} AS "g" FROM {temp.m} WHERE $timeFilter AND {DEVICE_SCOPE} GROUP BY "device") '
        f'GROUP BY "device") WHERE $timeFilter {PER_INTERVAL}, "device" fill(none)'
    )
    worst = (
        f'SELECT max("last") FROM (SELECT last({temp.q}) FROM {temp.m} WHERE $timeFilter AND {ROOM_SCOPE} '
        'AND "aisle" != \'hot\' GROUP BY "device")'
    )
    door, contact = field(C.DOOR, "door_state"), field(C.CONTACT, "leak")
    smoke = field(C.CONTACT, "smoke")
    panels = [
        single("最熱進風溫度 Worst inlet", "Highest latest temperature among inlet sensors (hot-aisle sensors, "
               "tag aisle=hot, excluded), against the ASHRAE recommended (18-27 °C) and A1 allowable (15-32 °C) "
               "bands.", [Query(worst)], "celsius", steps=TEMP_BANDS, w=6),
        single("最新溫度 Latest temperature", "Each sensor's latest temperature.",
               [latest(temp)], "celsius", steps=TEMP_BANDS, w=18),
        graph("溫度 Temperature", "Air temperature per sensor; bands: ASHRAE A1 allowable 15-32 °C (yellow), "
              "recommended 18-27 °C (green).", [over_time(temp)], "celsius", steps=TEMP_BANDS),
        graph("相對濕度 Relative humidity", "Relative humidity per sensor; bands: A1 allowable 8-80 % RH, "
              "the site's recommended maximum 60 % RH.", [over_time(rh)], "humidity", steps=RH_BANDS, lo=0, hi=100),
        graph("露點 Dew point", "Dew point per sensor from temp_c and rh_pct (Magnus formula, as the alert "
              "engine computes it); ASHRAE recommended -9 to 15 °C, A1 allowable up to 17 °C.",
              [Query(dew, alias=BY_DEVICE)], "celsius", steps=DEW_BANDS),
        states("門狀態 Door states", "Door state per door as the poller derives it: closed, open, forced open, "
               "held open.", [over_time(door, ROOM_SCOPE, "last")], DOOR_STATES),
        states("漏水與煙霧 Leak and smoke", "Leak and smoke contacts (true = alarm).",
               [over_time(contact, ROOM_SCOPE, "last", alias="$tag_device leak"),
                over_time(smoke, ROOM_SCOPE, "last", ref="B", alias="$tag_device smoke")], BOOL_ALARM, w=24, h=6),
    ]  # fmt: skip
    return dashboard("roomguard-room", "機房環境總覽 Room overview",
                     "Temperature, humidity and dew point against the ASHRAE bands; doors, leak and smoke.",
                     variables(f'"{C.ENV}"'), panels)  # fmt: skip


def power() -> dm.Dashboard:
    """UPS and generator."""
    f = field
    on_batt = f(C.UPS, "on_battery")
    events = (
        f"SELECT {on_batt.q}, {f(C.UPS, 'battery_charge_pct').q}, {f(C.UPS, 'runtime_s').q} FROM {on_batt.m} "
        f'WHERE $timeFilter AND {DEVICE_SCOPE} AND {on_batt.q} = true GROUP BY "device"'
    )
    run_h = f(C.GENSET, "run_time_s")
    panels = [
        graph("UPS 負載 UPS load", "Output load per UPS (highest phase); warn at 80 %, alarm at 90 %.",
              [over_time(f(C.UPS, "output_load_pct"))], "percent",
              steps=((None, "green"), (80.0, "yellow"), (90.0, "red")), lo=0, hi=100),
        graph("UPS 電池續航 UPS runtime", "Estimated runtime on battery at the present load; alarm under "
              "5 minutes, warn under 10.", [over_time(f(C.UPS, "runtime_s"))], "s",
              steps=((None, "red"), (300.0, "yellow"), (600.0, "green")), lo=0),
        graph("UPS 輸入/輸出電壓 UPS input/output voltage", "Input and output voltage (phase 1) per UPS.",
              [over_time(f(C.UPS, "input_voltage_v"), alias="$tag_device in"),
               over_time(f(C.UPS, "output_voltage_v"), ref="B", alias="$tag_device out")], "volt"),
        single("UPS 電池電量 UPS battery charge", "Battery charge remaining per UPS.",
               [latest(f(C.UPS, "battery_charge_pct"))], "percent",
               steps=((None, "red"), (50.0, "yellow"), (90.0, "green")), w=12, h=8),
        states("UPS 供電來源 UPS on battery", "Whether each UPS runs its load on battery (on-battery periods).",
               [over_time(on_batt, agg="last")],
               {"true": ("電池 battery", "red"), "false": ("市電 mains", "green")}),
        rows("UPS 電池供電紀錄 On-battery readings", "Every reading taken while a UPS was on battery, with "
             "charge and runtime: the on-battery periods in detail. Empty while mains never failed.",
             [Query(events, fmt="table")], unit="none", sparse=True),
        states("發電機狀態 Generator state", "Engine state and controller mode of each generator "
               "(test_on_load: a monthly test).",
               [over_time(f(C.GENSET, "engine_state"), agg="last", alias="$tag_device engine"),
                over_time(f(C.GENSET, "control_mode"), agg="last", ref="B", alias="$tag_device mode")],
               {"running": ("運轉 running", "green"), "stopped": ("停止 stopped", "blue"),
                "auto": ("自動 auto", "green"), "test_on_load": ("帶載測試 test on load", "purple"),
                "manual": ("手動 manual", "yellow"), "stop": ("停止 stop", "red")}),
        graph("發電機功率 Generator power", "Total active power of each generator.",
              [over_time(f(C.GENSET, "gen_power_w"))], "watt", lo=0),
        graph("發電機燃油 Generator fuel", "Fuel tank level; the readiness check wants at least 50 %.",
              [over_time(f(C.GENSET, "fuel_level_pct"))], "percent",
              steps=((None, "red"), (50.0, "green")), lo=0, hi=100, w=8),
        graph("發電機啟動電池 Generator starter battery", "Starter battery voltage; the readiness check wants "
              "at least 24 V (a 24 V set).", [over_time(f(C.GENSET, "battery_voltage_v"))], "volt",
              steps=((None, "red"), (24.0, "green")), w=8),
        single("發電機運轉時數 Generator run hours", "Engine run time accumulated, in hours.",
               [latest(run_h, expr=" / 3600")], "h", w=8, h=8),
    ]  # fmt: skip
    return dashboard("roomguard-power", "電力 Power", "UPS load, runtime, voltages and on-battery periods; "
                     "generator state, power, fuel, battery and run hours.",
                     variables(measurements_regex([str(C.UPS), str(C.GENSET)])), panels)  # fmt: skip


def cooling() -> dm.Dashboard:
    """CRAC units."""
    f = field
    state = f(C.CRAC, "unit_state")
    available = (
        f'SELECT count("s") FROM (SELECT last({state.q}) AS "s" FROM {state.m} WHERE $timeFilter AND '
        f'{ROOM_SCOPE} GROUP BY "device") WHERE "s" = \'on\' OR "s" = \'standby\' OR "s" = \'idle\''
    )
    panels = [
        graph("送風/回風溫度 Supply and return air", "Supply (discharge) and return (intake) air temperature "
              "per unit.", [over_time(f(C.CRAC, "supply_air_temp_c"), alias="$tag_device supply"),
                            over_time(f(C.CRAC, "return_air_temp_c"), ref="B", alias="$tag_device return")],
              "celsius"),
        graph("設定溫度 Setpoints", "Temperature each unit regulates to.",
              [over_time(f(C.CRAC, "temp_setpoint_c"))], "celsius"),
        graph("冷卻輸出 Cooling output", "Cooling output in % of each unit's capacity.",
              [over_time(f(C.CRAC, "cooling_capacity_pct"))], "percent", lo=0, hi=100,
              steps=((None, "green"), (90.0, "yellow"))),
        single("可用空調台數 Units available (N+1)", "Units that are on, idle or in standby (their latest "
               "state): N+1 redundancy holds while this is at least the units the load needs plus one.",
               [Query(available)], "none", steps=((None, "red"), (1.0, "yellow"), (2.0, "green")), h=8),
        single("空調告警等級 Unit alarm status", "Overall alarm severity each unit reports.",
               [latest(f(C.CRAC, "status"))], "none", w=6, h=8,
               mappings={"normal": ("正常 normal", "green"), "info": ("資訊 info", "blue"),
                         "warning": ("警告 warning", "yellow"), "critical": ("嚴重 critical", "red")}),
        states("空調運轉狀態 Unit state", "What each unit is doing: on, off, standby, idle.",
               [over_time(state, agg="last")],
               {"on": ("運轉 on", "green"), "off": ("關閉 off", "red"), "standby": ("待機 standby", "blue"),
                "idle": ("閒置 idle", "yellow")}, w=24),
    ]  # fmt: skip
    return dashboard("roomguard-cooling", "空調 Cooling", "CRAC supply and return air, setpoints, state, "
                     "alarms and N+1 redundancy.", variables(f'"{C.CRAC}"'), panels)  # fmt: skip


def doors() -> dm.Dashboard:
    """Doors and access events."""
    f = field
    state = f(C.DOOR, "door_state")
    events = (
        f"SELECT {state.q} FROM {state.m} WHERE $timeFilter AND {DEVICE_SCOPE} AND "
        f"({state.q} = 'forced_open' OR {state.q} = 'held_open') GROUP BY \"device\""
    )
    opened = f(C.DOOR, "door_open")
    panels = [
        states("門狀態 Door state", "Door state as the poller derives it from the contact, the request-to-exit "
               "button and the lock.", [over_time(state, agg="last")], DOOR_STATES, w=24),
        states("門磁與門鎖 Contact and lock", "Raw door contact (open) and lock feedback (locked).",
               [over_time(opened, agg="last", alias="$tag_device open"),
                over_time(f(C.DOOR, "lock_engaged"), agg="last", ref="B", alias="$tag_device locked")],
               {"true": ("是 yes", "blue"), "false": ("否 no", "green")}, w=24),
        rows("強行開啟/逾時事件 Forced and held-open events", "Readings with the door forced open or held "
             "open too long (CC-16000 access events). Empty while nothing happened.",
             [Query(events, fmt="table")], sparse=True, mappings=DOOR_STATES),
        single("開門次數 Door openings", "Readings with the door open in the time range, per door.",
               [Query(f"SELECT count({opened.q}) FROM {opened.m} WHERE $timeFilter AND {DEVICE_SCOPE} AND "
                      f"{opened.q} = true GROUP BY \"device\"", alias=BY_DEVICE)],
               "none", sparse=True, w=12, h=8),
    ]  # fmt: skip
    return dashboard("roomguard-doors", "門禁 Doors and access", "Door states, contact and lock, forced and "
                     "held-open events.", variables(f'"{C.DOOR}"'), panels)  # fmt: skip


def compliance() -> dm.Dashboard:
    """The CC-16000 board and the test timeline."""
    f = field
    status, due = f(C.COMPLIANCE, "status"), f(C.COMPLIANCE, "days_to_due")
    board = (
        f'SELECT last({status.q}) AS "status", last({due.q}) AS "days_to_due" FROM {status.m} '
        f'WHERE $timeFilter AND {COMPLIANCE_SCOPE} GROUP BY "device"'
    )
    not_passing = (
        f"SELECT {status.q}, {due.q} FROM {status.m} WHERE $timeFilter AND {COMPLIANCE_SCOPE} AND "
        f"{status.q} = 'fail' GROUP BY \"device\""
    )
    mode, load = f(C.GENSET, "control_mode"), f(C.GENSET, "gen_load_pct")
    on_load = (
        f"SELECT mean({load.q}) FROM {load.m} WHERE $timeFilter AND {SITE} AND {mode.q} = 'test_on_load' "
        f'{PER_INTERVAL}, "device" fill(none)'
    )
    site_wide = SITE
    panels = [
        rows("CC-16000 查核看板 CC-16000 board", "Latest result of every check item (pass, warn, fail, "
             "unknown) and days until its next test or review is due (negative: overdue).",
             [Query(board, fmt="table")], mappings=CHECK_STATES, w=24, h=12),
        states("查核結果時間軸 Check results over time", "Each check item's result over time.",
               [over_time(status, COMPLIANCE_SCOPE, "last")], CHECK_STATES, w=24, h=12),
        graph("距到期日數 Days to due", "Days until each item's next test or review; warn within 7 days, "
              "alarm when overdue. Empty until a first test or review is on record (no due date yet).",
              [over_time(due, COMPLIANCE_SCOPE, "last")], "d",
              steps=((None, "red"), (0.0, "yellow"), (7.0, "green")), sparse=True),
        rows("不符項目 Failing items", "Readings of items that failed in the time range. Empty while "
             "every item passes.", [Query(not_passing, fmt="table")], sparse=True, mappings=CHECK_STATES),
        states("測試時間軸 Test timeline", "Generator controller mode (test_on_load: a monthly load test) "
               "and UPS self-test result: the tests the board's evidence comes from.",
               [over_time(mode, site_wide, "last", alias="$tag_device mode"),
                over_time(f(C.UPS, "test_result"), site_wide, "last", ref="B", alias="$tag_device self-test")],
               {"test_on_load": ("帶載測試 test on load", "purple"), "auto": ("自動 auto", "green"),
                "passed": ("通過 passed", "green"), "failed": ("失敗 failed", "red"),
                "in_progress": ("測試中 in progress", "blue"), "none": ("未測 none", "gray")}, w=24),
        graph("發電機測試負載 Generator load during tests", "Generator load while the controller is in test "
              "mode; a test counts at 30 % or more for 30 minutes. Empty until a test has run.",
              [Query(on_load, alias=BY_DEVICE)], "percent", steps=((None, "red"), (30.0, "green")),
              sparse=True, w=24),
    ]  # fmt: skip
    return dashboard("roomguard-compliance", "CC-16000 法遵 Compliance", "The CC-16000 board from the "
                     "compliance readings, and the generator and UPS test timeline.",
                     variables(None, rooms=False), panels)  # fmt: skip


def alerts() -> dm.Dashboard:
    """What the shipped alert rules fire on, as readings: failed polls, alarms, failing checks."""
    devs = measurements_regex(device_classes())
    bad = (
        f'SELECT {QUALITY}, "error" FROM {devs} WHERE $timeFilter AND {DEVICE_SCOPE} AND '
        f"{QUALITY} != 'good' GROUP BY \"device\""
    )
    bad_count = (
        f"SELECT count({QUALITY}) FROM {devs} WHERE $timeFilter AND {DEVICE_SCOPE} AND {QUALITY} != 'good' "
        f'{PER_INTERVAL}, "device" fill(none)'
    )
    status = field(C.COMPLIANCE, "status")
    checks = (
        f"SELECT last({status.q}) FROM {status.m} WHERE $timeFilter AND {COMPLIANCE_SCOPE} "
        f'{PER_INTERVAL}, "device" fill(none)'
    )
    on_batt, leak, smoke = field(C.UPS, "on_battery"), field(C.CONTACT, "leak"), field(C.CONTACT, "smoke")
    crac = field(C.CRAC, "status")
    panels = [
        states("告警條件 Alarm conditions", "The conditions the shipped rule pack pages on, per device: UPS on "
               "battery, leak, smoke (true = alarm). Notifications and their history: roomguard alerts "
               "history, and the retained MQTT topics {prefix}/{site}/alerts/#.",
               [over_time(on_batt, ROOM_SCOPE, "last", alias="$tag_device on battery"),
                over_time(leak, ROOM_SCOPE, "last", ref="B", alias="$tag_device leak"),
                over_time(smoke, ROOM_SCOPE, "last", ref="C", alias="$tag_device smoke")], BOOL_ALARM, w=24),
        states("空調告警 CRAC alarm status", "Alarm severity each CRAC reports.",
               [over_time(crac, ROOM_SCOPE, "last")],
               {"normal": ("正常 normal", "green"), "info": ("資訊 info", "blue"),
                "warning": ("警告 warning", "yellow"), "critical": ("嚴重 critical", "red")}),
        states("查核告警 Compliance checks", "CC-16000 check results (the compliance-check-failed and "
               "compliance-check-due rules fire on fail and warn).", [Query(checks, alias=BY_DEVICE)],
               CHECK_STATES),
        graph("輪詢失敗次數 Failed polls", "Polls per interval and device whose quality was not good (the "
              "offline and stale rules fire on these). Empty while every poll succeeds.",
              [Query(bad_count, alias=BY_DEVICE)], "none", sparse=True, steps=((None, "green"), (1.0, "red"))),
        rows("輪詢錯誤 Poll errors", "Polls that were not good, with the error text. Empty while every poll "
             "succeeds.", [Query(bad, fmt="table")], sparse=True, mappings=QUALITY_STATES),
    ]  # fmt: skip
    return dashboard("roomguard-alerts", "告警 Alerts", "The alarm conditions the shipped rules fire on, "
                     "failed polls and failing checks.", variables(devs), panels)  # fmt: skip


def edge() -> dm.Dashboard:
    """The collector's own health and the data's quality per device."""
    f = field
    system_scope = SITE
    devs = measurements_regex(device_classes())
    interval = (
        f'SELECT max("gap") FROM (SELECT elapsed({QUALITY}, 1ms) AS "gap" FROM {devs} WHERE $timeFilter AND '
        f'{DEVICE_SCOPE} GROUP BY "device") WHERE $timeFilter {PER_INTERVAL}, "device" fill(none)'
    )
    confirmed, published = f(C.SYSTEM, "confirmed"), f(C.SYSTEM, "published")

    def rate(x: Field, ref: str, alias: str) -> Query:
        return Query(
            f"SELECT non_negative_derivative(last({x.q}), 1s) FROM {x.m} WHERE $timeFilter AND {system_scope} "
            f'{PER_INTERVAL}, "device" fill(none)', ref_id=ref, alias=alias,
        )  # fmt: skip

    panels = [
        states("資料品質 Quality per device", "The quality of each device's polls: good, partial, "
               "unavailable, comm_error, decode_error, auth_error.",
               [Query(f'SELECT last({QUALITY}) FROM {devs} WHERE $timeFilter AND {DEVICE_SCOPE} '
                      f'{PER_INTERVAL}, "device" fill(none)', alias=BY_DEVICE)], QUALITY_STATES, w=24, h=10),
        graph("輪詢耗時 Poll duration", "How long each device's slowest poll took per interval. A poll "
              "nearing the request timeout (2 s by default, defaults.timeout_s) is a device or network "
              "about to fail.",
              [Query(f'SELECT max("poll_duration_s") FROM {devs} WHERE $timeFilter AND {DEVICE_SCOPE} '
                     f'{PER_INTERVAL}, "device" fill(none)', alias=BY_DEVICE)], "s",
              steps=((None, "green"), (1.0, "yellow"), (2.0, "red")), lo=0),
        graph("輪詢間隔 Poll interval", "Time between two stored polls of a device (maximum per interval): "
              "late or missed polls show as peaks above the poll interval.",
              [Query(interval, alias=BY_DEVICE)], "ms", lo=0),
        graph("待送佇列 Outbox depth", "Messages in each collector's outbox, and those at the broker awaiting "
              "ingest's confirmation.",
              [over_time(f(C.SYSTEM, "outbox_depth"), system_scope, "last", alias="$tag_device outbox"),
               over_time(f(C.SYSTEM, "outbox_awaiting_confirmation"), system_scope, "last", ref="B",
                         alias="$tag_device awaiting")], "none", lo=0),
        graph("寫入延遲 Ingest lag", "Age of the oldest message in the outbox: how far the database is "
              "behind the poller. Warn over 30 s, alarm over 2 minutes.",
              [over_time(f(C.SYSTEM, "outbox_oldest_age_s"), system_scope, "max")], "s",
              steps=((None, "green"), (30.0, "yellow"), (120.0, "red")), lo=0),
        graph("遺失讀數 Dropped readings", "Readings dropped by the outbox bounds since the collector started, "
              "and messages that could not be stored: data lost.",
              [over_time(f(C.SYSTEM, "outbox_dropped_total"), system_scope, "last", alias="$tag_device dropped"),
               over_time(f(C.SYSTEM, "outbox_unstored_dropped"), system_scope, "last", ref="B",
                         alias="$tag_device unstored")], "none", steps=((None, "green"), (1.0, "red")), lo=0),
        graph("傳送速率 Message rates", "Messages published and readings confirmed stored, per second.",
              [rate(published, "A", "$tag_device published"), rate(confirmed, "B", "$tag_device confirmed")],
              "suffix: msg/s", lo=0),
        states("MQTT 連線 Broker connection", "Whether each collector is connected to the broker.",
               [over_time(f(C.SYSTEM, "broker_connected"), system_scope, "last")],
               {"true": ("已連線 connected", "green"), "false": ("斷線 disconnected", "red")}, w=24, h=5),
    ]  # fmt: skip
    return dashboard("roomguard-edge", "邊緣健康 Edge health", "Poll durations and intervals, quality per device, outbox "
                     "depth, drops and ingest lag of the collectors.", variables(devs), panels)  # fmt: skip


# name → builder; the JSON file is dashboards/json/<name>.json
BOARDS: dict[str, Callable[[], dm.Dashboard]] = {
    "room": room,
    "power": power,
    "cooling": cooling,
    "doors": doors,
    "compliance": compliance,
    "alerts": alerts,
    "edge": edge,
}
