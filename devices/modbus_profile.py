"""Schema of a Modbus device profile: addressing, byte/word order, block-read options and points."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.profile import ProfileBase
from devices.reading import Metric, Quality, Value
from devices.transform import Transform

Table = Literal["holding", "input", "coil", "discrete"]
PointType = Literal[
    "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float32", "float64", "string", "bool", "bitfield", "nibbles",
]  # fmt: skip
Order = Literal["big", "little"]

BIT_TABLES: frozenset[str] = frozenset({"coil", "discrete"})
# Registers per value for the fixed-width types; string/bitfield/nibbles take `count`.
TYPE_WIDTH: dict[str, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
    "float32": 2, "float64": 4, "bool": 1,
}  # fmt: skip
COUNTED_TYPES: frozenset[str] = frozenset({"string", "bitfield", "nibbles"})
# Types a `mask` may cut a field out of: the field is a bit pattern, so only unsigned integers make sense.
MASKABLE_TYPES: frozenset[str] = frozenset({"uint16", "uint32", "uint64"})

# DSE GenComm 4-bit alarm states (GenComm "alarm condition codes", pages 8 and 154; Victron
# dse-modbus-simulator dse.py). 5 "controlled shutdown alarm" (the set offloads and cools down before it
# stops) came with later GenComm revisions: 55xx GenComm 1.29 still lists 5-7 as reserved.
DSE_NIBBLE_STATES: dict[int, str] = {
    0: "disabled",
    1: "not_active",
    2: "warning",
    3: "shutdown",
    4: "electrical_trip",
    5: "controlled_shutdown",
    8: "inactive_indication",
    9: "inactive_indication",
    10: "active_indication",
    15: "unimplemented",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Modicon numbering: first digit names the table (Modicon PI-MBUS-300); 6-digit forms reach 65536.
# 6-digit coil numbers (000001..) are indistinguishable from 5-digit ones, so coils stop at 09999.
_MODICON: tuple[tuple[Table, int, int], ...] = (
    ("coil", 1, 9999),
    ("discrete", 10001, 19999),
    ("input", 30001, 39999),
    ("holding", 40001, 49999),
    ("discrete", 100001, 165536),
    ("input", 300001, 365536),
    ("holding", 400001, 465536),
)


class ModbusOptions(BaseModel):
    """How to talk to the device: address numbering, default byte/word order and read merging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    addressing: Literal["wire", "modicon"] = Field(
        description="wire = 0-based PDU address; modicon = 40001/30001/10001/00001 numbering."
    )
    word_order: Order = Field("big", description="big = most significant register first (ABCD).")
    byte_order: Order = Field("big", description="big = high byte first inside each register.")
    max_registers_per_read: int = Field(125, ge=1, le=125, description="FC3/FC4 limit is 125.")
    max_bits_per_read: int = Field(2000, ge=1, le=2000, description="FC1/FC2 limit is 2000.")
    max_gap: int = Field(10, ge=0, description="Unused registers a block read may span.")
    block_reads: bool = Field(True, description="False: read each point alone (devices that reject gaps).")
    inter_request_delay_s: float = Field(0.0, ge=0.0, le=5.0, description="Pause between requests.")


