"""Which metrics a profile produces and what kind of value each carries, read from its schema alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from devices.modbus_profile import ModbusPoint, ModbusProfile
from devices.snmp_profile import SnmpProfile, SnmpTable, _SnmpValueSpec
from devices.transform import Transform

if TYPE_CHECKING:
    from devices.registry import Profile

MetricKind = Literal["number", "integer", "bool", "enum", "string"]
Where = tuple[str | int, ...]

# Modbus register types that hold whole numbers (float32/float64 do not).
_INT_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})


@dataclass(frozen=True, slots=True)
class MetricShape:
    """The kind of value one metric carries, its enum states, and where the profile defines it."""

    kind: MetricKind
    states: frozenset[str] = field(default_factory=frozenset)
    where: Where = ()  # key path in the profile file, for located error messages


def profile_metrics(profile: Profile) -> dict[str, MetricShape]:
    """Every metric name the profile can produce → its shape (table templates expanded over known rows)."""
    if isinstance(profile, ModbusProfile):
        return _modbus(profile)
    return _snmp(profile)


def _numeric(t: Transform, whole: bool) -> MetricKind:
    """`integer` only when no step of the transform can produce a fraction."""
    integral = (
        whole
        and float(t.scale).is_integer()
        and float(t.offset).is_integer()
        and t.binary_point is None
        and t.convert is None
        and all(float(s).is_integer() for s in t.alt_scales)
    )
    return "integer" if integral else "number"


def _modbus(profile: ModbusProfile) -> dict[str, MetricShape]:
    out: dict[str, MetricShape] = {}
    for i, p in enumerate(profile.points):
        where: Where = ("points", i)
        if p.type == "bitfield":
            for name in (p.bits or {}).values():
                out[name] = MetricShape("bool", where=where)
        elif p.type == "nibbles":
            states = frozenset(p.nibble_states.values())
            for name in p.metric_names():
                out[name] = MetricShape("enum", states, where)
        else:
            out[p.name] = _modbus_shape(p, where)
    for di, d in enumerate(profile.derived):
        out[d.name] = MetricShape("enum", frozenset(d.one_of.values()), ("derived", di))
    return out


def _modbus_shape(p: ModbusPoint, where: Where) -> MetricShape:
    if p.enum is not None:
        return MetricShape("enum", frozenset(p.enum.values()), where)
    if p.type == "bool":
        return MetricShape("bool", where=where)
    if p.type == "string":
        return MetricShape("string", where=where)
    return MetricShape(_numeric(p, p.type in _INT_TYPES), where=where)


def _snmp_shape(spec: _SnmpValueSpec, where: Where) -> MetricShape:
    if spec.type == "oid":
        if spec.oid_enum is not None:
            return MetricShape("enum", frozenset(spec.oid_enum.values()), where)
        return MetricShape("string", where=where)
    if spec.type == "string":
        return MetricShape("string", where=where)
    if spec.is_bool:
        return MetricShape("bool", where=where)
    if spec.enum is not None:
        return MetricShape("enum", frozenset(spec.enum.values()), where)
    # follows_unit may apply f_to_c at run time: fractions then.
    return MetricShape(_numeric(spec, not spec.follows_unit), where=where)


def _snmp(profile: SnmpProfile) -> dict[str, MetricShape]:
    out: dict[str, MetricShape] = {}
    for i, p in enumerate(profile.scalars):
        out[p.name] = _snmp_shape(p, ("scalars", i))
    for ti, t in enumerate(profile.tables):
        out.update(_table(t, ("tables", ti)))
    for di, d in enumerate(profile.derived):
        where: Where = ("derived", di)
        if d.equals is not None:
            out[d.name] = MetricShape("bool", where=where)
        else:
            src = out.get(d.source)
            out[d.name] = (
                MetricShape(src.kind, src.states, where) if src else MetricShape("string", where=where)
            )
    return out


def _table(t: SnmpTable, where: Where) -> dict[str, MetricShape]:
    out: dict[str, MetricShape] = {}
    if t.kind == "entity_sensor":
        seen: dict[str, int] = {}
        for kind in t.rows.values():
            seen[kind] = seen.get(kind, 0) + 1
            names = t.sensor_names[kind]
            name = names.first if seen[kind] == 1 else names.more.format(n=seen[kind])
            out[name] = MetricShape("number", where=where)
        return out
    # Keyed rows can be any key the map names; indexed rows are those the simulator serves (as it encodes).
    if t.key_column:
        rows = [("", key) for key in dict.fromkeys(t.key_map.values())]
    else:
        rows = [(idx.replace(".", "_"), key) for idx, key in (t.rows or {"1": ""}).items()]
    for ci, col in enumerate(t.columns):
        if col.oid_flags is not None:  # one bool per listed OID, whatever the rows
            for name in col.oid_flags.flags.values():
                out[name] = MetricShape("bool", where=(*where, "columns", ci))
            continue
        shape = _snmp_shape(col, (*where, "columns", ci))
        if col.metric is not None:
            for idx, key in rows:
                out[col.metric.format(index=idx, key=key)] = shape
        if col.aggregate is not None:
            out[col.aggregate.name] = shape
    return out
