"""Helpers shared by the Modbus tests (profiles by name, an in-memory register source)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devices.errors import NoSuchObject
from devices.modbus_profile import ModbusOptions, ModbusPoint, ModbusProfile, WirePoint
from devices.registry import BUILTIN_DIR, load_profile

MODBUS_MODELS = sorted(
    p.stem for p in BUILTIN_DIR.glob("*.yaml") if "protocol: modbus" in p.read_text(encoding="utf-8")
)


def profile(model: str) -> ModbusProfile:
    """Load a shipped Modbus profile through the real loader."""
    prof = load_profile(BUILTIN_DIR / f"{model}.yaml")
    assert isinstance(prof, ModbusProfile)
    return prof


def wire_point(word_order: str = "big", byte_order: str = "big", **fields: object) -> WirePoint:
    """A WirePoint built through the schema (wire addressing)."""
    fields.setdefault("name", "x")
    fields.setdefault("table", "holding")
    fields.setdefault("address", 0)
    prof = ModbusProfile(
        model="t",
        vendor="t",
        title="t",
        device_class="env",
        protocol="modbus",
        modbus=ModbusOptions(addressing="wire", word_order=word_order, byte_order=byte_order),
        points=[ModbusPoint.model_validate(fields)],
    )
    return prof.wire_points()[0]


class MemorySource:
    """Register source backed by dicts {table: {address: value}}; undefined addresses → NoSuchObject,
    like a real device answering exception 2."""

    def __init__(self, tables: Mapping[str, Mapping[int, int | bool]]) -> None:
        self.tables = tables
        self.reads: list[tuple[str, int, int]] = []

    async def read(
        self, table: str, address: int, count: int, unit_id: int
    ) -> Sequence[int] | Sequence[bool]:
        self.reads.append((table, address, count))
        cells = self.tables.get(table, {})
        try:
            return [cells[a] for a in range(address, address + count)]
        except KeyError as exc:
            raise NoSuchObject(f"{table} {exc.args[0]} undefined") from None