class ModbusPoint(Transform):
    """One value (or a group of bits/nibbles) at one place in the device's register map."""

    name: str = Field(description="Metric name (bitfield/nibbles: a label; metrics come from bits/names).")
    table: Table | None = Field(None, description="Required with wire addressing; implied by Modicon.")
    address: int = Field(ge=0)
    type: PointType = "uint16"
    count: int | None = Field(None, ge=1, le=125, description="Registers of a string/bitfield/nibbles point.")
    word_order: Order | None = None
    byte_order: Order | None = None
    bits: dict[int, str] | None = Field(None, description="bitfield: bit index (0 = LSB) → bool metric name.")
    nibble_names: list[str | None] | None = Field(
        None, description="nibbles: alarm names in register order, first in the high nibble; null = spare."
    )
    nibble_states: dict[int, str] = Field(default_factory=lambda: dict(DSE_NIBBLE_STATES))
    mask: int | None = Field(
        None,
        ge=1,
        description="Bit field: the value is (raw & mask) shifted down to bit 0 (0x01C0 = bits 6-8), then "
        "enum/scale apply; sentinels still compare the whole register. Several masked points may share "
        "one register (APC ReplaceBatteryTestStatus_BF: result, source, modifier).",
    )
    example: Value | None = Field(None, description="Typical value the simulator serves.")

    @field_validator("name")
    @classmethod
    def _snake(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} must be lower_snake_case (letters, digits, _)")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ModbusPoint:
        t = self.type
        if t == "bitfield":
            if not self.bits:
                raise ValueError("type bitfield needs bits: {bit_index: metric_name}")
            top = 16 * self.width
            for bit, metric in self.bits.items():
                if not 0 <= bit < top:
                    raise ValueError(f"bits: bit {bit} is outside 0..{top - 1} for count {self.width}")
                if not _NAME.match(metric):
                    raise ValueError(f"bits: {metric!r} must be lower_snake_case")
        elif self.bits is not None:
            raise ValueError("bits: only allowed with type bitfield")
        if t == "nibbles":
            if not self.nibble_names:
                raise ValueError("type nibbles needs nibble_names: [alarm names or null]")
            need = (len(self.nibble_names) + 3) // 4
            if self.count is not None and self.count < need:
                raise ValueError(f"count {self.count} holds {4 * self.count} nibbles, names need {need} regs")
            for n in self.nibble_names:
                if n is not None and not _NAME.match(n):
                    raise ValueError(f"nibble_names: {n!r} must be lower_snake_case")
        elif self.nibble_names is not None:
            raise ValueError("nibble_names: only allowed with type nibbles")
        if t == "string" and self.count is None:
            raise ValueError("type string needs count (registers, 2 characters each)")
        if t not in COUNTED_TYPES and self.count is not None:
            raise ValueError(f"count: type {t} has a fixed width of {TYPE_WIDTH[t]} register(s)")
        if self.table in BIT_TABLES and t != "bool":
            raise ValueError(f"table {self.table} holds single bits: type must be bool (got {t})")
        if self.mask is not None:
            self._check_mask(self.mask)
        return self

    def _check_mask(self, mask: int) -> None:
        if self.type not in MASKABLE_TYPES:
            raise ValueError(f"mask: only for {sorted(MASKABLE_TYPES)} (got {self.type})")
        if mask >> (16 * self.width):
            raise ValueError(f"mask: {mask:#x} has bits beyond the {16 * self.width}-bit {self.type}")
        field = mask >> self.mask_shift
        if field & (field + 1):
            raise ValueError(f"mask: {mask:#x} must be one run of adjacent bits (e.g. 0x01C0)")

    @property
    def mask_shift(self) -> int:
        """Bit position of the lowest bit of `mask` (0 without a mask): the field's right shift."""
        return (self.mask & -self.mask).bit_length() - 1 if self.mask else 0

    @property
    def width(self) -> int:
        """Registers (or bits, for coil/discrete) this point occupies."""
        if self.type in COUNTED_TYPES:
            if self.count is not None:
                return self.count
            return (len(self.nibble_names or ()) + 3) // 4 if self.type == "nibbles" else 1
        return TYPE_WIDTH[self.type]

    def metric_names(self) -> list[str]:
        """Names of the metrics this point produces, in output order."""
        if self.type == "bitfield":
            return list((self.bits or {}).values())
        if self.type == "nibbles":
            return [f"alarm_{n}" for n in self.nibble_names or () if n is not None]
        return [self.name]


@dataclass(frozen=True, slots=True)
class WirePoint:
    """A point resolved to its wire table/address and effective byte/word order (hot-path friendly)."""

    point: ModbusPoint
    table: Table
    address: int
    width: int
    word_order: Order
    byte_order: Order

    @property
    def end(self) -> int:
        """One past the last register/bit."""
        return self.address + self.width


def modicon_to_wire(number: int) -> tuple[Table, int]:
    """Modicon number (40001, 300001, …) → (table, wire address); ValueError if not a Modicon number."""
    for table, lo, hi in _MODICON:
        if lo <= number <= hi:
            return table, number - lo
    raise ValueError(
        f"{number} is not a Modicon number (00001-09999 coil, 10001-19999 discrete, "
        "30001-39999 input, 40001-49999 holding, or the 6-digit forms)"
    )


