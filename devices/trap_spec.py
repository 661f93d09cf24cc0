"""Schema of the traps a device model sends (a profile's `traps:`), and the pure varbind ↔ field codecs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.reading import DeviceClass, Value

if TYPE_CHECKING:  # snmp_codec imports snmp_profile, which imports this module
    from devices.snmp_codec import Encoded, SnmpValue

_OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _oid(value: str, what: str) -> str:
    value = value.strip().lstrip(".")
    if not _OID_RE.match(value):
        raise ValueError(f"{what} {value!r} is not a numeric OID like 1.3.6.1.2.1.33.2.1")
    return value


def _snake(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"{what} {value!r} must be lower_snake_case")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrapVarbind(_Strict):
    """One object a trap carries, and how its value becomes an event field (and back, for the simulator)."""

    oid: str = Field(description="Object OID without the instance (a scalar, or a table column).")
    field: str | None = Field(None, description="Event field it fills; None = carried, not decoded.")
    type: Literal["integer", "string", "oid"] = "integer"
    scale: float = Field(1.0, gt=0, description="Field = raw * scale (upsEstimatedMinutesRemaining → s: 60).")
    enum: dict[int, str] | None = Field(None, description="Raw value (type oid: arc below oid_base) → state.")
    oid_base: str | None = Field(None, description="type oid with enum: the value is oid_base.N.")
    true_values: list[int] = Field(
        default_factory=list, description="Raw values meaning True (a bool field)."
    )
    false_values: list[int] = Field(default_factory=list, description="Raw values meaning False.")
    sentinels: list[int] = Field(default_factory=list, description="Raw values meaning 'not known'.")
    missing: Value = Field(
        None, description="Field value when absent, a sentinel, of another type, unmapped."
    )
    unknown: str | None = Field(
        None, description="Template for enum values not mapped ({raw}); None = use `missing`."
    )
    row: str | None = Field(
        None, description="A table column whose instance index is this field's value (upsAlarmId)."
    )
    example: int | str | None = Field(
        None, description="What the simulator sends when the model has no value."
    )

    @field_validator("oid", "oid_base")
    @classmethod
    def _oids(cls, v: str | None) -> str | None:
        return None if v is None else _oid(v, "oid")

    @field_validator("field", "row")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return None if v is None else _snake(v, "field")

    @model_validator(mode="after")
    def _consistent(self) -> TrapVarbind:
        if bool(self.true_values) != bool(self.false_values):
            raise ValueError("true_values and false_values go together (raw values for True and False)")
        if self.true_values and (self.enum is not None or self.type != "integer"):
            raise ValueError("a bool field (true_values/false_values) is an integer without enum")
        if self.type == "oid" and self.enum is not None and self.oid_base is None:
            raise ValueError("type oid with enum needs oid_base (the enum maps the arc below it)")
        if self.oid_base is not None and (self.type != "oid" or self.enum is None):
            raise ValueError("oid_base goes with type oid and an enum")
        if self.field is None and (self.enum or self.true_values or self.row):
            raise ValueError("a varbind without a field is only carried: enum/true_values/row need a field")
        return self

    def find(self, varbinds: Mapping[str, SnmpValue]) -> tuple[str, SnmpValue] | None:
        """The first received varbind that is an instance of this object, as (oid, value)."""
        prefix = self.oid + "."
        for oid, value in varbinds.items():
            if oid == self.oid or oid.startswith(prefix):
                return oid, value
        return None

    def index(self, oid: str) -> int | None:
        """The instance index of a received varbind of this object, when it is one number."""
        rest = oid[len(self.oid) + 1 :]
        return int(rest) if rest.isdigit() else None

    def decode(self, raw: SnmpValue | None) -> Value:
        """A received value → the field's value (`missing` when it cannot say)."""
        if raw is None:  # NO_SUCH and bytes fall through the type checks below to `missing`
            return self.missing
        if self.type == "string":
            return raw if isinstance(raw, str) else self.missing
        if self.type == "oid":
            return self._decode_oid(raw)
        if not isinstance(raw, int) or raw in self.sentinels:
            return self.missing
        if self.true_values:
            return True if raw in self.true_values else False if raw in self.false_values else self.missing
        if self.enum is not None:
            return self._state(raw)
        value = raw * self.scale
        return int(value) if float(self.scale).is_integer() else round(value, 6)

    def _decode_oid(self, raw: SnmpValue) -> Value:
        if not isinstance(raw, str):
            return self.missing
        text = raw.lstrip(".")
        if self.oid_base is None:
            return text
        arc = text[len(self.oid_base) + 1 :] if text.startswith(self.oid_base + ".") else ""
        return self._state(int(arc)) if arc.isdigit() else self.missing

    def _state(self, raw: int) -> Value:
        state = (self.enum or {}).get(raw)
        if state is not None:
            return state
        return self.unknown.format(raw=raw) if self.unknown is not None else self.missing

    def encode(self, value: Value) -> Encoded | None:
        """A field value → what the simulator puts in the varbind; None when it cannot be sent."""
        if value is None:
            return None
        if self.type == "string":
            return ("string", str(value))
        if self.type == "oid":
            if self.oid_base is None:
                return ("oid", str(value))
            arc = self._raw_for(value)
            return None if arc is None else ("oid", f"{self.oid_base}.{arc}")
        if self.true_values:
            return ("integer", self.true_values[0] if value else self.false_values[0])
        if self.enum is not None:
            raw = self._raw_for(value)
            return None if raw is None else ("integer", raw)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return ("integer", round(float(value) / self.scale))

    def _raw_for(self, state: Value) -> int | None:
        return next((raw for raw, s in (self.enum or {}).items() if s == state), None)


