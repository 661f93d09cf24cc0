"""Thin async Modbus I/O over pymodbus 3.16: one owner per endpoint/bus, typed errors, reconnects."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from devices.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout, NoSuchObject
from devices.modbus_profile import Table

_BIT_TABLES = frozenset({"coil", "discrete"})
_METHOD = {
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
    "holding": "read_holding_registers",
    "input": "read_input_registers",
}


class ModbusTransport:
    """Shared base: serialises requests with a lock (one request on the wire at a time, like Home
    Assistant's ModbusHub), spaces frames, reconnects lazily and maps pymodbus failures to TransportError."""

    def __init__(self, timeout_s: float, inter_frame_delay_s: float = 0.0, retries: int = 0) -> None:
        self.timeout_s = timeout_s
        self.inter_frame_delay_s = inter_frame_delay_s
        # pymodbus retries a silent request `retries` more times, each waiting the full timeout; keep
        # it small so a dead device costs the poller at most (retries + 1) * timeout_s.
        self.retries = retries
        self._lock = asyncio.Lock()
        self._client: ModbusBaseClient | None = None
        self._methods: dict[str, Any] = {}
        self._last_frame = 0.0

    def _make_client(self) -> ModbusBaseClient:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        """Human name of the endpoint for messages."""
        raise NotImplementedError

    async def _connected(self) -> ModbusBaseClient:
        client = self._client
        if client is not None and client.connected:
            return client
        if client is not None:
            client.close()
        client = self._make_client()
        started = time.monotonic()
        ok = await client.connect()
        if not ok:
            client.close()
            self._client = None
            # pymodbus reports every failed connect as False; a connect that used up the timeout is a
            # timeout (host down), a fast failure is a refusal (nothing listening).
            if time.monotonic() - started >= self.timeout_s * 0.9:
                raise DeviceTimeout(f"{self.endpoint}: connect timed out after {self.timeout_s}s")
            raise DeviceRefused(f"{self.endpoint}: connection refused")
        self._client = client
        self._methods = {t: getattr(client, m) for t, m in _METHOD.items()}
        return client

    def _drop(self) -> None:
        """Forget the connection: after a timeout a late answer would otherwise be read as the next one."""
        if self._client is not None:
            self._client.close()
        self._client = None

    async def read(self, table: Table, address: int, count: int, unit_id: int) -> list[int] | list[bool]:
        """Read `count` registers/bits of `table` from wire `address` of unit `unit_id`."""
        # Hot path: keep it to one lock, one pymodbus call and a type check (the reader's speed
        # target is >=0.8x a bare pymodbus loop), error formatting only happens on failure.
        async with self._lock:
            if self.inter_frame_delay_s:
                wait = self._last_frame + self.inter_frame_delay_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            client = self._client
            if client is None or not client.connected:
                await self._connected()
            try:
                rr = await self._methods[table](address, count=count, device_id=unit_id)
            except Exception as exc:
                self._drop()
                raise self._map_exception(exc, table, address, count, unit_id) from exc
            finally:
                if self.inter_frame_delay_s:
                    self._last_frame = time.monotonic()
        if rr.isError():
            raise self._map_response(rr, table, address, count, unit_id)
        if table in _BIT_TABLES:
            bits: list[bool] = rr.bits
            return bits[:count]  # pymodbus pads bits to a multiple of 8
        regs: list[int] = rr.registers
        if len(regs) != count:
            where = self._where(table, address, count, unit_id)
            raise DeviceProtocolError(f"{where}: got {len(regs)} registers")
        return regs

    def _where(self, table: str, address: int, count: int, unit_id: int) -> str:
        return f"{self.endpoint} unit {unit_id} {table} {address}+{count}"

    def _map_exception(self, exc: Exception, table: str, address: int, count: int, unit_id: int) -> Exception:
        """pymodbus/OS exception → TransportError subclass (unknown exceptions pass through)."""
        where = self._where(table, address, count, unit_id)
        if isinstance(exc, ModbusIOException | TimeoutError):
            # pymodbus raises ModbusIOException after `retries` + 1 unanswered tries of timeout_s each.
            return DeviceTimeout(f"{where}: no response within {self.timeout_s}s")
        if isinstance(exc, ConnectionException | ConnectionError | OSError):
            return DeviceRefused(f"{where}: connection lost ({exc})")
        if isinstance(exc, ModbusException):
            return DeviceProtocolError(f"{where}: {exc}")
        return exc

    def _map_response(self, rr: Any, table: str, address: int, count: int, unit_id: int) -> Exception:
        """Modbus exception response → NoSuchObject (code 2) or DeviceProtocolError (others, named)."""
        where = self._where(table, address, count, unit_id)
        code = int(getattr(rr, "exception_code", 0))
        try:
            label = ExcCodes(code).name
        except ValueError:
            label = "UNKNOWN"
        if code == ExcCodes.ILLEGAL_ADDRESS:
            return NoSuchObject(f"{where}: exception 2 ILLEGAL_ADDRESS")
        return DeviceProtocolError(f"{where}: exception {code} {label}")

    async def close(self) -> None:
        """Close the connection (the next read reconnects)."""
        async with self._lock:
            self._drop()


class ModbusTcpTransport(ModbusTransport):
    """Modbus TCP endpoint (a device or an RS485 gateway hosting many unit ids)."""

    def __init__(self, host: str, port: int = 502, timeout_s: float = 3.0, *, retries: int = 0) -> None:
        super().__init__(timeout_s, 0.0, retries)
        self.host = host
        self.port = port

    @property
    def endpoint(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"

    def _make_client(self) -> ModbusBaseClient:
        # reconnect_delay=0: no background reconnect loop; this class reconnects on the next read.
        return AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=self.retries, reconnect_delay=0
        )


class ModbusSerialTransport(ModbusTransport):
    """Modbus RTU bus (one owner per serial port; `port` may also be a pyserial URL, socket://h:p)."""

    def __init__(
        self,
        port: str,
        baudrate: int = 9600,
        parity: Literal["N", "E", "O"] = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        timeout_s: float = 1.0,
        inter_frame_delay_s: float = 0.01,
        *,
        retries: int = 0,
    ) -> None:
        # RTU needs ≥3.5 character times of silence between frames; cheap RS485 converters and
        # SHT20 clones want more, hence a configurable delay (Home Assistant modbus: "delay").
        super().__init__(timeout_s, inter_frame_delay_s, retries)
        self.port = port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize

    @property
    def endpoint(self) -> str:
        """Serial port name."""
        return self.port

    def _make_client(self) -> ModbusBaseClient:
        return AsyncModbusSerialClient(
            self.port,
            framer=FramerType.RTU,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            timeout=self.timeout_s,
            retries=self.retries,
            reconnect_delay=0,
        )
