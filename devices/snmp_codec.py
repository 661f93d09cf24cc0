"""SNMP varbinds ↔ metrics for an SnmpProfile (pure: no pysnmp, values are plain Python)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from devices.reading import Metric, Quality, Value
from devices.snmp_profile import (
    Availability,
    Derived,
    OidFlags,
    Polarity,
    SnmpColumn,
    SnmpFallback,
    SnmpPoint,
    SnmpProfile,
    SnmpTable,
    _SnmpValueSpec,
)
from devices.transform import Transform


class Oid(str):
    """An OBJECT IDENTIFIER value (distinct from a DisplayString that happens to look like one)."""

    __slots__ = ()


class _NoSuch:
    """Marker for noSuchObject / noSuchInstance / endOfMibView: the agent has no such value."""

    _instance: _NoSuch | None = None

    def __new__(cls) -> _NoSuch:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_SUCH"

    def __bool__(self) -> bool:
        return False


NO_SUCH: Final = _NoSuch()
SnmpValue = int | str | bytes | _NoSuch
Encoded = tuple[str, int | str | None]  # (snmp type, raw); type "nosuch" = serve noSuchInstance

# ENTITY-SENSOR-MIB (RFC 3433) entPhySensorType codes for the sensor kinds we turn into metrics.
ENTITY_TYPES: Final = {
    8: "celsius",
    9: "percentRH",
    3: "voltsAC",
    4: "voltsDC",
    5: "amperes",
    6: "watts",
    7: "hertz",
    10: "rpm",
    12: "truthvalue",
}
_ENTITY_CODES: Final = {v: k for k, v in ENTITY_TYPES.items()}
# Decimal places a simulator serves per sensor type (RFC 3433: percentRH is not a fixed-point type).
_ENTITY_PRECISION: Final = {"percentRH": 0}
_ENTITY_LIMIT: Final = 1_000_000_000  # RFC 3433: ±1e9 mean underflow/overflow, not a value


@dataclass(frozen=True, slots=True)
class SnmpPlan:
    """What to ask a device for one poll: scalar OIDs to GET and column OIDs to walk."""

    get_oids: tuple[str, ...]
    walk_roots: tuple[str, ...]


def plan_requests(profile: SnmpProfile) -> SnmpPlan:
    """The GET list and GETBULK subtrees one poll of `profile` needs."""
    gets = [oid for p in profile.scalars for oid in _spec_oids(p.oid, p, p.fallback)]
    if profile.temp_unit is not None:
        gets.append(profile.temp_unit.oid)
    # An oid_flags column's row count says whether an empty walk is an empty table.
    gets.extend(c.oid_flags.count for t in profile.tables for c in t.columns if c.oid_flags is not None)
    roots: list[str] = []
    for t in profile.tables:
        roots.extend(_table_roots(t))
    return SnmpPlan(tuple(dict.fromkeys(gets)), tuple(dict.fromkeys(roots)))


def _table_roots(t: SnmpTable) -> list[str]:
    if t.kind == "entity_sensor":
        return [f"{t.root}.{c}" for c in (1, 2, 3, 4, 5)]  # type, scale, precision, value, operStatus
    roots = [oid for c in t.columns for oid in _spec_oids(c.oid, c, c.fallback)]
    roots.extend(c.polarity.oid for c in t.columns if c.polarity is not None)
    if t.key_column:
        roots.insert(0, t.key_column)
    return roots


def _spec_oids(oid: str, spec: _SnmpValueSpec, fallback: SnmpFallback | None) -> list[str]:
    """A point's or column's OID, its fallback's, and their availability flags'."""
    out = [oid]
    if spec.availability is not None:
        out.append(spec.availability.oid)
    if fallback is not None:
        out.extend(_spec_oids(fallback.oid, fallback, None))
    return out


def oid_key(oid: str) -> tuple[int, ...]:
    """Sort key for numeric OIDs (lexicographic by arc, as SNMP orders them)."""
    return tuple(int(x) for x in oid.split("."))


def column_cells(values: Mapping[str, SnmpValue], column_oid: str) -> dict[str, SnmpValue]:
    """Row index → value for every instance of one column present in `values`, in index order."""
    prefix = column_oid + "."
    n = len(prefix)
    cells = {oid[n:]: v for oid, v in values.items() if oid.startswith(prefix) and v is not NO_SUCH}
    return dict(sorted(cells.items(), key=lambda kv: oid_key(kv[0])))


# ---------------------------------------------------------------------------------------------- decode


class _Decoder:
    """One decode pass; keeps the °F/°C decision and the f_to_c transform copies."""

    _f_cache: dict[int, tuple[_SnmpValueSpec, Transform]] = {}

    def __init__(self, profile: SnmpProfile, values: Mapping[str, SnmpValue]) -> None:
        self.profile = profile
        self.values = values
        self._cells: dict[str, dict[str, SnmpValue]] = {}
        self.fahrenheit: bool | None = False
        sel = profile.temp_unit
        if sel is not None:
            raw = values.get(sel.oid, NO_SUCH)
            self.fahrenheit = True if raw in sel.fahrenheit else False if raw in sel.celsius else None

    def value(self, name: str, spec: _SnmpValueSpec, raw: SnmpValue | None) -> Metric:
        if raw is None or raw is NO_SUCH:
            return Metric(name, None, Quality.UNAVAILABLE)
        if spec.type == "oid" or isinstance(raw, Oid):
            oid = str(raw).lstrip(".")
            if spec.oid_enum is not None:
                return Metric(name, spec.oid_enum.get(oid, "unknown"))
            return Metric(name, oid)
        if spec.type == "string":
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return Metric(name, text.rstrip("\x00 "))
        number = _as_number(raw)
        if number is None:
            return Metric(name, None, Quality.DECODE_ERROR)
        if spec.is_bool:
            if isinstance(number, int) and number in spec.sentinels:
                return Metric(name, None, Quality.UNAVAILABLE)
            if number in spec.true_values:
                return Metric(name, True)
            if number in spec.false_values:
                return Metric(name, False)
            return Metric(name, None, Quality.UNAVAILABLE)
        transform: Transform = spec
        if spec.follows_unit:
            if self.fahrenheit is None:  # never guess: 77 could be °F or a hot room in °C
                return Metric(name, None, Quality.UNAVAILABLE)
            if self.fahrenheit:
                transform = self._fahrenheit(spec)
        return transform.apply(name, number)

    def _fahrenheit(self, spec: _SnmpValueSpec) -> Transform:
        hit = self._f_cache.get(id(spec))
        if hit is None or hit[0] is not spec:  # id() may be reused once a profile is gone
            hit = (spec, spec.model_copy(update={"convert": "f_to_c"}))
            self._f_cache[id(spec)] = hit
        return hit[1]

    def scalars(self) -> list[Metric]:
        return [self.point(p) for p in self.profile.scalars]

    def point(self, p: SnmpPoint) -> Metric:
        """A scalar: its own object, or its fallback's when the agent lacks it; then its availability."""
        spec: _SnmpValueSpec = p
        raw = self.values.get(p.oid)
        if p.fallback is not None and (raw is None or raw is NO_SUCH):
            spec, raw = p.fallback, self.values.get(p.fallback.oid)
        m = self.value(p.name, spec, raw)
        if spec.availability is not None:
            m = _if_available(m, spec.availability, self.values.get(spec.availability.oid))
        return m

    def cells(self, column_oid: str) -> dict[str, SnmpValue]:
        """Row index → value of one column (computed once per decode)."""
        hit = self._cells.get(column_oid)
        if hit is None:
            hit = self._cells[column_oid] = column_cells(self.values, column_oid)
        return hit

    def cell(self, name: str, col: SnmpColumn, idx: str) -> Metric:
        """One row of a column: its cell, or its fallback column's; then availability and polarity."""
        spec: _SnmpValueSpec = col
        raw = self.cells(col.oid).get(idx)
        if raw is None and col.fallback is not None:
            spec, raw = col.fallback, self.cells(col.fallback.oid).get(idx)
        m = self.value(name, spec, raw)
        if spec.availability is not None:
            m = _if_available(m, spec.availability, self.cells(spec.availability.oid).get(idx))
        if col.polarity is not None:
            m = _polarised(m, col.polarity, self.cells(col.polarity.oid).get(idx))
        return m

    def table(self, t: SnmpTable) -> list[Metric]:
        if t.kind == "entity_sensor":
            return self.entity(t)
        out: list[Metric] = []
        keys: dict[str, str] = {}
        if t.key_column:
            for idx, raw in self.cells(t.key_column).items():
                key = t.key_map.get(str(raw).lstrip("."))
                if key is not None:  # rows with an unmapped key (e.g. compressor probes) are not ours
                    keys[idx] = key
            rows = list(keys)
        else:
            data = [c.oid for c in t.columns] + [c.fallback.oid for c in t.columns if c.fallback is not None]
            rows = sorted({i for oid in data for i in self.cells(oid)}, key=oid_key)
        for col in t.columns:
            if col.oid_flags is not None:
                out.extend(self.flags(col.oid, col.oid_flags))
                continue
            per_row = [self.cell(_name(col, idx, keys.get(idx, "")), col, idx) for idx in rows]
            if col.metric is not None:
                out.extend(per_row)
            if col.aggregate is not None:
                out.append(_aggregate(col.aggregate.name, col.aggregate.func, per_row))
        return out

    def flags(self, column_oid: str, spec: OidFlags) -> list[Metric]:
        """One bool per listed OID: does any row of the column hold it (see OidFlags for unavailable)."""
        held = {str(v).lstrip(".") for v in self.cells(column_oid).values()}
        count = _as_int(self.values.get(spec.count))
        if not held and count != 0:  # no rows, and the agent does not say the table is empty
            return [Metric(name, None, Quality.UNAVAILABLE) for name in spec.flags.values()]
        complete = count is None or count <= len(self.cells(column_oid))
        return [
            Metric(name, True)
            if oid in held
            else Metric(name, False)
            if complete
            else Metric(name, None, Quality.UNAVAILABLE)
            for oid, name in spec.flags.items()
        ]

    def entity(self, t: SnmpTable) -> list[Metric]:
        cols = {c: column_cells(self.values, f"{t.root}.{c}") for c in (1, 2, 3, 4, 5)}
        seen: dict[str, int] = {}
        out: list[Metric] = []
        for idx, type_code in cols[1].items():
            kind = ENTITY_TYPES.get(_as_int(type_code) or 0)
            names = t.sensor_names.get(kind or "")
            if kind is None or names is None:
                continue
            seen[kind] = seen.get(kind, 0) + 1
            name = names.first if seen[kind] == 1 else names.more.format(n=seen[kind])
            out.append(_entity_metric(name, *(_as_int(cols[c].get(idx)) for c in (2, 3, 4, 5))))
        return out

    def derived(self, d: Derived, got: Mapping[str, Metric]) -> Metric:
        src = got.get(d.source)
        if src is None or src.quality is not Quality.GOOD:
            return Metric(d.name, None, Quality.UNAVAILABLE)
        if d.equals is None:
            return Metric(d.name, src.value)
        return Metric(d.name, src.value in d.equals)


