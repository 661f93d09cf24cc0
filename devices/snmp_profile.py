"""Schema of an SNMP device profile: scalars, tables, ENTITY-SENSOR rows, derived metrics (pure)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.profile import ProfileBase
from devices.reading import Value
from devices.transform import Transform
from devices.trap_spec import TrapDef

_OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TEMPLATE_RE = re.compile(r"^[a-z{][a-z0-9_{}]*$")

SnmpType = Literal["integer", "gauge", "counter", "timeticks", "string", "oid"]
Aggregation = Literal["max", "min", "sum", "first"]

ENTITY_SENSOR_TABLE = "1.3.6.1.2.1.99.1.1.1"


def _check_oid(value: str, what: str = "oid") -> str:
    value = value.strip().lstrip(".")
    if not _OID_RE.match(value):
        raise ValueError(f"{what} {value!r} is not a numeric OID like 1.3.6.1.2.1.33.1.2.1.0")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Availability(_Strict):
    """The device's own flag saying whether a reading is available (Geist/Vertiv *Avail columns)."""

    oid: str = Field(
        description="Scalars: the flag's instance OID; table columns: its column OID (same row)."
    )
    unavailable: list[int] = Field(min_length=1, description="Flag values that void the reading.")
    example: int = Field(description="Flag value the simulator serves beside a reading (an available one).")
    type: Literal["integer", "gauge"] = "integer"

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v, "availability oid")

    @model_validator(mode="after")
    def _example_available(self) -> Availability:
        if self.example in self.unavailable:
            raise ValueError("availability: example must be an available flag value")
        return self


class _SnmpValueSpec(Transform):
    """Fields shared by scalar points and table columns: how an SNMP value becomes a metric."""

    type: SnmpType = Field("integer", description="SNMP syntax; also what the simulator serves.")
    oid_enum: dict[str, str] | None = Field(
        None, description="OID-valued objects (AutonomousType): value OID → state name."
    )
    true_values: list[int] = Field(
        default_factory=list, description="Raw values meaning True (the metric is then a bool)."
    )
    false_values: list[int] = Field(default_factory=list, description="Raw values meaning False.")
    follows_unit: bool = Field(
        False, description="Temperature in the unit named by the profile's temp_unit selector."
    )
    availability: Availability | None = Field(
        None, description="A flag object that voids the reading when it holds an unavailable value."
    )

    @field_validator("oid_enum")
    @classmethod
    def _enum_oids(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return None if v is None else {_check_oid(k, "oid_enum key"): s for k, s in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> _SnmpValueSpec:
        if bool(self.true_values) != bool(self.false_values):
            raise ValueError("true_values and false_values go together (raw values for True and False)")
        if self.oid_enum is not None and self.type != "oid":
            raise ValueError("oid_enum needs type: oid")
        if self.enum is not None and self.true_values:
            raise ValueError("use either enum or true_values/false_values, not both")
        if self.follows_unit and self.convert is not None:
            raise ValueError("follows_unit picks the conversion at run time; drop convert")
        return self

    @property
    def is_bool(self) -> bool:
        """True when the metric is a boolean (true_values/false_values given)."""
        return bool(self.true_values)

    @property
    def kind(self) -> str:
        """What the decoded value is: oid, string, bool, enum or number."""
        if self.type in ("oid", "string"):
            return self.type
        return "bool" if self.is_bool else "enum" if self.enum is not None else "number"


class SnmpFallback(_SnmpValueSpec):
    """An older object read, with its own transform, when the agent lacks the point's own (older firmware)."""

    oid: str = Field(
        description="Scalars: the fallback's instance OID; table columns: its column OID (same row)."
    )

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v, "fallback oid")


def _check_fallback(spec: _SnmpValueSpec, fallback: SnmpFallback | None) -> None:
    if fallback is not None and fallback.kind != spec.kind:
        raise ValueError(f"fallback decodes to a {fallback.kind}, the point to a {spec.kind}")


class SnmpPoint(_SnmpValueSpec):
    """One scalar object (an OID ending in .0, usually) mapped to one metric."""

    name: str = Field(description="Canonical metric name (unit in the name).")
    oid: str = Field(description="Numeric OID of the instance, e.g. 1.3.6.1.2.1.33.1.2.4.0.")
    example: Value = Field(None, description="Typical value the simulator serves by default.")
    fallback: SnmpFallback | None = Field(
        None, description="Object read instead when the agent does not have this one (older firmware)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"metric name {v!r} must be lower_snake_case")
        return v

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v)

    @model_validator(mode="after")
    def _same_kind(self) -> SnmpPoint:
        _check_fallback(self, self.fallback)
        return self


class Aggregate(_Strict):
    """Derive one canonical metric from a column over every row (3-phase UPS → highest phase)."""

    name: str
    func: Aggregation = "max"


class Polarity(_Strict):
    """Which way a bool column reads, set per row by another column (a configured normal state)."""

    oid: str = Field(description="Column OID (same row index) holding the row's configured polarity.")
    normal: list[int] = Field(min_length=1, description="Its raw values: the bool reads as decoded.")
    inverted: list[int] = Field(min_length=1, description="Its raw values: the bool is negated.")

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v, "polarity oid")

    @model_validator(mode="after")
    def _disjoint(self) -> Polarity:
        if set(self.normal) & set(self.inverted):
            raise ValueError("polarity: a raw value cannot be both normal and inverted")
        return self


