"""Malformed datagrams are refused quietly and counted; the receiver keeps decoding the traps that follow."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator

import pytest

from devices.traps import TrapReceiver
from tests.test_snmp_traps import UPS, next_event, snmptrap

pytestmark = pytest.mark.integration


@pytest.fixture
async def receiver() -> AsyncIterator[TrapReceiver]:
    """A receiver on a free port accepting community `traps`."""
    rx = TrapReceiver("127.0.0.1", 0, communities=["traps"])
    await rx.start()
    yield rx
    await rx.stop()


async def test_random_datagrams_leave_no_traceback_and_the_next_trap_decodes(
    receiver: TrapReceiver, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    rnd = random.Random(20261201)
    datagrams = [b"hello world\n", b"GET / HTTP/1.0\r\n\r\n"]
    datagrams += [rnd.randbytes(rnd.randint(1, 300)) for _ in range(1000)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for d in datagrams:
            sock.sendto(d, ("127.0.0.1", receiver.port))
            await asyncio.sleep(0)  # one loop turn reads one datagram: the socket buffer never overflows
    addr = f"127.0.0.1:{receiver.port}"
    await snmptrap("-v2c", "-c", "traps", addr, "", "1.3.6.1.2.1.33.2.2", f"{UPS}.7.3.0", "i", "3")
    ev = await next_event(receiver)
    assert (ev.name, ev.event["test_result"]) == ("upsTrapTestCompleted", "failed")
    assert receiver.queue.empty()
    assert receiver.rejects.by_source() == {"127.0.0.1": {"malformed": len(datagrams)}}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert "Traceback" not in capfd.readouterr().err
    # Refused quietly: one line for the source in this minute, not one per datagram.
    assert [r.name for r in caplog.records] == ["devices.traps"]
