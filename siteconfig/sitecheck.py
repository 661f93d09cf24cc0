"""Cross-field checks of a site configuration, profile facts it needs, and its human summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.yamlload import ConfigError, Issue, read_yaml

if TYPE_CHECKING:
    from siteconfig.config import DeviceConfig, SiteConfig

PROFILE_DIR = Path(__file__).resolve().parent.parent / "devices" / "profiles"


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """What site validation needs from a profile file: protocol, device class and settings to choose."""

    protocol: str | None
    device_class: str | None
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


ProfileNames = Callable[[], Iterable[str]]
ProfileLookup = Callable[[str], ProfileInfo | None]


def builtin_profile_names() -> list[str]:
    """Model names of the shipped profiles: the `*.yaml` stems in devices/profiles/."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@cache
def builtin_profile_info(name: str) -> ProfileInfo | None:
    """Protocol and class of a shipped profile, read from its YAML header (None if unreadable)."""
    try:
        raw = read_yaml(PROFILE_DIR / f"{name}.yaml")
    except ConfigError:
        return None
    if not isinstance(raw, dict):
        return None
    proto, cls = raw.get("protocol"), raw.get("device_class")
    return ProfileInfo(
        proto if isinstance(proto, str) else None,
        cls if isinstance(cls, str) else None,
        _setting_choices(raw.get("settings")),
    )