def decode(profile: SnmpProfile, values: Mapping[str, SnmpValue]) -> list[Metric]:
    """Turn the varbinds of one poll (GET results and walked subtrees, merged) into metrics."""
    dec = _Decoder(profile, values)
    metrics = dec.scalars()
    for t in profile.tables:
        metrics.extend(dec.table(t))
    got = {m.name: m for m in metrics}
    for d in profile.derived:
        m = dec.derived(d, got)
        got[m.name] = m
        metrics.append(m)
    return metrics


def _name(col: SnmpColumn, index: str, key: str) -> str:
    template = col.metric or (col.aggregate.name + "_{index}" if col.aggregate else "{index}")
    return template.format(index=index.replace(".", "_"), key=key)


def _if_available(m: Metric, availability: Availability, raw: SnmpValue | None) -> Metric:
    """The reading unless its availability flag says unavailable (a missing flag voids nothing)."""
    if _as_int(raw) in availability.unavailable:
        return Metric(m.name, None, Quality.UNAVAILABLE)
    return m


def _polarised(m: Metric, polarity: Polarity, raw: SnmpValue | None) -> Metric:
    """A bool reading through its row's polarity cell; a missing or unknown polarity is unavailable."""
    if m.quality is not Quality.GOOD:
        return m
    code = _as_int(raw)
    if code in polarity.normal:
        return m
    if code in polarity.inverted:
        return Metric(m.name, not m.value)
    return Metric(m.name, None, Quality.UNAVAILABLE)