class OidFlags(_Strict):
    """A column whose cells are OIDs naming conditions (upsAlarmDescr: upsWellKnownAlarms) → one bool each.

    Each listed OID becomes a bool metric: true when any row of the column holds it, false when the
    table was read and no row does, unavailable when it could not be read. A walk cannot tell an empty
    table from one the agent does not implement, so `count` names the scalar that counts the table's
    rows (RFC 1628 upsAlarmsPresent, "The number of rows in the table at any given time is reflected by
    the value of upsAlarmsPresent"): no rows and a count of 0 is an empty table (all false); no rows and
    the count missing or above 0 is a table not read (all unavailable); fewer rows than the count leaves
    the OIDs not seen unavailable (a row may be missing), while those seen are true.
    """

    count: str = Field(description="Instance OID of the scalar holding the table's row count (…6.1.0).")
    base: str | None = Field(
        None, description="OID the integer keys of `flags` are arcs under (upsWellKnownAlarms …6.3)."
    )
    flags: dict[str, str] = Field(
        min_length=1,
        description="Cell value OID (or an arc under `base`) → bool metric name; other values are ignored.",
    )

    @model_validator(mode="before")
    @classmethod
    def _full_oids(cls, data: object) -> object:
        """Integer keys (or digit strings) are arcs under `base`; dotted keys are whole OIDs."""
        if not isinstance(data, dict) or not isinstance(data.get("flags"), dict):
            return data
        base = data.get("base")
        flags: dict[str, object] = {}
        for key, name in data["flags"].items():
            text = str(key).strip().lstrip(".")
            if text.isdigit():
                if not isinstance(base, str):
                    raise ValueError(f"oid_flags: key {key!r} is an arc: it needs base")
                text = f"{_check_oid(base, 'oid_flags base')}.{int(text)}"
            full = _check_oid(text, "oid_flags key")
            if full in flags:
                raise ValueError(f"oid_flags: {full} is listed twice")
            flags[full] = name
        return {**data, "flags": flags}

    @field_validator("count")
    @classmethod
    def _count(cls, v: str) -> str:
        return _check_oid(v, "oid_flags count")

    @field_validator("base")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        return None if v is None else _check_oid(v, "oid_flags base")

    @field_validator("flags")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [n for n in v.values() if not _NAME_RE.match(n)]
        if bad:
            raise ValueError(f"oid_flags: metric names {bad} must be lower_snake_case")
        dup = sorted({n for n in v.values() if list(v.values()).count(n) > 1})
        if dup:
            raise ValueError(f"oid_flags: metric names {dup} are listed twice")
        return v