class TrapSend(_Strict):
    """When a simulated device of this model sends the trap: on a bool metric's rise, fall or change."""

    when: str = Field(description="A bool metric of the device model (on_battery, door_open).")
    on: Literal["rise", "fall", "change"] = "rise"
    repeat_s: float | None = Field(
        None, gt=0, description="While `when` holds, send again at this interval (a persistent trap)."
    )
    repeat_unless: dict[str, list[Value]] = Field(
        default_factory=dict, description="No repeat while one of these metrics has one of these values."
    )
    set: dict[str, Value] = Field(default_factory=dict, description="Field values this trap always carries.")
    count: str | None = Field(
        None, description="A field numbering the occurrences of `when` (a new alarm row each time it rises)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrapSend:
        _snake(self.when, "when")
        if self.repeat_s is not None and self.on != "rise":
            raise ValueError("repeat_s: only a trap sent on rise repeats while its condition holds")
        return self


class TrapDef(_Strict):
    """One notification a device model sends: its OID and name, what it means, and its varbinds."""

    name: str = Field(description="The MIB's name for it (upsTrapOnBattery).")
    oid: str = Field(description="snmpTrapOID value.")
    means: str = Field(description="What it says happened, lower_snake (on_battery, door_change, …).")
    device_class: DeviceClass | None = Field(
        None, description="Class of the thing it is about; default the profile's."
    )
    fields: dict[str, Value] = Field(default_factory=dict, description="Fields the trap implies by itself.")
    varbinds: list[TrapVarbind] = Field(default_factory=list)
    match_varbind: bool = Field(
        False,
        description="Also decode any trap no profile names that carries this trap's first field varbind "
        "(for vendors whose trap OIDs vary by alert, the sensor value being what counts).",
    )
    send: TrapSend | None = Field(None, description="When the simulator sends it; None = never.")

    @field_validator("oid")
    @classmethod
    def _trap_oid(cls, v: str) -> str:
        return _oid(v, "trap oid")

    @field_validator("means")
    @classmethod
    def _means(cls, v: str) -> str:
        return _snake(v, "means")

    @model_validator(mode="after")
    def _consistent(self) -> TrapDef:
        decoded = [v.field for v in self.varbinds if v.field is not None]
        dup = sorted({f for f in decoded if decoded.count(f) > 1} | (set(decoded) & set(self.fields)))
        if dup:
            raise ValueError(f"trap {self.name}: fields {dup} are filled twice")
        for f in self.fields:
            _snake(f, "field")
        rows = {v.row for v in self.varbinds if v.row is not None}
        if rows - set(decoded):
            raise ValueError(
                f"trap {self.name}: row {sorted(rows - set(decoded))} names no field of its varbinds"
            )
        if self.match_varbind and not decoded:
            raise ValueError(f"trap {self.name}: match_varbind needs a varbind with a field")
        if self.send is not None:
            named = [*self.send.set, *([self.send.count] if self.send.count else [])]
            unknown = sorted(set(named) - set(decoded))
            if unknown:
                raise ValueError(f"trap {self.name}: send names {unknown}, not fields of its varbinds")
        return self

    @property
    def key_varbind(self) -> TrapVarbind | None:
        """The varbind `match_varbind` recognises a trap by: the first one that fills a field."""
        return next((v for v in self.varbinds if v.field is not None), None)

    def decoded_oids(self, varbinds: Mapping[str, SnmpValue]) -> set[str]:
        """The received varbind OIDs that fill an event field (the rest are only carried)."""
        return {
            hit[0] for v in self.varbinds if v.field is not None and (hit := v.find(varbinds)) is not None
        }

    def decode(self, varbinds: Mapping[str, SnmpValue]) -> dict[str, Value]:
        """The event fields of one received trap (pure)."""
        event: dict[str, Value] = dict(self.fields)
        found = {id(v): v.find(varbinds) for v in self.varbinds}
        for v in self.varbinds:
            if v.field is not None:
                hit = found[id(v)]
                event[v.field] = v.decode(hit[1] if hit else None)
        # A row's index names the row: upsAlarmId is not-accessible, so cards often send only upsAlarmDescr.N.
        for v in self.varbinds:
            hit = found[id(v)]
            if v.row is not None and event.get(v.row) is None and hit is not None:
                event[v.row] = v.index(hit[0])
        return event
