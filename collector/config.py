"""Site configuration: the rooms, devices, transports, broker and database of one edge box."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from collector.secrets import SecretError, SecretRef
from collector.sitecheck import (
    ProfileInfo,
    ProfileLookup,
    ProfileNames,
    builtin_profile_info,
    builtin_profile_names,
    site_issues,
    summarize,
)
from devices.yamlload import Issue, issues_error, load_yaml_model

__all__ = [
    "DeviceConfig", "ProfileInfo", "SecretError", "SecretRef", "SiteConfig", "load_site", "summarize",
]

TRANSPORTS = ("modbus", "modbus_rtu", "snmp")
_TRANSPORT_PROTOCOL = {"modbus": "modbus", "modbus_rtu": "modbus", "snmp": "snmp"}
# Tags every reading already carries (DESIGN: InfluxDB tags); a device tag may not shadow them.
RESERVED_TAGS = frozenset({"site", "room", "device", "device_class", "model", "zone", "rack", "quality"})
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _err(kind: str, msg: str, **ctx: Any) -> PydanticCustomError:
    # The message goes through ctx so braces in user values cannot break pydantic's formatting.
    return PydanticCustomError(kind, "{msg}", {"msg": msg, **ctx})


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise _err("slug", "must be a slug: lowercase letters, digits, '-' or '_' (max 63), "
                   "because ids become MQTT topic levels and InfluxDB tags")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    """Strict base: unknown keys are errors, values are immutable, inputs never echoed in errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class SiteInfo(_Model):
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
            raise _err("unknown_timezone", f"unknown IANA time zone{hint}") from None
        return value


class Zone(_Model):
    """A row or area inside a room (hot/cold aisle), holding racks."""

    id: Slug = Field(description="Zone id, unique within its room.")
    name: str = Field(description="Human name of the zone.")
    racks: list[Slug] = Field(default_factory=list, description="Rack ids in this zone.")


class Room(_Model):
    """A machine room."""

    id: Slug = Field(description="Room id; second MQTT topic level.")
    name: str = Field(description="Human name (Traditional Chinese and/or English).")
    zones: list[Zone] = Field(default_factory=list, description="Zones of the room.")


class Defaults(_Model):
    """Polling settings used by every device that does not set its own."""

    poll_interval_s: Seconds = Field(5.0, description="Seconds between polls of one device.")
    timeout_s: Seconds = Field(2.0, description="Seconds to wait for one request.")
    retries: int = Field(1, ge=0, le=10, description="Extra attempts after a timeout within one poll.")
    jitter_pct: float = Field(10.0, ge=0, le=50, description="Random spread of poll start, % of interval.")
    backoff_max_s: Seconds = Field(300.0, description="Longest wait between polls of an unreachable device.")


class ModbusTcp(_Model):
    """Modbus TCP endpoint (a device or an RS-485 gateway; unit id picks the device behind it)."""

    host: str = Field(min_length=1, description="Host name or IP address.")
    port: Port = Field(502, description="TCP port.")
    unit_id: int = Field(1, ge=1, le=247, description="Modbus unit (slave) id.")