class ModbusDerived(BaseModel):
    """A metric computed from other metrics of the same poll (no register of its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Metric name.")
    one_of: dict[str, str] = Field(
        min_length=2,
        description="Bool metric → the state it stands for; the value is the state of the one that is "
        "true (SmartGen reports its panel mode as four coils, not a mode register). None or several "
        "true, or any of them unavailable, is no reading.",
    )

    @field_validator("name")
    @classmethod
    def _snake(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} must be lower_snake_case (letters, digits, _)")
        return v

    def compute(self, by_name: Mapping[str, Metric]) -> Metric:
        """The derived metric from this poll's metrics (pure)."""
        sources = [by_name.get(source) for source in self.one_of]
        if any(m is None or m.quality is not Quality.GOOD for m in sources):
            return Metric(self.name, None, Quality.UNAVAILABLE)
        on = [state for source, state in self.one_of.items() if by_name[source].value is True]
        # A unit that shows no mode, or two at once, is in no state a rule could trust.
        return Metric(self.name, on[0]) if len(on) == 1 else Metric(self.name, None, Quality.UNAVAILABLE)


class PointOverride(BaseModel):
    """What one choice of a profile setting changes in one point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(description="Multiplier replacing the point's scale under this choice.")


class ProfileSetting(BaseModel):
    """A fact about the unit that its registers cannot tell: the site file names the choice per device.

    Used where guessing would be silently wrong: an SHT20 clone at x100 reading 1000 is 10.00 °C, which
    x10 would read as a perfectly plausible 100.0 °C. `roomguard probe modbus --profile` suggests a
    choice from the `probe` ranges while commissioning; the poller never guesses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, description="What the choice means and how to find it out.")
    choices: dict[str, dict[str, PointOverride]] = Field(
        min_length=2, description="Choice name → point name → the override that choice applies."
    )
    probe: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Point → the range a live reading is expected in while commissioning (the room's "
        "normal conditions, narrower than the sensor's range): only a choice that puts every probed "
        "point inside is suggested.",
    )

    @field_validator("choices")
    @classmethod
    def _choice_names(cls, v: dict[str, dict[str, PointOverride]]) -> dict[str, dict[str, PointOverride]]:
        for choice in v:
            if not _NAME.match(choice):
                raise ValueError(f"choice {choice!r} must be lower_snake_case (letters, digits, _)")
        return v


