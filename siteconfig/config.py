"""Site configuration: the rooms, devices, transports, broker and database of one edge box."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from devices.yamlload import Issue, issues_error, load_yaml_model
from siteconfig.alerts_config import AlertsConfig
from siteconfig.api_config import ApiConfig
from siteconfig.compliance_config import ComplianceConfig
from siteconfig.config_types import (
    RESERVED_TAGS,
    DoorSettings,
    InfluxDb,
    InfluxRetention,
    IngestOptions,
    ModbusRtu,
    ModbusTcp,
    Mqtt,
    MqttBridge,
    MqttCredentials,
    MqttRole,
    MqttTls,
    OutboxSettings,
    RecordsDb,
    Seconds,
    Simulator,
    Slug,
    Snmp,
    SnmpTraps,
    SnmpTrapUser,
    SnmpV3,
    StrictModel,
    config_error,
)
from siteconfig.secrets import SecretError, SecretRef
from siteconfig.sitecheck import (
    ProfileInfo,
    ProfileLookup,
    ProfileNames,
    builtin_profile_info,
    builtin_profile_names,
    site_issues,
    summarize,
)

__all__ = [
    "DeviceConfig",
    "DoorSettings",
    "InfluxDb",
    "InfluxRetention",
    "IngestOptions",
    "ModbusRtu",
    "ModbusTcp",
    "Mqtt",
    "MqttBridge",
    "MqttCredentials",
    "MqttRole",
    "MqttTls",
    "OutboxSettings",
    "ProfileInfo",
    "SecretError",
    "SecretRef",
    "Simulator",
    "SiteConfig",
    "Snmp",
    "SnmpTrapUser",
    "SnmpTraps",
    "SnmpV3",
    "load_site",
    "summarize",
]

TRANSPORTS = ("modbus", "modbus_rtu", "snmp")
_TRANSPORT_PROTOCOL = {"modbus": "modbus", "modbus_rtu": "modbus", "snmp": "snmp"}


class SiteInfo(StrictModel):
    """Identity of the site (an edge box serves one site)."""

    id: Slug = Field(description="Site id; first level after the MQTT topic prefix.")
    name: str = Field(description="Human name of the site.")
    timezone: str = Field("Asia/Taipei", description="IANA zone for display, schedules and exports.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise config_error("unknown_timezone", f"unknown IANA time zone{hint}") from None
        return value


class Zone(StrictModel):
    """A row or area inside a room (hot/cold aisle), holding racks."""

    id: Slug = Field(description="Zone id, unique within its room.")
    name: str = Field(description="Human name of the zone.")
    racks: list[Slug] = Field(default_factory=list, description="Rack ids in this zone.")


class Room(StrictModel):
    """A machine room."""

    id: Slug = Field(description="Room id; second MQTT topic level.")
    name: str = Field(description="Human name (Traditional Chinese and/or English).")
    zones: list[Zone] = Field(default_factory=list, description="Zones of the room.")


class Defaults(StrictModel):
    """Polling settings used by every device that does not set its own."""

    poll_interval_s: Seconds = Field(5.0, description="Seconds between polls of one device.")
    timeout_s: Seconds = Field(2.0, description="Seconds to wait for one request.")
    retries: int = Field(1, ge=0, le=10, description="Extra attempts after a timeout within one poll.")
    jitter_pct: float = Field(10.0, ge=0, le=50, description="Random spread of poll start, % of interval.")
    backoff_max_s: Seconds = Field(300.0, description="Longest wait between polls of an unreachable device.")


class DeviceConfig(StrictModel):
    """One polled device: where it is, which profile decodes it, and how to reach it."""

    id: Slug = Field(description="Device id, unique in the site; MQTT topic level.")
    name: str = Field(description="Human name.")
    room: Slug = Field(description="Id of the room the device is in.")
    zone: Slug | None = Field(None, description="Id of a zone of that room.")
    rack: Slug | None = Field(None, description="Id of a rack of that room (of the zone, if given).")
    profile: str = Field(description="Profile (device model) name, a file in devices/profiles/.")
    poll_interval_s: Seconds | None = Field(None, description="Overrides defaults.poll_interval_s.")
    timeout_s: Seconds | None = Field(None, description="Overrides defaults.timeout_s.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on every reading.")
    door: DoorSettings | None = Field(None, description="Door timers (door-class profiles only).")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="The profile's settings chosen for this unit, facts its registers cannot tell "
        "(sht20-xy-md02: resolution x10 | x100); `roomguard probe modbus --profile` suggests them.",
    )
    modbus: ModbusTcp | None = Field(None, description="Modbus TCP transport.")
    modbus_rtu: ModbusRtu | None = Field(None, description="Modbus RTU (serial) transport.")
    snmp: Snmp | None = Field(None, description="SNMP transport.")

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str, info: ValidationInfo) -> str:
        names = sorted(_profile_names(info))
        if value not in names:
            msg = "unknown profile" if names else "unknown profile (no profiles found)"
            raise config_error("unknown_profile", msg, expected=names)
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(RESERVED_TAGS & value.keys())
        if clash:
            raise config_error("reserved_tag", f"tag names {', '.join(clash)} are set by roomguard itself")
        return value

    @model_validator(mode="after")
    def _transport_and_profile(self, info: ValidationInfo) -> Self:
        present = [t for t in TRANSPORTS if getattr(self, t) is not None]
        issues: list[Issue] = []
        if not present:
            issues.append({"msg": "device needs exactly one transport", "expected": list(TRANSPORTS)})
        for extra in present[1:]:
            issues.append(
                {
                    "loc": (extra,),
                    "msg": f"device already has transport '{present[0]}'; keep exactly one",
                    "expected": list(TRANSPORTS),
                }
            )
        prof = _profile_lookup(info)(self.profile)
        if prof is not None and present and prof.protocol and prof.protocol != self.protocol:
            issues.append(
                {
                    "loc": (present[0],),
                    "expected": [t for t, p in _TRANSPORT_PROTOCOL.items() if p == prof.protocol],
                    "msg": f"profile '{self.profile}' speaks {prof.protocol}, not {self.protocol}",
                }
            )
        if prof is not None:
            issues += _settings_issues(self.profile, prof.settings, self.settings)
        if prof is not None and self.door is not None and prof.device_class not in (None, "door"):
            issues.append(
                {
                    "loc": ("door",),
                    "msg": f"door settings need a door profile ('{self.profile}' is {prof.device_class})",
                }
            )
        if issues:
            raise issues_error(issues)
        return self

    @property
    def transport_kind(self) -> str:
        """Which transport key is set: modbus, modbus_rtu or snmp."""
        return next(t for t in TRANSPORTS if getattr(self, t) is not None)

    @property
    def protocol(self) -> str:
        """modbus or snmp."""
        return _TRANSPORT_PROTOCOL[self.transport_kind]

    def endpoint(self) -> str:
        """Human description of how the device is reached (no secrets)."""
        if self.modbus is not None:
            return f"modbus-tcp {self.modbus.host}:{self.modbus.port} unit {self.modbus.unit_id}"
        if self.modbus_rtu is not None:
            r = self.modbus_rtu
            line = f"{r.baudrate} {r.bytesize}{r.parity}{r.stopbits}"
            return f"modbus-rtu {r.serial_port} {line} unit {r.unit_id}"
        assert self.snmp is not None
        user = f"{self.snmp.v3.user}@" if self.snmp.v3 is not None else ""
        return f"snmp {self.snmp.version} {user}{self.snmp.host}:{self.snmp.port}"


def _settings_issues(
    profile: str, offered: Mapping[str, tuple[str, ...]], chosen: Mapping[str, str]
) -> list[Issue]:
    """Every setting of the profile chosen with one of its choices, and nothing else."""
    issues: list[Issue] = []
    for name in sorted(set(chosen) - set(offered)):
        issues.append(
            {
                "loc": ("settings", name),
                "msg": f"profile '{profile}' has no setting {name!r}",
                "expected": sorted(offered),
            }
        )
    for name, choices in sorted(offered.items()):
        if name not in chosen:
            issues.append(
                {
                    "loc": ("settings",),
                    "msg": f"profile '{profile}' needs setting {name!r} for this unit "
                    f"(`roomguard probe modbus --profile {profile}` suggests one)",
                    "expected": list(choices),
                }
            )
        elif chosen[name] not in choices:
            issues.append(
                {
                    "loc": ("settings", name),
                    "input": chosen[name],
                    "msg": f"not a choice of setting {name!r}",
                    "expected": list(choices),
                }
            )
    return issues


def _profile_names(info: ValidationInfo) -> Iterable[str]:
    ctx = info.context or {}
    names = ctx.get("profile_names")
    if names is None:
        return builtin_profile_names()
    return list(names() if callable(names) else names)


def _profile_lookup(info: ValidationInfo) -> ProfileLookup:
    lookup = (info.context or {}).get("profile_info")
    return lookup if callable(lookup) else builtin_profile_info


class SiteConfig(StrictModel):
    """Everything one edge box needs to know: the site file (deploy/examples/site.yaml)."""

    site: SiteInfo = Field(description="Site identity.")
    rooms: list[Room] = Field(min_length=1, description="Machine rooms of the site.")
    devices: list[DeviceConfig] = Field(default_factory=list, description="Polled devices.")
    defaults: Defaults = Field(default_factory=Defaults, description="Polling defaults.")
    mqtt: Mqtt = Field(default_factory=Mqtt, description="MQTT broker.")
    outbox: OutboxSettings = Field(
        default_factory=OutboxSettings, description="Bounds of the collector's durable MQTT outbox."
    )
    influxdb: InfluxDb | None = Field(None, description="Time-series database (ingest bridge).")
    ingest: IngestOptions = Field(
        default_factory=IngestOptions, description="What the ingest bridge accepts from the bus."
    )
    snmp_traps: SnmpTraps | None = Field(None, description="Trap listener; off if unset.")
    alerts: AlertsConfig | None = Field(None, description="Alert rules and notifications; off if unset.")
    compliance: ComplianceConfig = Field(
        default_factory=ComplianceConfig, description="CC-16000 checks: cadences, bounds, trading hours."
    )
    records: RecordsDb = Field(
        default_factory=RecordsDb, description="Records database (alert history, compliance records)."
    )
    simulator: Simulator | None = Field(None, description="Bundled simulator settings.")
    api: ApiConfig = Field(
        default_factory=ApiConfig, description="Web API and status pages: listen address, TLS, logins."
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        issues = site_issues(self)
        if issues:
            raise issues_error(issues)
        return self

    def device(self, device_id: str) -> DeviceConfig:
        """The device with this id (KeyError if none)."""
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)

    def poll_interval_s(self, device: DeviceConfig) -> float:
        """Effective poll interval of a device."""
        return device.poll_interval_s or self.defaults.poll_interval_s

    def timeout_s(self, device: DeviceConfig) -> float:
        """Effective request timeout of a device."""
        return device.timeout_s or self.defaults.timeout_s

    def secret_refs(self) -> Iterator[tuple[tuple[str | int, ...], SecretRef]]:
        """Every secret reference with its location in the file (for `check-config` to resolve them)."""
        yield from _walk_secrets(self, ())


def _walk_secrets(node: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], SecretRef]]:
    if isinstance(node, SecretRef):
        yield loc, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk_secrets(getattr(node, name), (*loc, name))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_secrets(item, (*loc, i))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _walk_secrets(item, (*loc, key))


def load_site(
    path: Path | str,
    profile_names: ProfileNames | Iterable[str] | None = None,
    profile_info: ProfileLookup | None = None,
) -> SiteConfig:
    """Load and validate a site file; raise ConfigError listing every problem with its line."""
    context: dict[str, Any] = {}
    if profile_names is not None:
        context["profile_names"] = profile_names
    if profile_info is not None:
        context["profile_info"] = profile_info
    return load_yaml_model(Path(path), SiteConfig, context=context)