class SnmpColumn(_SnmpValueSpec):
    """One table column; `metric` is a template using `{index}` (row index) and/or `{key}`."""

    oid: str = Field(description="Column OID without the row index, e.g. 1.3.6.1.2.1.33.1.4.4.1.5.")
    metric: str | None = Field(None, description="Per-row metric name template; None = aggregate only.")
    aggregate: Aggregate | None = None
    example: Value = None
    polarity: Polarity | None = Field(
        None, description="Bool columns: negate per row by another column; unknown polarity = unavailable."
    )
    fallback: SnmpFallback | None = Field(
        None, description="Column read instead, per row, when the agent does not have this one."
    )
    oid_flags: OidFlags | None = Field(
        None, description="OID-valued column (type: oid): one bool per listed OID, true when a row holds it."
    )

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v, "column oid")

    @field_validator("metric")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and not _TEMPLATE_RE.match(v):
            raise ValueError(f"metric template {v!r} must be lower_snake_case with {{index}} / {{key}}")
        return v

    @model_validator(mode="after")
    def _some_output(self) -> SnmpColumn:
        if self.oid_flags is not None:
            _check_oid_flags(self)
            return self
        if self.metric is None and self.aggregate is None:
            raise ValueError("a column needs a metric template, an aggregate, or both")
        if self.polarity is not None and not self.is_bool:
            raise ValueError("polarity applies to bool columns (true_values/false_values)")
        _check_fallback(self, self.fallback)
        return self


def _check_oid_flags(col: SnmpColumn) -> None:
    """An oid_flags column makes only its flags: an OID-valued column with nothing per row."""
    if col.type != "oid":
        raise ValueError("oid_flags needs type: oid (the cells are OIDs)")
    per_row = {
        "metric": col.metric,
        "aggregate": col.aggregate,
        "polarity": col.polarity,
        "fallback": col.fallback,
        "availability": col.availability,
        "oid_enum": col.oid_enum,
        "example": col.example,
    }
    given = sorted(k for k, v in per_row.items() if v is not None)
    if given:
        raise ValueError(f"oid_flags makes only its bool metrics; drop {given}")


class EntitySensorNames(_Strict):
    """ENTITY-SENSOR-MIB sensor type → metric name (first sensor) and template for further ones."""

    first: str
    more: str = Field(description="Template with {n}: 2 for the second sensor of that type, …")


def _default_entity_names() -> dict[str, EntitySensorNames]:
    return {
        "celsius": EntitySensorNames(first="temp_c", more="probe{n}_temp_c"),
        "percentRH": EntitySensorNames(first="rh_pct", more="probe{n}_rh_pct"),
    }