def _aggregate(name: str, func: str, rows: list[Metric]) -> Metric:
    good = [m.value for m in rows if m.quality is Quality.GOOD and isinstance(m.value, int | float)]
    if not good:
        return Metric(name, None, Quality.UNAVAILABLE)
    if func == "max":
        return Metric(name, max(good))
    if func == "min":
        return Metric(name, min(good))
    if func == "sum":
        return Metric(name, round(sum(good), 6))
    return Metric(name, good[0])


def _entity_metric(
    name: str, scale: int | None, precision: int | None, value: int | None, oper: int | None
) -> Metric:
    # RFC 3433: value * 10^(3*(scale-9)) / 10^precision; operStatus 1 = ok, else no usable value.
    # EntitySensorPrecision 1..9 counts decimal places; -8..-1 counts accurate digits and scales nothing.
    if oper != 1 or value is None or abs(value) >= _ENTITY_LIMIT:
        return Metric(name, None, Quality.UNAVAILABLE)
    exp10 = 3 * ((scale if scale is not None else 9) - 9) - max(precision or 0, 0)
    v = value * 10.0**exp10
    return Metric(name, round(v, max(0, -exp10) + 1) if exp10 < 0 else v)


def _as_number(raw: SnmpValue) -> int | float | None:
    if isinstance(raw, int):
        return raw
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    try:  # some agents return numbers as DisplayString ("22.5"): accept, they are still numbers
        f = float(text.strip())
    except ValueError:
        return None
    return int(f) if f.is_integer() else f


