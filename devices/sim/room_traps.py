"""SNMP traps of a simulated room: UPS-MIB on-battery and NetBotz door-switch traps, as real cards send them.

The simulated devices notify a trap receiver the way the real ones do: a UPS sends RFC 1628
`upsTrapOnBattery` (repeated every minute of simulated time while on battery, the trap being
persistent) and `upsTrapAlarmEntryRemoved` for `upsAlarmOnBattery` when mains is back; a NetBotz door
sensor sends a trap carrying `doorSwitchSensorValue`. Traps leave from the device's own agent socket, so
the receiver sees each simulated agent at its own host:port, as it would see each real card's address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from devices.reading import Value
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import Encoded, encode_profile
from devices.snmp_profile import SnmpProfile
from devices.traps import NETBOTZ_DOOR_VALUE, UPS, UPS_TRAPS

log = logging.getLogger(__name__)

UPS_TRAP_ON_BATTERY = f"{UPS_TRAPS}.1"
UPS_TRAP_ALARM_ENTRY_REMOVED = f"{UPS_TRAPS}.4"
UPS_ESTIMATED_MINUTES_REMAINING = f"{UPS}.2.3.0"
UPS_SECONDS_ON_BATTERY = f"{UPS}.2.2.0"
UPS_CONFIG_LOW_BATT_TIME = f"{UPS}.9.7.0"
UPS_ALARM_ID = f"{UPS}.6.2.1.1"
UPS_ALARM_DESCR = f"{UPS}.6.2.1.2"
UPS_ALARM_ON_BATTERY = f"{UPS}.6.3.2"
# NETBOTZV2-MIB door sensor trap, as in the receiver's tests; the receiver decodes any trap by the
# doorSwitchSensorValue varbind, so the value column is what matters.
NETBOTZ_DOOR_TRAP = "1.3.6.1.4.1.5528.100.10.2.1"
ON_BATTERY_RESEND_S = 60.0  # RFC 1628: upsTrapOnBattery is persistent, resent at one-minute intervals
LOW_BATT_TIME_MIN = 2  # RFC 1628 upsConfigLowBattTime when the profile does not serve it (common default)


@dataclass
class _TrapState:
    """What a device last told the receiver."""

    on_battery: bool = False
    on_battery_sent_at: float | None = None  # simulated time of the last upsTrapOnBattery
    alarm_id: int = 0  # upsAlarmId of the current on-battery alarm row (a new id per occurrence)
    door_open: bool = False
    failed: bool = False  # a send failed already: later failures are logged at debug only


class RoomTraps:
    """Decides which traps the room's SNMP devices send on a tick, and sends them from their agents."""

    def __init__(self, target: tuple[str, int], community: str | None = None) -> None:
        """`community` None: each device uses its own read community (a card configured with one)."""
        if not 0 < target[1] < 65536:
            # asyncio treats a non-OSError from sendto as fatal and closes the agent's socket: refuse early.
            raise ValueError(f"trap target port {target[1]} is not a UDP port")
        self.target = target
        self.community = community
        self._state: dict[str, _TrapState] = {}

    async def device_tick(self, device: str, device_class: str, agent: SnmpSimAgent, key: str,
                          profile: SnmpProfile, values: Mapping[str, Value],
                          served: Mapping[str, Value], sim_time: float) -> None:
        """Send whatever traps device `device` owes after a tick; never raises.

        `values` are the model's canonical values, `served` what its agent serves now (for varbinds
        consistent with a GET), `sim_time` the room's simulated seconds (for the one-minute resend).
        """
        state = self._state.setdefault(device, _TrapState())
        community = self.community or key
        try:
            if device_class == "ups":
                await self._ups(state, agent, community, profile, values, served, sim_time)
            if "door_open" in values:
                await self._door(state, agent, community, profile, values)
        except Exception as exc:  # a trap is best effort: the tick loop must keep serving values
            if not state.failed:
                log.warning("%s: sending a trap to %s:%d failed (%s); further failures are not logged",
                            device, *self.target, exc)
                state.failed = True
            else:
                log.debug("%s: trap failed again: %s", device, exc)

    async def _ups(self, state: _TrapState, agent: SnmpSimAgent, community: str, profile: SnmpProfile,
                   values: Mapping[str, Value], served: Mapping[str, Value], sim_time: float) -> None:
        on_battery = values.get("on_battery")
        source = values.get("output_source")
        if on_battery is None and source is None:
            return  # sensor fault: the card cannot tell, so it does not notify either
        now_on_battery = on_battery is True or source == "battery"
        if now_on_battery:
            # A depleted UPS has turned off: RFC 1628 stops the resend then, without a "removed".
            due = (state.on_battery_sent_at is None
                   or sim_time - state.on_battery_sent_at >= ON_BATTERY_RESEND_S - 1e-6)
            if not state.on_battery or (due and source != "none"):
                if not state.on_battery:
                    state.alarm_id += 1  # RFC 1628: each new alarm table row gets a new upsAlarmId
                state.on_battery = True
                state.on_battery_sent_at = sim_time
                await send_trap(agent, self.target, community, UPS_TRAP_ON_BATTERY,
                                _on_battery_varbinds(profile, values, served))
        elif state.on_battery:
            state.on_battery = False
            state.on_battery_sent_at = None
            await send_trap(agent, self.target, community, UPS_TRAP_ALARM_ENTRY_REMOVED, [
                (f"{UPS_ALARM_ID}.{state.alarm_id}", ("integer", state.alarm_id)),
                (f"{UPS_ALARM_DESCR}.{state.alarm_id}", ("oid", UPS_ALARM_ON_BATTERY)),
            ])

    async def _door(self, state: _TrapState, agent: SnmpSimAgent, community: str, profile: SnmpProfile,
                    values: Mapping[str, Value]) -> None:
        door_open = values.get("door_open")
        if door_open is None or bool(door_open) == state.door_open:
            return
        state.door_open = bool(door_open)
        # The varbind is the profile's own doorSwitchSensorValue row(s), encoded as a GET would read it.
        binds = [(oid, enc) for oid, enc in encode_profile(profile, {"door_open": door_open}).items()
                 if oid.startswith(NETBOTZ_DOOR_VALUE)]
        if not binds:
            log.debug("profile %s has no NetBotz door switch column; no door trap", profile.model)
            return
        await send_trap(agent, self.target, community, NETBOTZ_DOOR_TRAP, binds)


