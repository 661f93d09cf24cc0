"""Plain-text rendering of poll results for the terminal (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.reading import PollResult, Quality, Value

if TYPE_CHECKING:
    from devices.snmp_codec import SnmpValue
    from devices.traps import TrapEvent


def format_value(value: Value) -> str:
    """A value as a person reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_poll(result: PollResult, tz_name: str = "Asia/Taipei") -> str:
    """One device's poll: a header line, then one line per metric with its quality."""
    from zoneinfo import ZoneInfo

    local = result.ts.astimezone(ZoneInfo(tz_name))
    ref = result.ref
    state = "OK" if result.error is None else f"{result.quality.value.upper()} {result.error}"
    lines = [
        f"{ref.device} [{ref.device_class.value} {ref.model}] {local:%Y-%m-%d %H:%M:%S%z} "
        f"{result.duration_s * 1000:.0f} ms {state}"
    ]
    width = max((len(m.name) for m in result.metrics), default=0)
    for m in result.metrics:
        shown = format_value(m.value) if m.quality is Quality.GOOD else "-"
        flag = "" if m.quality is Quality.GOOD else f"  ({m.quality.value})"
        lines.append(f"  {m.name:<{width}}  {shown}{flag}")
    return "\n".join(lines)


def format_summary_line(results: list[PollResult]) -> str:
    """How many devices answered with data, e.g. '19/21 devices good; partial: ups-b; failing: th-3 (…)'."""
    misfit = [r for r in results if r.quality in (Quality.PARTIAL, Quality.UNAVAILABLE)]
    failing = [r for r in results if r.quality is not Quality.GOOD and r not in misfit]
    line = f"{len(results) - len(misfit) - len(failing)}/{len(results)} devices good"
    if misfit:
        line += "; answering without most data (wrong profile?): " + ", ".join(
            f"{r.ref.device} ({r.quality.value})" for r in misfit
        )
    if failing:
        line += "; failing: " + "; ".join(f"{r.ref.device} ({r.quality.value})" for r in failing)
    return line


# What a facility engineer looks at first for each class; everything else is one `--full` away.
HEADLINE: dict[str, tuple[str, ...]] = {
    "ups": (
        "output_source",
        "on_battery",
        "battery_charge_pct",
        "runtime_s",
        "output_load_pct",
        "input_voltage_v",
    ),
    "genset": ("control_mode", "engine_state", "gen_power_w", "gen_load_pct", "fuel_level_pct", "run_time_s"),
    "crac": ("unit_state", "status", "return_air_temp_c", "supply_air_temp_c", "return_rh_pct"),
    "env": ("temp_c", "rh_pct", "dew_point_c", "leak", "door_open"),
    "door": ("door_state", "door_open", "lock_engaged"),
    "contact": ("leak", "smoke"),
}
_QUIET_ALARM = {"not_active", "disabled", "inactive_indication", "unimplemented"}


def format_poll_line(result: PollResult, tz_name: str = "Asia/Taipei") -> str:
    """One line per poll: time, device, headline metrics, active alarms and any bad quality."""
    from zoneinfo import ZoneInfo

    ref = result.ref
    local = result.ts.astimezone(ZoneInfo(tz_name))
    head = f"{local:%H:%M:%S} {ref.device:<14} {ref.device_class.value:<7}"
    if result.error is not None and result.quality is not Quality.PARTIAL:
        return f"{head} {result.quality.value.upper()}: {result.error}"
    by_name = {m.name: m for m in result.metrics}
    parts = [
        f"{name}={format_value(by_name[name].value)}"
        for name in HEADLINE.get(ref.device_class.value, ())
        if name in by_name and by_name[name].quality is Quality.GOOD
    ]
    active = [
        m.name.removeprefix("alarm_")
        for m in result.metrics
        if m.name.startswith("alarm_")
        and m.name != "alarm_count"
        and m.quality is Quality.GOOD
        and str(m.value) not in _QUIET_ALARM
    ]
    if active:
        parts.append("ALARMS: " + ", ".join(active))
    bad = [f"{m.name}({m.quality.value})" for m in result.metrics if m.quality is not Quality.GOOD]
    if bad:
        parts.append("not good: " + ", ".join(bad[:4]) + (f" +{len(bad) - 4}" if len(bad) > 4 else ""))
    if result.quality is Quality.PARTIAL:
        parts.append(f"PARTIAL: {result.error}")
    return f"{head} " + "  ".join(parts)


# Objects RFC 3584 §3.1 (4) appends to a converted v1 trap: named, as a bare OID would not say what they are.
VARBIND_LABELS = {
    "1.3.6.1.6.3.18.1.3.0": "snmpTrapAddress.0",
    "1.3.6.1.6.3.1.1.4.3.0": "snmpTrapEnterprise.0",
}


def format_varbind(value: SnmpValue) -> str:
    """A received varbind value on one line: bytes in hex, odd text quoted (a trap's text is the sender's)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return value if value and value.isprintable() and " " not in value else repr(str(value))
    return format_value(value) if isinstance(value, int) else str(value)


def format_trap(event: TrapEvent, device: str | None, tz_name: str = "Asia/Taipei") -> str:
    """One line per received trap: time, sender, trap name, its decoded fields, then every other varbind."""
    from zoneinfo import ZoneInfo

    local = event.ts.astimezone(ZoneInfo(tz_name))
    who = device or event.source
    parts = [f"{k}={format_value(v)}" for k, v in event.event.items()]
    parts += [f"{VARBIND_LABELS.get(oid, oid)}={format_varbind(v)}" for oid, v in event.carried.items()]
    detail = "  ".join(parts)
    return f"{local:%H:%M:%S} {who:<14} TRAP    {event.name}" + (f"  {detail}" if detail else "")