class SnmpTable(_Strict):
    """A conceptual table walked with GETBULK, or an ENTITY-SENSOR-MIB entPhySensorTable."""

    name: str
    kind: Literal["columns", "entity_sensor"] = "columns"
    columns: list[SnmpColumn] = Field(default_factory=list)
    key_column: str | None = Field(
        None, description="Column OID whose value names the row (LIEBERT-GP Descr = well-known OID)."
    )
    key_map: dict[str, str] = Field(
        default_factory=dict, description="Key column value → {key} in templates; unmapped rows are skipped."
    )
    rows: dict[str, str] = Field(
        default_factory=dict,
        description="Rows the simulator serves: index → key name (columns) or sensor type (entity_sensor).",
    )
    examples: dict[str, Value] = Field(default_factory=dict, description="Per-metric simulator values.")
    root: str = Field(ENTITY_SENSOR_TABLE, description="entity_sensor only: the entPhySensorEntry OID.")
    sensor_names: dict[str, EntitySensorNames] = Field(default_factory=_default_entity_names)

    @field_validator("key_column", "root")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        return None if v is None else _check_oid(v)

    @field_validator("key_map")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        return {(k if not _OID_RE.match(k.lstrip(".")) else k.lstrip(".")): s for k, s in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> SnmpTable:
        if self.kind == "entity_sensor":
            if self.columns or self.key_column:
                raise ValueError(f"table {self.name}: entity_sensor tables take no columns/key_column")
            bad = {t for t in self.rows.values() if t not in self.sensor_names}
            if bad:
                raise ValueError(
                    f"table {self.name}: rows name unknown sensor types {sorted(bad)}; "
                    f"valid: {sorted(self.sensor_names)}"
                )
            return self
        if not self.columns:
            raise ValueError(f"table {self.name}: needs at least one column")
        if any(c.oid_flags for c in self.columns) and (
            len(self.columns) > 1 or self.key_column or self.rows or self.examples
        ):
            raise ValueError(
                f"table {self.name}: an oid_flags column is its table's only column, without key_column, "
                "rows or examples (the simulator serves one row per true flag)"
            )
        uses_key = any(c.metric and "{key}" in c.metric for c in self.columns)
        if uses_key and not (self.key_column and self.key_map):
            raise ValueError(f"table {self.name}: {{key}} in a metric template needs key_column and key_map")
        if self.key_column and self.rows:
            unknown = set(self.rows.values()) - set(self.key_map.values())
            if unknown:
                raise ValueError(f"table {self.name}: rows use keys {sorted(unknown)} not in key_map")
        return self

    def key_raw(self, key: str) -> str:
        """Inverse of key_map: the key column value for a key name."""
        for raw, name in self.key_map.items():
            if name == key:
                return raw
        raise KeyError(key)


class Derived(_Strict):
    """A metric computed from another one: a copy, or a bool `source in equals`."""

    name: str
    source: str
    equals: list[str | int | bool] | None = None


class TempUnitSelector(_Strict):
    """An OID whose value says whether `follows_unit` temperatures are °F or °C (Geist .1.7.0)."""

    oid: str
    fahrenheit: list[int] = Field(default_factory=lambda: [0])
    celsius: list[int] = Field(default_factory=lambda: [1])

    @field_validator("oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        return _check_oid(v)


class SnmpMatch(_Strict):
    """How the commissioning probe recognises a device for this profile."""

    sys_object_ids: list[str] = Field(default_factory=list, description="sysObjectID prefixes.")
    requires_oids: list[str] = Field(
        default_factory=list, description="OID prefixes that must all be present in the walk (MIB support)."
    )

    @field_validator("sys_object_ids", "requires_oids")
    @classmethod
    def _oids(cls, v: list[str]) -> list[str]:
        return [_check_oid(o) for o in v]


class SnmpProfile(ProfileBase):
    """A device model read over SNMP."""

    protocol: Literal["snmp"]
    match: SnmpMatch = Field(default_factory=SnmpMatch)
    temp_unit: TempUnitSelector | None = None
    scalars: list[SnmpPoint] = Field(default_factory=list)
    tables: list[SnmpTable] = Field(default_factory=list)
    derived: list[Derived] = Field(default_factory=list)
    traps: list[TrapDef] = Field(
        default_factory=list, description="Notifications this model sends (decoded by the trap receiver)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SnmpProfile:
        for what in ("name", "oid"):
            keys = [getattr(t, what) for t in self.traps]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"traps: {what} {dup} declared twice")
        seen: set[str] = set()
        for p in self.scalars:
            if p.name in seen:
                raise ValueError(f"scalar {p.name!r} is defined twice")
            seen.add(p.name)
        for t in self.tables:
            for c in t.columns:
                if c.aggregate is not None:
                    seen.add(c.aggregate.name)
                for name in c.oid_flags.flags.values() if c.oid_flags else ():
                    if name in seen:
                        raise ValueError(f"oid_flags metric {name!r} is defined twice")
                    seen.add(name)
        for d in self.derived:
            if d.source not in seen and not any(t.columns for t in self.tables if t.kind == "columns"):
                raise ValueError(f"derived {d.name!r}: source {d.source!r} is not a metric of this profile")
            seen.add(d.name)
        points: list[SnmpPoint | SnmpColumn] = [*self.scalars, *(c for t in self.tables for c in t.columns)]
        follows = any(p.follows_unit or (p.fallback and p.fallback.follows_unit) for p in points)
        if follows and self.temp_unit is None:
            raise ValueError("follows_unit points need a temp_unit selector")
        return self
