"""Building blocks of the site configuration: value types, transports and service sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from devices.yamlload import Issue, issues_error
from siteconfig.secrets import SecretRef

# Tags every reading already carries (docs/influx-schema.md); a device tag may not shadow them.
RESERVED_TAGS = frozenset({"site", "room", "device", "device_class", "model", "zone", "rack", "quality"})
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def config_error(kind: str, msg: str, **ctx: Any) -> PydanticCustomError:
    """A pydantic error of type `kind` whose message is `msg`, verbatim."""
    # The message goes through ctx so braces in user values cannot break pydantic's formatting.
    return PydanticCustomError(kind, "{msg}", {"msg": msg, **ctx})


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise config_error(
            "slug",
            "must be a slug: lowercase letters, digits, '-' or '_' (max 63), "
            "because ids become MQTT topic levels and InfluxDB tags",
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class StrictModel(BaseModel):
    """Strict base: unknown keys are errors, values are immutable, inputs never echoed in errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ModbusTcp(StrictModel):
    """Modbus TCP endpoint (a device or an RS-485 gateway; unit id picks the device behind it)."""

    host: str = Field(min_length=1, description="Host name or IP address.")
    port: Port = Field(502, description="TCP port.")
    unit_id: int = Field(1, ge=1, le=247, description="Modbus unit (slave) id.")


class ModbusRtu(StrictModel):
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


class SnmpV3(StrictModel):
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


class Snmp(StrictModel):
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


class DoorSettings(StrictModel):
    """Timers of the door state machine (door-class devices only)."""

    held_open_after_s: Seconds = Field(60.0, description="Open longer than this is 'held_open'.")
    access_grant_window_s: float = Field(
        10.0, ge=0, description="An opening within this time after a grant/REX is not 'forced_open'."
    )


class MqttTls(StrictModel):
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


class MqttCredentials(StrictModel):
    """The broker account of one roomguard process role (its ACL in deploy/mosquitto/ follows the role)."""

    username: str = Field(min_length=1, description="User name.")
    password: SecretRef | None = Field(None, description="Password (secret reference).")


MqttRole = Literal["collector", "ingest", "alerts", "compliance", "api"]


class MqttBridge(StrictModel):
    """The edge broker's bridge to a central broker (`roomguard broker-bridge`, docs/multi-site.md)."""

    # mosquitto.conf(5) values are single words: a space would end the value or be read as a second address.
    address: str = Field(pattern=r"^\S+$", description="Host name or IP address of the central broker.")
    port: Port = Field(8883, description="Port of the central broker (8883 is its TLS listener).")
    username: str | None = Field(
        None,
        pattern=r"^\S+$",
        description="This site's account on the central broker; default roomguard-bridge-<site>.",
    )
    password: SecretRef = Field(description="Password of that account (secret reference).")
    tls: MqttTls | None = Field(
        None,
        description="TLS toward the central broker (ca_file; cert_file + key_file for mutual TLS); "
        "plain TCP if unset, which only a private link should carry.",
    )
    confirmations: Literal["central", "local"] = Field(
        "central",
        description="Whose confirmations release the collector's outbox: `central` (the edge runs no "
        "ingest: a reading stays until the central database has it) or `local` (an edge ingest confirms; "
        "the bridge's queue alone carries readings to the central broker).",
    )


class Mqtt(StrictModel):
    """The MQTT broker readings are published to."""

    host: str = Field("127.0.0.1", min_length=1, description="Broker host.")
    port: Port = Field(1883, description="Broker port (8883 is usual with TLS).")
    client_id: str | None = Field(None, description="Fixed client id; default roomguard-<site>-collector.")
    username: str | None = Field(None, description="User name.")
    password: SecretRef | None = Field(None, description="Password (secret reference).")
    tls: MqttTls | None = Field(None, description="TLS settings; plain TCP if unset.")
    topic_prefix: str = Field("roomguard/v1", description="First topic levels.")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT version: auto tries 5 and falls back to 3.1.1 if the broker refuses 5."
    )
    roles: dict[MqttRole, MqttCredentials] = Field(
        default_factory=dict,
        description="Own broker account per process role (collector, ingest, alerts, compliance, api: the "
        "web API's read-only live view), so the broker's ACL lets each do only its job "
        "(`roomguard broker-acl`); roles not listed use username/password.",
    )
    reconnect_max_s: Seconds = Field(
        3.0,
        description="Longest wait between reconnect attempts: a broker back after an outage is used "
        "again within this time.",
    )
    max_message_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="Largest message the collector publishes; the broker's "
        "message_size_limit (deploy/mosquitto/roomguard.conf) must not be lower.",
    )
    bridge: MqttBridge | None = Field(
        None,
        description="Bridge of this site's broker to a central broker (several rooms on one central "
        "view, docs/multi-site.md); none if unset.",
    )

    @model_validator(mode="after")
    def _password_needs_user(self) -> Self:
        if self.password is not None and self.username is None:
            raise issues_error([{"loc": ("password",), "msg": "password given without username"}])
        if self.topic_prefix.strip("/") != self.topic_prefix or any(c in self.topic_prefix for c in "+#"):
            raise issues_error(
                [
                    {
                        "loc": ("topic_prefix",),
                        "input": self.topic_prefix,
                        "msg": "no leading/trailing '/' and no wildcards",
                    }
                ]
            )
        return self


