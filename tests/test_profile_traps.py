"""Traps come from profiles: a new model's trap is one YAML section, received and simulated with no code."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.reading import DeviceClass
from devices.registry import BUILTIN_DIR, ProfileError, ProfileRegistry, load_profile
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import Oid
from devices.snmp_profile import SnmpProfile
from devices.trap_spec import TrapDef, TrapVarbind
from devices.traps import (
    TrapDecoder,
    TrapDefinitionError,
    TrapEvent,
    TrapReceiver,
    builtin_trap_decoder,
    trap_problems,
)
from tests.manual_clock import Clock
from tests.snmp_fixtures import require_tool

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "profiles"
ACME = "1.3.6.1.4.1.99999"
UPS = "1.3.6.1.2.1.33.1"


def registry() -> ProfileRegistry:
    """The shipped profiles plus the fixture acme-ups, as a site with its own profile folder would have."""
    return ProfileRegistry.from_dirs(BUILTIN_DIR, FIXTURES)


@pytest.fixture
async def receiver() -> AsyncIterator[TrapReceiver]:
    """A receiver on a free port, decoding by the shipped profiles and the fixture."""
    rx = TrapReceiver(
        "127.0.0.1", 0, communities=["traps"], decoder=TrapDecoder.from_profiles(registry().all())
    )
    await rx.start()
    yield rx
    await rx.stop()


async def next_event(rx: TrapReceiver, wait_s: float = 5) -> TrapEvent:
    """The next decoded trap, or fail."""
    return await asyncio.wait_for(rx.queue.get(), wait_s)


async def snmptrap(*args: str) -> None:
    """net-snmp snmptrap, without blocking the loop the receiver runs on."""
    proc = await asyncio.create_subprocess_exec(
        require_tool("snmptrap"), *args, env={**os.environ, "MIBS": ""}, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()


@pytest.mark.integration
async def test_a_trap_declared_in_a_fixture_profile_is_received_and_decoded(receiver: TrapReceiver) -> None:
    addr = f"127.0.0.1:{receiver.port}"
    vbs = [f"{ACME}.1.3.0", "i", "1200", f"{ACME}.1.4.0", "i", "87", f"{ACME}.1.9.0", "i", "2"]
    await snmptrap("-v2c", "-c", "traps", addr, "", f"{ACME}.2.0.1", *vbs)
    ev = await next_event(receiver)
    assert (ev.name, ev.means, ev.device_class) == ("acmeUpsOnBattery", "on_battery", DeviceClass.UPS)
    assert ev.event == {"on_battery": True, "runtime_s": 1200, "battery_charge_pct": 87, "cause": "brownout"}
    # A cause the profile does not map is named by its code; a missing varbind is None.
    await SnmpSimAgent().send_trap("127.0.0.1", receiver.port, "traps", f"{ACME}.2.0.1", {f"{ACME}.1.9.0": 7})
    ev = await next_event(receiver)
    assert ev.event == {"on_battery": True, "runtime_s": None, "battery_charge_pct": None, "cause": "cause_7"}
    # The table-row trap: the event number comes from the row index when the id column is not sent.
    await snmptrap("-v2c", "-c", "traps", addr, "", f"{ACME}.2.0.2", f"{ACME}.3.1.2.12", "s", "mains back")
    ev = await next_event(receiver)
    assert (ev.name, ev.means) == ("acmeUpsPowerRestored", "power_restored")
    assert ev.event == {"on_battery": False, "text": "mains back", "event": 12}


@pytest.mark.integration
async def test_the_simulator_sends_the_fixture_profile_traps(
    receiver: TrapReceiver, unused_udp_port_factory: Callable[[], int]
) -> None:
    clock = Clock(1_000_000.0)
    spec = SimDeviceSpec(
        "ups-9", "ups", "acme-ups", "snmp", "127.0.0.1", unused_udp_port_factory(), community="c9"
    )
    room = SimulatedRoom([spec], registry(), tick_s=0.05, seed=1, clock=clock,
                         trap_target=("127.0.0.1", receiver.port), trap_community="traps")  # fmt: skip
    await room.start()
    try:
        room.trigger("utility_outage")
        await room.tick()
        ev = await next_event(receiver)
        assert (ev.name, ev.source) == ("acmeUpsOnBattery", f"127.0.0.1:{room.endpoint('ups-9')[1]}")
        # runtime and charge are what the agent serves (a GET reads the same); cause is the trap's own.
        assert ev.event == {
            "on_battery": True,
            "runtime_s": 1800,
            "battery_charge_pct": 100,
            "cause": "blackout",
        }
        clock.t += 31.0  # repeat_s: 30
        await room.tick()
        ev = await next_event(receiver)
        assert ev.name == "acmeUpsOnBattery"
        assert ev.event["runtime_s"] == 1769
        room.clear("utility_outage")
        await room.tick()
        ev = await next_event(receiver)
        assert ev.name == "acmeUpsPowerRestored"
        assert ev.event == {"on_battery": False, "text": "mains back", "event": 1}
        assert ev.varbinds == {f"{ACME}.3.1.2.1": "mains back", f"{ACME}.3.1.1.1": 1}
        await asyncio.sleep(0.2)
        assert receiver.queue.empty()
    finally:
        await room.stop()


def test_shipped_traps_are_what_the_receiver_knows() -> None:
    names = builtin_trap_decoder().names()
    assert names == {
        "1.3.6.1.2.1.33.2.1": "upsTrapOnBattery",
        "1.3.6.1.2.1.33.2.2": "upsTrapTestCompleted",
        "1.3.6.1.2.1.33.2.3": "upsTrapAlarmEntryAdded",
        "1.3.6.1.2.1.33.2.4": "upsTrapAlarmEntryRemoved",
        "1.3.6.1.4.1.5528.100.10.2.1": "doorSwitchChange",
    }
    assert builtin_trap_decoder().models("1.3.6.1.2.1.33.2.1") == ("apc-powernet-ups", "rfc1628-ups")


def test_every_shipped_send_rule_names_a_metric_of_its_profile() -> None:
    for p in ProfileRegistry.builtin().all():
        if isinstance(p, SnmpProfile):
            assert trap_problems(p) == [], p.model


def test_a_send_rule_on_no_metric_is_reported(tmp_path: Path) -> None:
    text = (
        (FIXTURES / "acme-ups.yaml")
        .read_text()
        .replace("when: on_battery, repeat_s", "when: on_mains, repeat_s")
    )
    (tmp_path / "acme-ups.yaml").write_text(text)
    profile = load_profile(tmp_path / "acme-ups.yaml")
    assert isinstance(profile, SnmpProfile)
    (problem,) = trap_problems(profile)
    assert "trap acmeUpsOnBattery: send names 'on_mains', not a metric of the profile" in problem
    assert "valid choices: battery_charge_pct, on_battery, output_source, runtime_s" in problem


def test_two_profiles_must_agree_on_a_shared_trap(tmp_path: Path) -> None:
    text = (BUILTIN_DIR / "netbotz-door.yaml").read_text()
    (tmp_path / "other-door.yaml").write_text(
        text.replace("model: netbotz-door", "model: other-door").replace(
            "means: door_change", "means: door_open"
        )
    )
    with pytest.raises(TrapDefinitionError, match=r"profile other-door declares it \(doorSwitchChange\) "
                                                  r"differently from netbotz-door, netbotz-env"):  # fmt: skip
        TrapDecoder.from_profiles(ProfileRegistry.from_dirs(BUILTIN_DIR, tmp_path).all())


def test_unknown_trap_keeps_its_oid() -> None:
    ev = builtin_trap_decoder().decode("1.3.6.1.4.1.8072.2.3.0.1", {"1.3.6.1.2.1.1.5.0": "x"}, "h:1")
    assert (ev.name, ev.device_class, ev.event, ev.means) == ("1.3.6.1.4.1.8072.2.3.0.1", None, {}, None)


def test_match_varbind_decodes_other_trap_oids_carrying_the_value() -> None:
    ev = builtin_trap_decoder().decode(
        "1.3.6.1.4.1.5528.100.10.2.9", {"1.3.6.1.4.1.5528.100.4.2.2.1.2.7": 1}, "h"
    )
    assert (ev.name, ev.device_class, ev.event) == (
        "doorSwitchChange",
        DeviceClass.DOOR,
        {"door_open": False},
    )
    assert ev.trap_oid == "1.3.6.1.4.1.5528.100.10.2.9"


def test_ups_alarm_codec_round_trips() -> None:
    profile = load_profile(BUILTIN_DIR / "rfc1628-ups.yaml")
    assert isinstance(profile, SnmpProfile)
    (removed,) = [t for t in profile.traps if t.means == "alarm_removed"]
    descr = removed.varbinds[1]
    assert descr.encode("on_battery") == ("oid", f"{UPS}.6.3.2")
    assert descr.decode(Oid(f"{UPS}.6.3.24")) == "test_in_progress"
    assert descr.decode(Oid(f"{UPS}.6.3.99")) == "alarm_99"
    assert descr.decode(Oid("1.3.6.1.4.1.1.2")) == "unknown"  # not a well-known alarm
    assert descr.decode(None) == "unknown"
    assert removed.decode({f"{UPS}.6.2.1.2.5": Oid(f"{UPS}.6.3.6")}) == {
        "active": False, "alarm_id": 5, "alarm": "input_bad"
    }  # fmt: skip


def test_varbind_codecs() -> None:
    door = TrapVarbind(oid="1.2.3", field="open", sentinels=[-1], true_values=[0], false_values=[1])
    assert [door.decode(v) for v in (0, 1, -1, 5, "0")] == [True, False, None, None, None]
    assert (door.encode(True), door.encode(False)) == (("integer", 0), ("integer", 1))
    minutes = TrapVarbind(oid="1.2.3", field="runtime_s", scale=60)
    assert (minutes.decode(17), minutes.encode(1740), minutes.encode(None)) == (1020, ("integer", 29), None)
    tenths = TrapVarbind(oid="1.2.3", field="v", scale=0.1)
    assert tenths.decode(2301) == 230.1
    result = TrapVarbind(oid="1.2.3", field="r", enum={1: "passed"}, missing="unknown")
    assert [result.decode(v) for v in (1, 0, None, "x")] == ["passed", "unknown", "unknown", "unknown"]
    assert result.find({"1.2.30.0": 1, "1.2.3.0": 2}) == ("1.2.3.0", 2)


@pytest.mark.parametrize(
    ("trap", "error"),
    [
        ({"varbinds": [{"oid": "1.2.3", "field": "a", "row": "b"}]}, r"row \['b'\] names no field"),
        (
            {"varbinds": [{"oid": "1.2.3", "field": "a"}], "send": {"when": "x", "set": {"b": 1}}},
            r"send names \['b'\]",
        ),
        (
            {"fields": {"a": 1}, "varbinds": [{"oid": "1.2.3", "field": "a"}]},
            r"fields \['a'\] are filled twice",
        ),
        ({"send": {"when": "x", "on": "fall", "repeat_s": 60}}, "only a trap sent on rise repeats"),
        ({"varbinds": [{"oid": "1.2.3", "field": "a", "type": "oid", "enum": {1: "x"}}]}, "needs oid_base"),
        ({"varbinds": [{"oid": "1.2.3", "field": "a", "true_values": [1]}]}, "go together"),
        ({"means": "On Battery"}, "must be lower_snake_case"),
        ({"oid": "1.3.x"}, "is not a numeric OID"),
    ],
)
def test_trap_definitions_are_validated(trap: dict[str, object], error: str) -> None:
    base: dict[str, object] = {"name": "t", "oid": "1.3.6.1.4.1.99999.2.0.9", "means": "something"}
    with pytest.raises(ValidationError, match=error):
        TrapDef.model_validate({**base, **trap})


def test_a_profile_cannot_declare_one_trap_twice(tmp_path: Path) -> None:
    text = (FIXTURES / "acme-ups.yaml").read_text().replace(f"oid: {ACME}.2.0.2", f"oid: {ACME}.2.0.1")
    (tmp_path / "acme-ups.yaml").write_text(text)
    with pytest.raises(ProfileError, match=r"traps: oid \['1.3.6.1.4.1.99999.2.0.1'\] declared twice"):
        load_profile(tmp_path / "acme-ups.yaml")
