"""Modbus TCP simulator: many unit ids on one endpoint, each serving a profile (pymodbus SimDevice)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.codec import encode_point
from devices.modbus_profile import ModbusProfile, WirePoint
from devices.reading import Value

# Function code used to address each table through SimCore.async_setValues (pymodbus SimRuntime maps
# 1→coils, 2→discrete inputs, 3→holding, 4→input registers).
_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
_TABLES = ("coil", "discrete", "holding", "input")  # SimDevice 4-tuple order


@dataclass
class _Unit:
    """One simulated device: its profile, current metric values and silence flag."""

    unit_id: int
    profile: ModbusProfile
    points: list[WirePoint]
    by_metric: dict[str, WirePoint]
    values: dict[str, Value] = field(default_factory=dict)
    silent: bool = False
    writing: bool = False  # our own set_values is running: the action hook must let it through


class ModbusSimServer:
    """A pymodbus TCP server hosting simulated devices by unit id (an RS485 gateway on loopback)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._units: dict[int, _Unit] = {}
        self._server: ModbusTcpServer | None = None

    def add_device(
        self, unit_id: int, profile: ModbusProfile, values: Mapping[str, Value] | None = None
    ) -> None:
        """Serve `profile` as unit `unit_id`; metrics not in `values` get the point's `example`."""
        if self._server is not None:
            raise RuntimeError("add_device must be called before start()")
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit_id {unit_id} outside 1..247")
        if unit_id in self._units:
            raise ValueError(f"unit {unit_id} already added")
        points = profile.wire_points()
        by_metric = {m: wp for wp in points for m in wp.point.metric_names()}
        unit = _Unit(unit_id, profile, points, by_metric)
        for wp in points:
            for m in wp.point.metric_names():
                unit.values[m] = _default(wp, m)
        unit.values.update(_checked(unit, values or {}))
        self._units[unit_id] = unit

    async def start(self) -> None:
        """Start listening; `.port` holds the real port afterwards."""
        devices = [self._sim_device(u) for u in self._units.values()]
        if not devices:
            raise RuntimeError("no devices added")
        # ignore_missing_devices: a NoSuchIdException raised by the action hook drops the request
        # without any answer (pymodbus ServerRequestHandler.handle_request) — that is how a silent
        # unit makes the client time out, exactly like a dead RS485 slave behind a gateway.
        server = ModbusTcpServer(devices, address=(self.host, self.port), ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop the server and close client connections."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def set_values(self, unit_id: int, values: Mapping[str, Value]) -> None:
        """Change metrics of a running unit (value None → the point's first sentinel)."""
        unit = self._unit(unit_id)
        changed = _checked(unit, values)
        unit.values.update(changed)
        touched = {id(unit.by_metric[m]): unit.by_metric[m] for m in changed}
        if self._server is None:
            return
        context = self._server.context
        unit.writing = True
        try:
            for wp in touched.values():
                data = _encode_register(unit, wp)
                result = await context.async_setValues(unit_id, _FC[wp.table], wp.address, data)
                if result is not None:
                    where = f"unit {unit_id} {wp.table} {wp.address}"
                    raise RuntimeError(f"{where}: simulator refused ({result})")
        finally:
            unit.writing = False

    def set_silent(self, unit_id: int, silent: bool) -> None:
        """Make a unit stop answering (clients time out) or answer again."""
        self._unit(unit_id).silent = silent

    def values(self, unit_id: int) -> dict[str, Value]:
        """Current engineering values served by a unit."""
        return dict(self._unit(unit_id).values)

    def _unit(self, unit_id: int) -> _Unit:
        try:
            return self._units[unit_id]
        except KeyError:
            raise KeyError(f"no unit {unit_id}; units: {sorted(self._units)}") from None

    def _sim_device(self, unit: _Unit) -> SimDevice:
        cells: dict[str, dict[int, int | bool]] = {t: {} for t in _TABLES}
        for wp in unit.points:
            for i, v in enumerate(_encode_register(unit, wp)):
                cells[wp.table][wp.address + i] = v
        gap = unit.profile.modbus.max_gap
        blocks = tuple(_blocks(t, cells[t], gap) for t in _TABLES)
        hook_unit = unit

        async def action(
            fc: int, start: int, address: int, count: int, regs: list[int], set_values: object
        ) -> None:
            if hook_unit.silent and not hook_unit.writing:
                raise NoSuchIdException(f"unit {hook_unit.unit_id} is silent")
            return None

        return SimDevice(id=unit.unit_id, simdata=blocks, action=action)  # type: ignore[arg-type]


def _blocks(table: str, cells: dict[int, int | bool], max_gap: int) -> list[SimData]:
    """Contiguous SimData runs; gaps up to `max_gap` are filled with 0 so the planner's block reads
    succeed (as on InRow: "block reads return 0 for gaps"), larger gaps stay undefined → exception 2."""
    bits = table in ("coil", "discrete")
    if not cells:
        # SimDevice needs a non-empty list per table; park a placeholder where no profile reads.
        if bits:
            return [SimData(65520, values=[False] * 16, datatype=DataType.BITS)]
        return [SimData(65535, datatype=DataType.INVALID)]
    out: list[SimData] = []
    addresses = sorted(cells)
    start = prev = addresses[0]
    run: list[int | bool] = [cells[start]]
    for a in addresses[1:]:
        if a - prev - 1 <= max_gap:
            run.extend([False if bits else 0] * (a - prev - 1))
            run.append(cells[a])
        else:
            out.append(_simdata(start, run, bits))
            start, run = a, [cells[a]]
        prev = a
    out.append(_simdata(start, run, bits))
    return out


def _simdata(start: int, run: list[int | bool], bits: bool) -> SimData:
    if bits:
        return SimData(start, values=[bool(v) for v in run], datatype=DataType.BITS)
    return SimData(start, values=[int(v) for v in run], datatype=DataType.REGISTERS)


def _default(wp: WirePoint, metric: str) -> Value:
    """A point's example, else a neutral value of its type (0, first enum state, False, not_active)."""
    p = wp.point
    if p.example is not None:
        return p.example
    if p.type in ("bool", "bitfield") or wp.table in ("coil", "discrete"):
        return False
    if p.type == "nibbles":
        return "not_active"
    if p.type == "string":
        return ""
    if p.enum:
        return next(iter(p.enum.values()))
    return 0


def _checked(unit: _Unit, values: Mapping[str, Value]) -> dict[str, Value]:
    unknown = sorted(set(values) - set(unit.by_metric))
    if unknown:
        raise KeyError(
            f"unit {unit.unit_id} ({unit.profile.model}) has no metric {unknown}; "
            f"valid: {sorted(unit.by_metric)}"
        )
    return dict(values)


def _encode(unit: _Unit, wp: WirePoint) -> list[int] | list[bool]:
    p = wp.point
    if p.type in ("bitfield", "nibbles"):
        group = {m: unit.values[m] for m in p.metric_names()}
        if p.type == "bitfield" and all(v is None for v in group.values()):
            return encode_point(wp, None)
        return encode_point(wp, group)
    return encode_point(wp, unit.values[p.name])


def _encode_register(unit: _Unit, wp: WirePoint) -> list[int] | list[bool]:
    """A point's registers; masked points sharing them are ORed in (one register, several bit fields)."""
    if wp.point.mask is None:
        return _encode(unit, wp)
    regs = [0] * wp.width
    for other in unit.points:
        if other.point.mask is not None and (other.table, other.address) == (wp.table, wp.address):
            regs = [r | int(v) for r, v in zip(regs, _encode(unit, other), strict=True)]
    return regs