# An InfluxQL duration literal as retention settings use it: whole minutes, hours, days or weeks.
_INFLUX_DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhdw])$")
_DURATION_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_seconds(text: str) -> int:
    """Seconds of an InfluxQL duration literal such as `400d` (ValueError naming the valid form)."""
    m = _INFLUX_DURATION.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration: a whole number and m, h, d or w (e.g. 400d)")
    return int(m.group(1)) * _DURATION_UNIT_S[m.group(2)]


def _influx_duration(value: str) -> str:
    try:
        duration_seconds(value)
    except ValueError:
        msg = "not a duration: a whole number and m, h, d or w (e.g. 400d)"
        raise config_error("duration", msg, expected=["<n>m", "<n>h", "<n>d", "<n>w"]) from None
    return value


InfluxDuration = Annotated[str, AfterValidator(_influx_duration)]


class InfluxRetention(StrictModel):
    """Retention and 1-minute rollups of an InfluxDB 1.x database (`roomguard ingest SITE setup-db`)."""

    raw: InfluxDuration = Field("400d", description="How long raw polls are kept (the default policy).")
    raw_policy: Slug = Field("raw", description="Name of the raw retention policy (ingest writes into it).")
    rollup: InfluxDuration = Field(
        "1830d", description="How long the 1-minute rollups (policy rollup_1m) are kept: 5 years of evidence."
    )
    resample_for: InfluxDuration = Field(
        "10m",
        description="Every minute the rollup queries recompute this much of the past, so readings that "
        "arrive this late still count; longer backlogs: `roomguard ingest SITE rollup`.",
    )

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        issues: list[Issue] = []
        # InfluxDB 1.x refuses a retention policy shorter than one hour ("retention policy duration must
        # be at least 1h0m0s").
        for name in ("raw", "rollup"):
            if duration_seconds(getattr(self, name)) < 3600:
                issues.append({"loc": (name,), "msg": "InfluxDB keeps a retention policy at least 1h"})
        resample = duration_seconds(self.resample_for)
        if resample > 86400:
            issues.append({"loc": ("resample_for",), "msg": "at most 1d: a longer backlog is backfilled"})
        elif resample >= duration_seconds(self.raw):
            issues.append({"loc": ("resample_for",), "msg": "must be shorter than raw"})
        if self.raw_policy == "rollup_1m":
            issues.append({"loc": ("raw_policy",), "msg": "rollup_1m is the rollup policy's name"})
        if issues:
            raise issues_error(issues)
        return self


class InfluxDb(StrictModel):
    """The time-series database the ingest bridge writes to."""

    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://127.0.0.1:8086.")
    api: Literal["v1", "v2"] = Field("v2", description="v1 /write (InfluxDB 1.x) or v2 write API.")
    database: str | None = Field(None, description="Database (api v1).")
    bucket: str | None = Field(None, description="Bucket (api v2).")
    org: str | None = Field(None, description="Organisation (api v2).")
    token: SecretRef | None = Field(None, description="API token (api v2).")
    username: str | None = Field(None, description="User name (api v1).")
    password: SecretRef | None = Field(None, description="Password (api v1).")
    gzip: bool = Field(
        False,
        description="Gzip each batch: worth it toward a remote database, a cost on loopback.",
    )
    retry_max_s: Seconds = Field(
        3.0,
        description="Longest wait between write attempts while the database is away: writing resumes "
        "within this time after it is back.",
    )
    retention: InfluxRetention = Field(
        default_factory=InfluxRetention,
        description="Retention and 1-minute rollups (api v1; in InfluxDB 2.x/3.x buckets and tasks do this).",
    )

    @model_validator(mode="after")
    def _fields_match_api(self) -> Self:
        need = ("database",) if self.api == "v1" else ("bucket",)
        wrong = ("bucket", "org", "token") if self.api == "v1" else ("database", "username", "password")
        issues: list[Issue] = [
            {"loc": (n,), "msg": f"api {self.api} needs {n}"} for n in need if getattr(self, n) is None
        ]
        issues += [
            {"loc": (n,), "msg": f"{n} is not used by api {self.api}"}
            for n in wrong
            if getattr(self, n) is not None
        ]
        if self.api != "v1" and "retention" in self.model_fields_set:
            issues.append(
                {
                    "loc": ("retention",),
                    "msg": "retention is for api v1: in InfluxDB 2.x/3.x the bucket's retention period and a "
                    "downsampling task do this",
                }
            )
        if issues:
            raise issues_error(issues)
        return self


