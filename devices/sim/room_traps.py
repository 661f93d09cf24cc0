"""SNMP traps of a simulated room, sent as each device's profile declares them (`traps:` … `send:`).

A trap's `send` rule ties it to a bool metric of the device model: sent when the metric rises, falls or
changes, and again every `repeat_s` of simulated time while it holds (RFC 1628's persistent
upsTrapOnBattery). Varbinds carry what the device's agent serves for that object (what a GET would read),
else the model's value through the varbind's codec, else the varbind's example. Traps leave from the
device's own agent socket, so the receiver sees each simulated agent at its own host:port, as it would
see each real card's address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from devices.reading import Value
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import Encoded, encode_profile
from devices.snmp_profile import SnmpProfile
from devices.trap_spec import TrapDef, TrapSend

log = logging.getLogger(__name__)

_DUE_SLACK_S = 1e-6  # simulated time is a float sum of ticks: 60.0 may come out as 59.9999999


@dataclass
class _TrapState:
    """What a device last told the receiver."""

    held: dict[str, bool] = field(default_factory=dict)  # condition metric → its state at the last tick
    count: dict[str, int] = field(default_factory=dict)  # condition metric → how often it has risen
    sent_at: dict[str, float] = field(default_factory=dict)  # trap name → simulated time last sent
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

    async def device_tick(
        self,
        device: str,
        agent: SnmpSimAgent,
        key: str,
        profile: SnmpProfile,
        values: Mapping[str, Value],
        served: Mapping[str, Value],
        sim_time: float,
    ) -> None:
        """Send whatever traps device `device` owes after a tick; never raises.

        `values` are the model's canonical values, `served` what its agent serves now (for varbinds
        consistent with a GET), `sim_time` the room's simulated seconds (for repeats).
        """
        rules = [(t, t.send) for t in profile.traps if t.send is not None]
        if not rules:
            return
        state = self._state.setdefault(device, _TrapState())
        try:
            await self._tick(state, agent, self.community or key, profile, rules, values, served, sim_time)
        except Exception as exc:  # a trap is best effort: the tick loop must keep serving values
            if not state.failed:
                log.warning(
                    "%s: sending a trap to %s:%d failed (%s); further failures are not logged",
                    device,
                    *self.target,
                    exc,
                )
                state.failed = True
            else:
                log.debug("%s: trap failed again: %s", device, exc)

    async def _tick(
        self,
        state: _TrapState,
        agent: SnmpSimAgent,
        community: str,
        profile: SnmpProfile,
        rules: list[tuple[TrapDef, TrapSend]],
        values: Mapping[str, Value],
        served: Mapping[str, Value],
        sim_time: float,
    ) -> None:
        encoded: dict[str, Encoded] | None = None
        for cond in dict.fromkeys(rule.when for _, rule in rules):
            raw = values.get(cond)
            if raw is None:
                continue  # the device cannot tell (sensor fault): it does not notify either
            now, before = bool(raw), state.held.get(cond, False)
            state.held[cond] = now
            if now and not before:
                state.count[cond] = state.count.get(cond, 0) + 1
            for t, rule in rules:
                if rule.when != cond or not self._due(t, rule, state, now, before, values, sim_time):
                    continue
                if rule.on == "rise":
                    state.sent_at[t.name] = sim_time
                if encoded is None:
                    encoded = encode_profile(profile, dict(served))
                binds = _varbinds(t, rule, values, encoded, state.count.get(cond, 0))
                await send_trap(agent, self.target, community, t.oid, binds)

    @staticmethod
    def _due(
        t: TrapDef,
        rule: TrapSend,
        state: _TrapState,
        now: bool,
        before: bool,
        values: Mapping[str, Value],
        sim_time: float,
    ) -> bool:
        if rule.on == "fall":
            return before and not now
        if rule.on == "change":
            return now != before
        if not now:
            return False
        if not before:
            return True
        last = state.sent_at.get(t.name)
        if rule.repeat_s is None or (last is not None and sim_time - last < rule.repeat_s - _DUE_SLACK_S):
            return False
        # e.g. a depleted UPS has turned its output off: RFC 1628 stops repeating then, without a "removed".
        return not any(values.get(m) in states for m, states in rule.repeat_unless.items())


def _varbinds(
    t: TrapDef, rule: TrapSend, values: Mapping[str, Value], encoded: Mapping[str, Encoded], count: int
) -> list[tuple[str, Encoded]]:
    """The varbinds of one trap, in the profile's order."""
    own: dict[str, Value] = dict(rule.set)  # what the trap itself says, above anything the device serves
    if rule.count is not None:
        own[rule.count] = count
    out: list[tuple[str, Encoded]] = []
    for vb in t.varbinds:
        if vb.row is None and vb.field not in own:
            # What the agent serves for this object, as a GET would read it.
            served = [
                (oid, enc)
                for oid, enc in encoded.items()
                if (oid == vb.oid or oid.startswith(vb.oid + ".")) and enc[0] != "nosuch"
            ]
            if served:
                out.extend(served)
                continue
        value = own.get(vb.field) if vb.field in own else values.get(vb.field) if vb.field else None
        enc = vb.encode(value)
        if enc is None and vb.example is not None:
            enc = (vb.type, vb.example)
        index = "0" if vb.row is None else own.get(vb.row, values.get(vb.row))
        if enc is not None and index is not None:
            out.append((f"{vb.oid}.{index}", enc))
    return out


async def send_trap(
    agent: SnmpSimAgent,
    target: tuple[str, int],
    community: str,
    trap_oid: str,
    varbinds: list[tuple[str, Encoded]],
) -> None:
    """Send an SNMPv2c trap from the agent's own UDP socket (source = the agent's host:port)."""
    if not agent.started:
        raise RuntimeError("the agent is not started")
    await agent.send_trap(target[0], target[1], community, trap_oid, varbinds)