def _as_int(raw: SnmpValue | None) -> int | None:
    n = None if raw is None or raw is NO_SUCH else _as_number(raw)
    return int(n) if n is not None else None


# ---------------------------------------------------------------------------------------------- encode


def encode_profile(profile: SnmpProfile, values: Mapping[str, Value]) -> dict[str, Encoded]:
    """Metric values (examples where absent) → OID → (snmp type, raw) a simulator serves."""
    vals = _apply_derived(profile, dict(values))
    out: dict[str, Encoded] = {}
    if profile.temp_unit is not None:  # the simulator always serves °C
        out[profile.temp_unit.oid] = ("integer", profile.temp_unit.celsius[0])
    for p in profile.scalars:
        enc = _encode_value(p, vals.get(p.name, p.example), p.name in vals)
        if enc is not None:
            out[p.oid] = enc
            _encode_flag(out, p.availability, p.availability.oid if p.availability else "", enc)
    for t in profile.tables:
        out.update(_encode_table(t, vals, out))
    return dict(sorted(out.items(), key=lambda kv: oid_key(kv[0])))


def _apply_derived(profile: SnmpProfile, vals: dict[str, Value]) -> dict[str, Value]:
    # Setting a derived bool (on_battery=True) sets its source to the first matching state.
    for d in profile.derived:
        if d.name not in vals:
            continue
        wanted = vals.pop(d.name)
        if d.source in vals:
            continue
        if d.equals is None:
            vals[d.source] = wanted
        elif wanted is True:
            vals[d.source] = d.equals[0]
    return vals


def _encode_value(spec: _SnmpValueSpec, value: Value, explicit: bool) -> Encoded | None:
    if value is None:
        if not explicit:
            return None  # no example: the object is simply not implemented
        return ("integer", spec.sentinels[0]) if spec.sentinels else ("nosuch", None)
    if spec.type == "oid":
        if spec.oid_enum is not None:
            for oid, state in spec.oid_enum.items():
                if state == value:
                    return ("oid", oid)
            raise ValueError(f"{value!r} is not one of {sorted(spec.oid_enum.values())}")
        return ("oid", str(value))
    if spec.type == "string":
        return ("string", str(value))
    if spec.is_bool:
        return (spec.type, spec.true_values[0] if value else spec.false_values[0])
    return (spec.type, round(spec.invert(value)))