class ModbusProfile(ProfileBase):
    """A Modbus device model: options plus its list of points."""

    protocol: Literal["modbus"]
    modbus: ModbusOptions
    points: list[ModbusPoint] = Field(min_length=1)
    derived: list[ModbusDerived] = Field(
        default_factory=list, description="Metrics computed from the point metrics of each poll."
    )
    settings: dict[str, ProfileSetting] = Field(
        default_factory=dict,
        description="Facts the site file must state per device (`settings:` of the device), because "
        "the registers cannot tell them apart.",
    )

    @model_validator(mode="after")
    def _check(self) -> ModbusProfile:
        self._check_settings()
        seen: dict[str, str] = {}
        for p in self.points:
            table, address = self._resolve(p)
            opts = self.modbus
            limit = opts.max_bits_per_read if table in BIT_TABLES else opts.max_registers_per_read
            if p.width > limit:
                raise ValueError(f"point {p.name}: {p.width} registers exceed max per read {limit}")
            if address + p.width > 65536:
                raise ValueError(f"point {p.name}: address {address}+{p.width} is beyond 65535")
            if table in BIT_TABLES and p.type != "bool":
                raise ValueError(f"point {p.name}: table {table} holds single bits: type must be bool")
            for m in p.metric_names():
                if m in seen:
                    raise ValueError(f"metric {m!r} produced by both point {seen[m]} and point {p.name}")
                seen[m] = p.name
        self._check_shared_registers()
        self._check_derived(seen)
        return self

    def _check_derived(self, made_by: dict[str, str]) -> None:
        bools = {
            m
            for p in self.points
            if p.enum is None and p.type in ("bool", "bitfield")
            for m in p.metric_names()
        }
        for d in self.derived:
            if d.name in made_by:
                raise ValueError(f"derived {d.name!r}: already produced by point {made_by[d.name]}")
            made_by[d.name] = "derived"
            wrong = sorted(set(d.one_of) - bools)
            if wrong:
                raise ValueError(
                    f"derived {d.name}: one_of needs bool metrics; {', '.join(wrong)} is not one "
                    f"(bool metrics: {', '.join(sorted(bools)) or 'none'})"
                )

    def _check_settings(self) -> None:
        points = {p.name for p in self.points}
        for name, setting in self.settings.items():
            if not _NAME.match(name):
                raise ValueError(f"settings: {name!r} must be lower_snake_case")
            named = set(setting.probe).union(*(set(o) for o in setting.choices.values()))
            unknown = sorted(named - points)
            if unknown:
                have = ", ".join(sorted(points))
                raise ValueError(f"settings.{name}: no point named {', '.join(unknown)}; points: {have}")

    def configured(self, chosen: Mapping[str, str]) -> ModbusProfile:
        """This profile with the site's choice applied for every setting (ValueError naming the choices).

        Every setting must be chosen: a setting exists because no default is safe.
        """
        unknown = sorted(set(chosen) - set(self.settings))
        if unknown:
            valid = ", ".join(sorted(self.settings)) or "none"
            raise ValueError(f"profile {self.model} has no setting {', '.join(unknown)}; settings: {valid}")
        overrides: dict[str, PointOverride] = {}
        for name, setting in sorted(self.settings.items()):
            choice = chosen.get(name)
            if choice is None or choice not in setting.choices:
                valid = " | ".join(setting.choices)
                what = "needs" if choice is None else f"got {choice!r} for"
                raise ValueError(f"profile {self.model} {what} setting {name}: {valid}")
            overrides.update(setting.choices[choice])
        points = [
            p.model_copy(update=overrides[p.name].model_dump()) if p.name in overrides else p
            for p in self.points
        ]
        return self.model_copy(update={"points": points, "settings": {}})

    def _check_shared_registers(self) -> None:
        """Masked points on one register must agree on its type and cut disjoint bits out of it."""
        fields: dict[tuple[Table, int], tuple[ModbusPoint, int]] = {}
        for p in self.points:
            if p.mask is None:
                continue
            key = self._resolve(p)
            first, used = fields.get(key, (p, 0))
            if first.type != p.type:
                raise ValueError(f"point {p.name}: shares its register with {first.name} but is {p.type}")
            if used & p.mask:
                where = f"register {key[1]}"
                raise ValueError(f"point {p.name}: mask {p.mask:#x} overlaps another field of {where}")
            fields[key] = (first, used | p.mask)

    def _resolve(self, p: ModbusPoint) -> tuple[Table, int]:
        if self.modbus.addressing == "wire":
            if p.table is None:
                raise ValueError(f"point {p.name}: table is required with addressing: wire")
            if p.address > 65535:
                raise ValueError(
                    f"point {p.name}: wire address {p.address} > 65535 (is this a Modicon number? "
                    "then set addressing: modicon)"
                )
            return p.table, p.address
        try:
            table, address = modicon_to_wire(p.address)
        except ValueError as exc:
            raise ValueError(f"point {p.name}: {exc}") from None
        if p.table is not None and p.table != table:
            raise ValueError(f"point {p.name}: Modicon {p.address} is a {table} address, not {p.table}")
        return table, address

    def wire_points(self) -> list[WirePoint]:
        """Every point resolved to wire addressing with its effective byte/word order."""
        out: list[WirePoint] = []
        for p in self.points:
            table, address = self._resolve(p)
            out.append(
                WirePoint(
                    point=p,
                    table=table,
                    address=address,
                    width=p.width,
                    word_order=p.word_order or self.modbus.word_order,
                    byte_order=p.byte_order or self.modbus.byte_order,
                )
            )
        return out

    def metric_names(self) -> list[str]:
        """Every metric the profile produces, in point order."""
        return [m for p in self.points for m in p.metric_names()]
