"""Traps with wrong credentials (net-snmp snmptrap as the sender) are refused, counted per source, logged."""

from __future__ import annotations

import logging

import pytest

from devices.trap_rejects import TrapRejects
from devices.traps import TrapReceiver, TrapV3User
from tests.manual_clock import Clock
from tests.test_snmp_traps import ENGINE_ID, TRAP_USER, UPS, next_event, snmptrap

pytestmark = pytest.mark.integration

ON_BATTERY = "1.3.6.1.2.1.33.2.1"


def v3(addr: str, engine: str = ENGINE_ID, user: str = TRAP_USER.user, **keys: str) -> list[str]:
    """snmptrap arguments of an authPriv v3 upsTrapOnBattery; keys auth/priv replace the right ones."""
    return [
        "-v3", "-e", f"0x{engine}", "-u", user, "-l", "authPriv",
        "-a", "SHA-256", "-A", keys.get("auth", TRAP_USER.auth_key),
        "-x", "AES", "-X", keys.get("priv", TRAP_USER.priv_key),
        addr, "", ON_BATTERY,
    ]  # fmt: skip


async def test_wrong_credentials_are_counted_per_source_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(1000.0)
    rx = TrapReceiver(
        "127.0.0.1",
        0,
        communities=["traps"],
        v3_users=[TrapV3User(TRAP_USER, ENGINE_ID)],
        rejects=TrapRejects(clock=clock),
    )
    await rx.start()
    try:
        addr = f"127.0.0.1:{rx.port}"
        caplog.set_level(logging.WARNING, "devices.traps")
        await snmptrap("-v1", "-c", "guess", addr, "1.3.6.1.2.1.33.2", "192.0.2.7", "6", "1", "")
        await snmptrap("-v2c", "-c", "guess", addr, "", ON_BATTERY)
        await snmptrap(*v3(addr, user="nobody"))
        await snmptrap(*v3(addr, auth="wrongauth123"))
        await snmptrap(*v3(addr, priv="wrongpriv123"))
        await snmptrap(*v3(addr, engine="8000000001020305"))
        # Right user, engine id and keys, but unauthenticated or in clear: as easily forged as sent.
        base = ["-v3", "-e", f"0x{ENGINE_ID}", "-u", TRAP_USER.user]
        await snmptrap(*base, "-l", "noAuthNoPriv", addr, "", ON_BATTERY)
        await snmptrap(
            *base, "-l", "authNoPriv", "-a", "SHA-256", "-A", TRAP_USER.auth_key, addr, "", ON_BATTERY
        )
        # The right community still gets through, and is the first thing queued (loopback keeps order).
        await snmptrap("-v2c", "-c", "traps", addr, "", ON_BATTERY, f"{UPS}.2.3.0", "i", "5")
        ev = await next_event(rx)
        assert (ev.name, ev.event["runtime_s"]) == ("upsTrapOnBattery", 300)
        assert rx.queue.empty()
        assert rx.rejects.by_source() == {
            "127.0.0.1": {
                "unknown_community": 2,
                "unknown_user": 1,
                "wrong_auth_key": 1,
                "wrong_priv_key": 1,
                "unknown_engine_id": 1,
                "security_level": 2,
            }
        }
        lines = [r.getMessage() for r in caplog.records if r.name == "devices.traps"]
        assert len(lines) == 1, lines
        assert "127.0.0.1" in lines[0]
        assert "community" in lines[0]
        assert "guess" not in lines[0]  # a wrong community may be another system's secret
        # A minute later the source is logged again, with what was refused in between.
        clock.t += 61
        await snmptrap(*v3(addr, engine="8000000001020305"))
        await snmptrap("-v2c", "-c", "traps", addr, "", ON_BATTERY)
        await next_event(rx)
        lines = [r.getMessage() for r in caplog.records if r.name == "devices.traps"]
        assert len(lines) == 2, lines
        assert "user 'trapuser', engine id 0x8000000001020305" in lines[1]
        assert "7 more refused from this address" in lines[1]
        assert rx.rejects.total() == 9
    finally:
        await rx.stop()


def test_rejects_log_each_source_apart_and_fold_sources_beyond_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "devices.traps")
    clock = Clock(0.0)
    rejects = TrapRejects(clock=clock, max_sources=2)
    for source in ("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3", "192.0.2.4"):
        rejects.note(source, "unknown_community")
    assert rejects.by_source() == {
        "192.0.2.1": {"unknown_community": 2},
        "192.0.2.2": {"unknown_community": 1},
        "other": {"unknown_community": 2},
    }
    assert [r.getMessage().split()[3] for r in caplog.records] == ["192.0.2.1", "192.0.2.2", "other"]
