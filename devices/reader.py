"""The one interface the poller needs from a device, whatever its protocol."""

from __future__ import annotations

from typing import Protocol

from devices.reading import Metric


class DeviceReader(Protocol):
    """Reads every metric of one device; raises a TransportError subclass when it cannot."""

    async def read(self) -> list[Metric]:
        """Poll the device once and return its decoded metrics."""
        ...

    async def prepare(self) -> None:
        """One-time set-up before the first poll of a fleet (no network traffic)."""
        ...

    async def close(self) -> None:
        """Release the connection (shared transports stay open for their other devices)."""
        ...
