"""DeviceReader for one Modbus unit: plan once, then read blocks and decode with precompiled decoders."""

from __future__ import annotations

import asyncio
from typing import Protocol, cast, get_args

from devices.codec import Decoder, compile_decoder, metrics_with_quality
from devices.errors import NoSuchObject
from devices.modbus_profile import ModbusProfile, Table, WirePoint
from devices.planner import plan_reads
from devices.reading import Metric, Quality


class RegisterSource(Protocol):
    """What the reader needs from a transport (ModbusTcpTransport / ModbusSerialTransport)."""

    async def read(self, table: Table, address: int, count: int, unit_id: int) -> list[int] | list[bool]:
        """Read `count` registers/bits from wire `address` of `table` on unit `unit_id`."""
        ...


# One planned read, flattened for the hot path: table, address, count, (decoder, offset) pairs and
# the metrics to report as unavailable if the device rejects the whole block.
_Step = tuple[Table, int, int, tuple[tuple[Decoder, int], ...], tuple[Metric, ...]]


def _table(name: str) -> Table:
    """The planner groups by table name (it is protocol-agnostic); the transport takes a `Table`."""
    for table in get_args(Table):
        if name == table:
            return cast(Table, table)
    raise ValueError(f"Modbus table {name!r}; valid: {', '.join(get_args(Table))}")


class ModbusReader:
    """Reads every point of `profile` from unit `unit_id` over a shared `transport`."""

    def __init__(self, profile: ModbusProfile, transport: RegisterSource, unit_id: int) -> None:
        if not 0 <= unit_id <= 255:
            raise ValueError(f"unit_id {unit_id} outside 0..255")
        self.profile = profile
        self.transport = transport
        self.unit_id = unit_id
        opts = profile.modbus
        self._delay = opts.inter_request_delay_s
        requests = plan_reads(
            profile.wire_points(),
            opts.max_registers_per_read,
            opts.max_gap,
            opts.block_reads,
            max_bits=opts.max_bits_per_read,
        )
        steps: list[_Step] = []
        for req in requests:
            decoders = tuple((compile_decoder(wp), wp.address - req.address) for wp in req.points)
            missing = tuple(m for wp in req.points for m in _unavailable(wp))
            steps.append((_table(req.table), req.address, req.count, decoders, missing))
        self._steps = tuple(steps)
        self._derived = tuple(profile.derived)

    @property
    def read_count(self) -> int:
        """Modbus requests per poll."""
        return len(self._steps)

    def plan(self) -> list[tuple[str, int, int]]:
        """(table, address, count) of each read, for diagnostics."""
        return [(t, a, c) for t, a, c, _, _ in self._steps]

    async def read(self) -> list[Metric]:
        """Poll once. A block the device rejects (illegal address) yields `unavailable` metrics for
        its points only; a timeout or refused connection propagates (the poller flags the device)."""
        out: list[Metric] = []
        read = self.transport.read
        unit = self.unit_id
        first = True
        for table, address, count, decoders, missing in self._steps:
            if self._delay and not first:
                await asyncio.sleep(self._delay)
            first = False
            try:
                data = await read(table, address, count, unit)
            except NoSuchObject:
                out.extend(missing)
                continue
            for decode, offset in decoders:
                decode(data, offset, out)
        if self._derived:
            by_name = {m.name: m for m in out}
            out.extend(d.compute(by_name) for d in self._derived)
        return out

    async def prepare(self) -> None:
        """Nothing to set up: the connection is opened by the first read."""

    async def close(self) -> None:
        """Nothing to release: the transport is shared by every unit on its endpoint."""


def _unavailable(wp: WirePoint) -> list[Metric]:
    return metrics_with_quality(wp, Quality.UNAVAILABLE)