def _on_battery_varbinds(profile: SnmpProfile, values: Mapping[str, Value],
                         served: Mapping[str, Value]) -> list[tuple[str, Encoded]]:
    """upsEstimatedMinutesRemaining, upsSecondsOnBattery, upsConfigLowBattTime for upsTrapOnBattery."""
    encoded = encode_profile(profile, dict(served))
    runtime = values.get("runtime_s")
    seconds = values.get("seconds_on_battery_s")
    # A UPS-MIB profile serves these objects: send what a GET reads. Others (PowerNet) get them computed.
    fallback: dict[str, Encoded] = {
        UPS_ESTIMATED_MINUTES_REMAINING: ("integer", round(_num(runtime) / 60)),
        UPS_SECONDS_ON_BATTERY: ("integer", round(_num(seconds))),
        UPS_CONFIG_LOW_BATT_TIME: ("integer", LOW_BATT_TIME_MIN),
    }
    out: list[tuple[str, Encoded]] = []
    for oid, default in fallback.items():
        enc = encoded.get(oid)
        out.append((oid, enc if enc is not None and enc[0] != "nosuch" else default))
    return out


def _num(v: Value) -> float:
    """A numeric model value, 0 when absent (the trap still goes out, as a card's would)."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


async def send_trap(agent: SnmpSimAgent, target: tuple[str, int], community: str, trap_oid: str,
                    varbinds: list[tuple[str, Encoded]]) -> None:
    """Send an SNMPv2c trap from the agent's own UDP socket (source = the agent's host:port)."""
    if not agent.started:
        raise RuntimeError("the agent is not started")
    await agent.send_trap(target[0], target[1], community, trap_oid, varbinds)