def _setting_choices(raw: Any) -> dict[str, tuple[str, ...]]:
    """`settings:` of a profile file → {setting: its choice names} (the profile loader validates)."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(name): tuple(str(c) for c in setting.get("choices", {}))
        for name, setting in raw.items()
        if isinstance(setting, dict) and isinstance(setting.get("choices"), dict)
    }


def site_issues(site: SiteConfig) -> list[Issue]:
    """Cross-field problems of a site (duplicate ids, unknown room/zone/rack, endpoint clashes)."""
    issues: list[Issue] = []
    issues += _duplicates([r.id for r in site.rooms], ("rooms",), "room id")
    for ri, room in enumerate(site.rooms):
        issues += _duplicates([z.id for z in room.zones], ("rooms", ri, "zones"), "zone id")
        seen: set[str] = set()
        for zi, k, rack in [(zi, k, r) for zi, z in enumerate(room.zones) for k, r in enumerate(z.racks)]:
            if rack in seen:
                issues.append(
                    {
                        "loc": ("rooms", ri, "zones", zi, "racks", k),
                        "input": rack,
                        "msg": "rack id used twice in this room",
                    }
                )
            seen.add(rack)
    issues += _duplicates([d.id for d in site.devices], ("devices",), "device id")
    rooms = {r.id: r for r in site.rooms}
    for i, dev in enumerate(site.devices):
        found = rooms.get(dev.room)
        if found is None:
            issues.append(
                {
                    "loc": ("devices", i, "room"),
                    "input": dev.room,
                    "msg": "unknown room",
                    "expected": list(rooms),
                }
            )
            continue
        room = found
        zones = {z.id: z for z in room.zones}
        zone = zones.get(dev.zone) if dev.zone is not None else None
        if dev.zone is not None and zone is None:
            issues.append(
                {
                    "loc": ("devices", i, "zone"),
                    "input": dev.zone,
                    "msg": f"unknown zone in room '{room.id}'",
                    "expected": list(zones),
                }
            )
        racks = zone.racks if zone is not None else [r for z in room.zones for r in z.racks]
        if dev.rack is not None and dev.rack not in racks and not (dev.zone and zone is None):
            where = f"zone '{zone.id}'" if zone is not None else f"room '{room.id}'"
            issues.append(
                {
                    "loc": ("devices", i, "rack"),
                    "input": dev.rack,
                    "msg": f"unknown rack in {where}",
                    "expected": list(racks),
                }
            )
    ids = [d.id for d in site.devices]
    for k, excluded in enumerate(site.compliance.environment.exclude_devices):
        if excluded not in ids:
            issues.append(
                {
                    "loc": ("compliance", "environment", "exclude_devices", k),
                    "input": excluded,
                    "msg": "unknown device",
                    "expected": ids,
                }
            )
    return issues + _endpoint_clashes(site.devices)


def _duplicates(ids: list[str], loc: tuple[str | int, ...], what: str) -> list[Issue]:
    first: dict[str, int] = {}
    out: list[Issue] = []
    for i, value in enumerate(ids):
        if value in first:
            out.append(
                {
                    "loc": (*loc, i, "id"),
                    "input": value,
                    "msg": f"duplicate {what} (first used at {_path(loc)}[{first[value]}])",
                }
            )
        else:
            first[value] = i
    return out


def _endpoint_clashes(devices: list[DeviceConfig]) -> list[Issue]:
    # Two devices on one unit id of one gateway/bus would read each other's registers silently.
    out: list[Issue] = []
    owner: dict[tuple[Any, ...], str] = {}
    first_on_bus: dict[str, int] = {}
    for i, dev in enumerate(devices):
        key: tuple[Any, ...] | None = None
        if dev.modbus is not None:
            key = ("tcp", dev.modbus.host, dev.modbus.port, dev.modbus.unit_id)
        elif dev.modbus_rtu is not None:
            key = ("rtu", dev.modbus_rtu.serial_port, dev.modbus_rtu.unit_id)
            j = first_on_bus.setdefault(dev.modbus_rtu.serial_port, i)
            if _line_settings(devices[j]) != _line_settings(dev):
                out.append(
                    {
                        "loc": ("devices", i, "modbus_rtu"),
                        "msg": f"line settings differ from devices[{j}] on the same serial port",
                    }
                )
        if key is None:
            continue
        if key in owner:
            out.append(
                {
                    "loc": ("devices", i, dev.transport_kind, "unit_id"),
                    "input": key[-1],
                    "msg": f"unit id already used by device '{owner[key]}' on the same endpoint",
                }
            )
        else:
            owner[key] = dev.id
    return out


def _line_settings(dev: DeviceConfig) -> tuple[Any, ...]:
    r = dev.modbus_rtu
    assert r is not None
    return (r.baudrate, r.parity, r.stopbits, r.bytesize)


def _path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(loc))


def summarize(site: SiteConfig, profile_info: ProfileLookup | None = None) -> str:
    """A readable overview of the site: rooms, device counts and one line per device (no secrets)."""
    lookup = profile_info or builtin_profile_info
    s = site.site
    lines = [f"Site {s.id}: {s.name} ({s.timezone})", "Rooms:"]
    for room in site.rooms:
        lines.append(f"  {room.id}: {room.name}")
        for z in room.zones:
            lines.append(f"    zone {z.id}: {z.name}" + (f" — racks {', '.join(z.racks)}" if z.racks else ""))
    infos = {d.id: lookup(d.profile) or ProfileInfo(None, None) for d in site.devices}
    classes = {k: v.device_class or "?" for k, v in infos.items()}
    by_class = Counter(classes.values())
    by_proto = Counter(d.transport_kind for d in site.devices)
    lines.append(
        f"Devices: {len(site.devices)} — by class: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_class.items()))
        + "; by transport: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_proto.items()))
    )
    width = max((len(d.id) for d in site.devices), default=0)
    for d in site.devices:
        place = "/".join(p for p in (d.room, d.zone, d.rack) if p)
        lines.append(
            f"  {d.id:<{width}}  {classes[d.id]:<7} {d.profile:<20} {d.endpoint():<36} "
            f"every {site.poll_interval_s(d):g}s  [{place}]"
        )
    m = site.mqtt
    lines.append(f"MQTT: {m.host}:{m.port}{' tls' if m.tls else ''} prefix {m.topic_prefix}")
    if site.influxdb is not None:
        db = site.influxdb
        lines.append(f"InfluxDB: {db.url} api {db.api} {db.database or db.bucket}")
    if site.snmp_traps is not None:
        lines.append(f"SNMP traps: {site.snmp_traps.listen_host}:{site.snmp_traps.listen_port}")
    if site.alerts is not None:
        a = site.alerts
        pack = "machine-room pack" if a.default_rules else "no pack"
        off = f" ({len(a.disabled_rules)} pack rules off)" if a.disabled_rules else ""
        channels = ", ".join(f"{n} ({c.type})" for n, c in a.channels.items()) or "none"
        lines.append(f"Alerts: {pack}{off} + {len(a.rules)} site rules; channels: {channels}")
    return "\n".join(lines)