class SnmpTrapUser(SnmpV3):
    """An SNMPv3 user allowed to send traps (authPriv)."""

    engine_id: str = Field(
        pattern=r"^(0x)?[0-9A-Fa-f]{10,64}$",
        description="The sending device's SNMP engine ID in hex: v3 traps are authoritative at the sender.",
    )


class SnmpTraps(StrictModel):
    """The SNMP trap/inform listener."""

    listen_host: str = Field("0.0.0.0", description="Address to bind.")
    listen_port: Port = Field(162, description="UDP port (162 needs CAP_NET_BIND_SERVICE).")
    communities: list[SecretRef] = Field(default_factory=list, description="Accepted v2c communities.")
    v3_users: list[SnmpTrapUser] = Field(default_factory=list, description="Accepted v3 users.")


class Simulator(StrictModel):
    """The bundled room simulator serving this site's devices (lab and demo use)."""

    host: str = Field("127.0.0.1", description="Address the simulated devices and HTTP control bind to.")
    http_port: Port = Field(8099, description="HTTP control port (scenarios, values).")
    scenario: str | None = Field(None, description="Scenario to start with; normal operation if unset.")
    seed: int | None = Field(None, description="Random seed for reproducible runs.")


class OutboxSettings(StrictModel):
    """Bounds of the collector's durable outbox (state_dir/outbox.db); oldest messages go first."""

    max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="Largest outbox size in bytes (payload + topic); beyond it the oldest messages are "
        "dropped, counted, logged and reported in the collector's self-metrics. 512 MiB holds days of a "
        "typical room's readings.",
    )
    max_age_s: Seconds = Field(
        7 * 86400.0,
        description="Messages older than this are dropped (counted like a byte drop): a week covers a "
        "long broker outage, older readings are no longer worth replaying.",
    )
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite synchronous mode: NORMAL survives a killed process; FULL also survives a "
        "power cut, at one fsync per batch.",
    )
    release: Literal["archive", "broker"] = Field(
        "archive",
        description="When a reading leaves the outbox: `archive` once ingest confirms it is in the "
        "database (survives a broker crash), `broker` on the broker's PUBACK (no ingest confirms, e.g. a "
        "broker bridged to a site without roomguard ingest).",
    )


class IngestOptions(StrictModel):
    """What `roomguard ingest` reads and accepts from the bus; refused messages are dead-lettered."""

    all_sites: bool = Field(
        False,
        description="Read every site's readings (a central ingest behind bridged edge brokers) "
        "instead of this site's only; the broker ACL must allow it.",
    )

    max_payload_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest readings message (a poll of a big UPS is ~3 KB)."
    )
    max_metrics: int = Field(1000, ge=1, description="Most metrics in one readings message.")
    max_past_s: Seconds | None = Field(
        None,
        description="Oldest poll time accepted, seconds before now; default: the outbox's max_age_s "
        "(nothing older can come from a collector).",
    )
    max_future_s: Seconds = Field(
        300.0,
        description="Poll times this far ahead of ingest's clock are refused (a wrong clock or a "
        "forged message).",
    )
    known_devices_only: bool = Field(
        False,
        description="Accept only devices of this site file, in their configured room (an edge "
        "box); a central ingest fed by several sites leaves it off.",
    )


class RecordsDb(StrictModel):
    """The records database (alert history now, CC-16000 records later): SQLite by default."""

    url: str | None = Field(
        None,
        pattern=r"^(sqlite|postgresql)(\+\w+)?://",
        description="SQLAlchemy URL; default a SQLite file records.db in the state directory. A "
        "PostgreSQL URL names no password: give it in `password`.",
    )
    password: SecretRef | None = Field(None, description="Database password (PostgreSQL).")

    @model_validator(mode="after")
    def _no_inline_password(self) -> Self:
        if self.url and re.match(r"^[^:]+://[^/@]*:[^/@]*@", self.url):
            raise issues_error(
                [{"loc": ("url",), "msg": "the URL holds a password: put it in `password: {env: VAR}`"}]
            )
        return self