class ModbusRtu(_Model):
    """Modbus RTU device on a local serial line (RS-485)."""

    serial_port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0.")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = Field(
        9600, description="Line speed in bit/s."
    )
    parity: Literal["N", "E", "O"] = Field("N", description="Parity: N(one), E(ven), O(dd).")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")
    bytesize: Literal[7, 8] = Field(8, description="Data bits.")
    unit_id: int = Field(1, ge=1, le=247, description="Modbus unit (slave) id.")
    inter_frame_delay_s: float = Field(
        0.0, ge=0, le=1, description="Silence between frames; default 3.5 character times at this baud rate."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_frame_delay(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("inter_frame_delay_s") is None:
            baud = data.get("baudrate", 9600)
            if isinstance(baud, int) and baud > 0:
                # Modbus over Serial Line v1.02 §2.5.1.1: t3.5 = 3.5 characters of 11 bits, but a fixed
                # 1.75 ms above 19200 bit/s.
                data = {**data, "inter_frame_delay_s": 0.00175 if baud > 19200 else 3.5 * 11 / baud}
        return data


class SnmpV3(_Model):
    """SNMPv3 USM credentials; roomguard only speaks authPriv (no plaintext or unauthenticated v3)."""

    user: str = Field(min_length=1, description="USM user name.")
    auth_protocol: Literal["sha", "sha224", "sha256", "sha384", "sha512"] = Field(
        description="Authentication (HMAC) protocol."
    )
    auth_key: SecretRef = Field(description="Authentication pass phrase.")
    priv_protocol: Literal["aes128", "aes192", "aes256"] = Field(description="Privacy (encryption) protocol.")
    priv_key: SecretRef = Field(description="Privacy pass phrase.")
    security_level: Literal["authPriv"] = Field("authPriv", description="Always authPriv.")
    context_name: str = Field("", description="SNMPv3 context; the simulator tells devices apart by it.")


class Snmp(_Model):
    """SNMP agent endpoint and credentials."""

    host: str = Field(min_length=1, description="Host name or IP address.")
    port: Port = Field(161, description="UDP port.")
    version: Literal["v2c", "v3"] = Field("v2c", description="SNMP version.")
    community: SecretRef | None = Field(None, description="v2c community (a secret reference).")
    v3: SnmpV3 | None = Field(None, description="v3 credentials (version v3 only).")

    @model_validator(mode="after")
    def _credentials_match_version(self) -> Self:
        issues: list[Issue] = []
        if self.version == "v2c":
            if self.community is None:
                issues.append({"loc": ("community",), "msg": "SNMP v2c needs a community ({env: VAR})"})
            if self.v3 is not None:
                issues.append({"loc": ("v3",), "msg": "v3 credentials need version: v3"})
        else:
            if self.v3 is None:
                issues.append({"loc": ("v3",), "msg": "SNMP v3 needs a v3 block (user, keys, protocols)"})
            if self.community is not None:
                issues.append({"loc": ("community",), "msg": "community is for v2c only"})
        if issues:
            raise issues_error(issues)
        return self


class DoorSettings(_Model):
    """Timers of the door state machine (door-class devices only)."""

    held_open_after_s: Seconds = Field(60.0, description="Open longer than this is 'held_open'.")
    access_grant_window_s: float = Field(
        10.0, ge=0, description="An opening within this time after a grant/REX is not 'forced_open'."
    )


class DeviceConfig(_Model):
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
    modbus: ModbusTcp | None = Field(None, description="Modbus TCP transport.")
    modbus_rtu: ModbusRtu | None = Field(None, description="Modbus RTU (serial) transport.")
    snmp: Snmp | None = Field(None, description="SNMP transport.")

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str, info: ValidationInfo) -> str:
        names = sorted(_profile_names(info))
        if value not in names:
            msg = "unknown profile" if names else "unknown profile (no profiles found)"
            raise _err("unknown_profile", msg, expected=names)
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(RESERVED_TAGS & value.keys())
        if clash:
            raise _err("reserved_tag", f"tag names {', '.join(clash)} are set by roomguard itself")
        return value

    @model_validator(mode="after")
    def _transport_and_profile(self, info: ValidationInfo) -> Self:
        present = [t for t in TRANSPORTS if getattr(self, t) is not None]
        issues: list[Issue] = []
        if not present:
            issues.append({"msg": "device needs exactly one transport", "expected": list(TRANSPORTS)})
        for extra in present[1:]:
            issues.append({"loc": (extra,), "msg": f"device already has transport '{present[0]}'; "
                           "keep exactly one", "expected": list(TRANSPORTS)})
        prof = _profile_lookup(info)(self.profile)
        if prof is not None and present and prof.protocol and prof.protocol != self.protocol:
            issues.append({"loc": (present[0],), "expected": [t for t, p in _TRANSPORT_PROTOCOL.items()
                                                               if p == prof.protocol],
                           "msg": f"profile '{self.profile}' speaks {prof.protocol}, not {self.protocol}"})
        if prof is not None and self.door is not None and prof.device_class not in (None, "door"):
            issues.append({"loc": ("door",), "msg": f"door settings need a door profile "
                           f"('{self.profile}' is {prof.device_class})"})
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


def _profile_names(info: ValidationInfo) -> Iterable[str]:
    ctx = info.context or {}
    names = ctx.get("profile_names")
    if names is None:
        return builtin_profile_names()
    return list(names() if callable(names) else names)


def _profile_lookup(info: ValidationInfo) -> ProfileLookup:
    lookup = (info.context or {}).get("profile_info")
    return lookup if callable(lookup) else builtin_profile_info


class MqttTls(_Model):
    """TLS toward the MQTT broker."""

    ca_file: Path | None = Field(None, description="CA bundle to verify the broker (system store if unset).")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS).")
    insecure: bool = Field(False, description="Skip host name verification (lab use only).")

    @model_validator(mode="after")
    def _cert_with_key(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise issues_error([{"loc": (missing,), "msg": "cert_file and key_file go together"}])
        return self


class Mqtt(_Model):
    """The MQTT broker readings are published to."""

    host: str = Field("127.0.0.1", min_length=1, description="Broker host.")
    port: Port = Field(1883, description="Broker port (8883 is usual with TLS).")
    client_id: str | None = Field(None, description="Fixed client id; default roomguard-<site>-collector.")
    username: str | None = Field(None, description="User name.")
    password: SecretRef | None = Field(None, description="Password (secret reference).")
    tls: MqttTls | None = Field(None, description="TLS settings; plain TCP if unset.")
    topic_prefix: str = Field("roomguard/v1", description="First topic levels.")

    @model_validator(mode="after")
    def _password_needs_user(self) -> Self:
        if self.password is not None and self.username is None:
            raise issues_error([{"loc": ("password",), "msg": "password given without username"}])
        if self.topic_prefix.strip("/") != self.topic_prefix or any(c in self.topic_prefix for c in "+#"):
            raise issues_error([{"loc": ("topic_prefix",), "input": self.topic_prefix,
                                 "msg": "no leading/trailing '/' and no wildcards"}])
        return self


class InfluxDb(_Model):
    """The time-series database the ingest bridge writes to."""

    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://127.0.0.1:8086.")
    api: Literal["v1", "v2"] = Field("v2", description="v1 /write (InfluxDB 1.x) or v2 write API.")
    database: str | None = Field(None, description="Database (api v1).")
    bucket: str | None = Field(None, description="Bucket (api v2).")
    org: str | None = Field(None, description="Organisation (api v2).")
    token: SecretRef | None = Field(None, description="API token (api v2).")
    username: str | None = Field(None, description="User name (api v1).")
    password: SecretRef | None = Field(None, description="Password (api v1).")

    @model_validator(mode="after")
    def _fields_match_api(self) -> Self:
        need = ("database",) if self.api == "v1" else ("bucket",)
        wrong = ("bucket", "org", "token") if self.api == "v1" else ("database", "username", "password")
        issues: list[Issue] = [{"loc": (n,), "msg": f"api {self.api} needs {n}"}
                               for n in need if getattr(self, n) is None]
        issues += [{"loc": (n,), "msg": f"{n} is not used by api {self.api}"}
                   for n in wrong if getattr(self, n) is not None]
        if issues:
            raise issues_error(issues)
        return self


class SnmpTrapUser(SnmpV3):
    """An SNMPv3 user allowed to send traps (authPriv)."""

    engine_id: str = Field(
        pattern=r"^(0x)?[0-9A-Fa-f]{10,64}$",
        description="The sending device's SNMP engine ID in hex: v3 traps are authoritative at the sender.",
    )


class SnmpTraps(_Model):
    """The SNMP trap/inform listener."""

    listen_host: str = Field("0.0.0.0", description="Address to bind.")
    listen_port: Port = Field(162, description="UDP port (162 needs CAP_NET_BIND_SERVICE).")
    communities: list[SecretRef] = Field(default_factory=list, description="Accepted v2c communities.")
    v3_users: list[SnmpTrapUser] = Field(default_factory=list, description="Accepted v3 users.")


class Simulator(_Model):
    """The bundled room simulator serving this site's devices (lab and demo use)."""

    host: str = Field("127.0.0.1", description="Address the simulated devices and HTTP control bind to.")
    http_port: Port = Field(8099, description="HTTP control port (scenarios, values).")
    scenario: str | None = Field(None, description="Scenario to start with; normal operation if unset.")
    seed: int | None = Field(None, description="Random seed for reproducible runs.")


class SiteConfig(_Model):
    """Everything one edge box needs to know: the site file (deploy/examples/site.yaml)."""

    site: SiteInfo = Field(description="Site identity.")
    rooms: list[Room] = Field(min_length=1, description="Machine rooms of the site.")
    devices: list[DeviceConfig] = Field(default_factory=list, description="Polled devices.")
    defaults: Defaults = Field(default_factory=Defaults, description="Polling defaults.")
    mqtt: Mqtt = Field(default_factory=Mqtt, description="MQTT broker.")
    influxdb: InfluxDb | None = Field(None, description="Time-series database (ingest bridge).")
    snmp_traps: SnmpTraps | None = Field(None, description="Trap listener; off if unset.")
    simulator: Simulator | None = Field(None, description="Bundled simulator settings.")

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

    def secret_refs(self) -> Iterator[tuple[str, SecretRef]]:
        """Every secret reference with its key path (for `check-config` to test they resolve)."""
        yield from _walk_secrets(self, "")


def _walk_secrets(node: Any, path: str) -> Iterator[tuple[str, SecretRef]]:
    if isinstance(node, SecretRef):
        yield path, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk_secrets(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_secrets(item, f"{path}[{i}]")


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