def _encode_table(
    t: SnmpTable, vals: Mapping[str, Value], served: Mapping[str, Encoded]
) -> dict[str, Encoded]:
    rows = t.rows or {"1": ""}
    out: dict[str, Encoded] = {}
    if t.kind == "entity_sensor":
        seen: dict[str, int] = {}
        for idx, kind in rows.items():
            seen[kind] = seen.get(kind, 0) + 1
            names = t.sensor_names[kind]
            name = names.first if seen[kind] == 1 else names.more.format(n=seen[kind])
            v = vals.get(name, t.examples.get(name))
            # Served with scale units(9): celsius as precision 1 (tenths); percentRH as precision 0, which
            # RFC 3433 entPhySensorPrecision asks for ("SHOULD be set to '0' when the associated
            # entPhySensorType value is not a fixed-point type: e.g., 'percentRH(9)'"). No value →
            # operStatus unavailable(2).
            precision = _ENTITY_PRECISION.get(kind, 1)
            reading = round(float(v) * 10**precision) if isinstance(v, int | float) else None
            for n, raw in (
                (1, _ENTITY_CODES[kind]),
                (2, 9),
                (3, precision),
                (4, reading or 0),
                (5, 1 if reading is not None else 2),
            ):
                out[f"{t.root}.{n}.{idx}"] = ("integer", raw)
        return out
    flag_col = next((c for c in t.columns if c.oid_flags is not None), None)
    if flag_col is not None and flag_col.oid_flags is not None:
        return _encode_flags(flag_col.oid, flag_col.oid_flags, vals, served)
    for idx, key in rows.items():
        if t.key_column:
            raw_key = t.key_raw(key)
            out[f"{t.key_column}.{idx}"] = ("oid", raw_key) if "." in raw_key else ("integer", int(raw_key))
        for col in t.columns:
            name = _name(col, idx, key)
            if name in vals:
                value, explicit = vals[name], True
            elif col.aggregate is not None and col.aggregate.name in vals:
                agg = vals[col.aggregate.name]
                value, explicit = agg, True
                if col.aggregate.func == "sum" and isinstance(agg, int | float):
                    value = agg / len(rows)
            else:
                value, explicit = t.examples.get(name, col.example), False
            enc = _encode_value(col, value, explicit)
            if enc is not None:
                flag_oid = f"{col.availability.oid}.{idx}" if col.availability else ""
                _encode_flag(out, col.availability, flag_oid, enc)
            if enc is not None and enc[0] != "nosuch":
                out[f"{col.oid}.{idx}"] = enc
                if col.polarity is not None:  # served as configured the normal way round
                    out[f"{col.polarity.oid}.{idx}"] = ("integer", col.polarity.normal[0])
    return out


def _encode_flags(
    column_oid: str, spec: OidFlags, vals: Mapping[str, Value], served: Mapping[str, Encoded]
) -> dict[str, Encoded]:
    """One row per true flag (ids 1, 2, … in the flags' order) and the row count beside them."""
    held = [oid for oid, name in spec.flags.items() if vals.get(name) is True]
    out: dict[str, Encoded] = {f"{column_oid}.{i}": ("oid", oid) for i, oid in enumerate(held, 1)}
    # The count is often a scalar of the profile too (alarms_present): with no row it keeps that
    # scalar's value (a count above 0 and no rows then reads as a table not read); rows set it.
    scalar = served.get(spec.count)
    if held or scalar is None:
        typ = scalar[0] if scalar is not None and scalar[0] in ("integer", "gauge") else "gauge"
        out[spec.count] = (typ, len(held))
    return out


def _encode_flag(out: dict[str, Encoded], availability: Availability | None, oid: str, enc: Encoded) -> None:
    """Serve a reading's availability flag: available beside a value, unavailable when it has none."""
    if availability is None:
        return
    if enc[0] == "nosuch":  # a flag shared by several readings says available if any of them is
        out.setdefault(oid, (availability.type, availability.unavailable[0]))
    else:
        out[oid] = (availability.type, availability.example)


def encoded_values(encoded: Mapping[str, Encoded]) -> dict[str, SnmpValue]:
    """What a reader would get back for an encoded map (for offline round trips)."""
    out: dict[str, SnmpValue] = {}
    for oid, (typ, raw) in encoded.items():
        if typ == "nosuch" or raw is None:
            out[oid] = NO_SUCH
        elif typ == "oid":
            out[oid] = Oid(str(raw))
        else:
            out[oid] = raw
    return out


def metric_names(metrics: Iterable[Metric]) -> list[str]:
    """Names in order (convenience for reports and tests)."""
    return [m.name for m in metrics]


__all__ = [
    "NO_SUCH",
    "Oid",
    "SnmpPlan",
    "SnmpValue",
    "column_cells",
    "decode",
    "encode_profile",
    "encoded_values",
    "oid_key",
    "plan_requests",
]
