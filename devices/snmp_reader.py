"""DeviceReader for SNMP profiles: one GET for scalars, GETBULK walks for tables, decoded by snmp_codec."""

from __future__ import annotations

from devices.reading import Metric
from devices.snmp_codec import SnmpValue, decode, plan_requests
from devices.snmp_profile import SnmpProfile
from devices.snmp_transport import SnmpTarget

# Many embedded agents (APC NMC, IntelliSlot) reject or truncate PDUs with more varbinds (tooBig).
GET_CHUNK = 40


class SnmpReader:
    """Reads every metric of one SNMP device described by `profile`."""

    def __init__(self, profile: SnmpProfile, target: SnmpTarget, max_repetitions: int = 25) -> None:
        self.profile = profile
        self.target = target
        self.max_repetitions = max_repetitions
        self._plan = plan_requests(profile)

    async def read(self) -> list[Metric]:
        """Poll the device once; raises DeviceTimeout / AuthFailure / DeviceProtocolError."""
        values = await self.read_raw()
        return decode(self.profile, values)

    async def read_raw(self) -> dict[str, SnmpValue]:
        """The varbinds of one poll, undecoded (for probes and peer comparisons)."""
        values: dict[str, SnmpValue] = {}
        oids = self._plan.get_oids
        for i in range(0, len(oids), GET_CHUNK):
            values.update(await self.target.get(oids[i : i + GET_CHUNK]))
        if self._plan.walk_roots:
            values.update(await self.target.walk_many(self._plan.walk_roots, self.max_repetitions))
        return values

    async def close(self) -> None:
        """Nothing to release per device: the SnmpTarget may be shared."""
