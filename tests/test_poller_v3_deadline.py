"""The poll deadline leaves the SNMP transport time for its own verdict (wrong v3 privacy key → auth_error).

A wrongly encrypted request is dropped silently by net-snmp: only after every attempt has timed out
and a discovery probe has been answered can the transport say AuthFailure. A poll deadline of one
interval (1 s) fired first and the device was reported as comm_error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from collector.poller import Poller, PollTarget
from devices.reading import DeviceRef, PollResult, Quality
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV3
from tests.snmp_fixtures import Snmpd, profile_overrides, snmp_profile, v3_args

pytestmark = pytest.mark.integration

GOOD = SnmpV3("rguser", "sha256", "authpass123", "aes128", "privpass123")
WRONG_PRIV = SnmpV3("rguser", "sha256", "authpass123", "aes128", "wrongpriv123")
INTERVAL_S = 1.0
TIMEOUT_S = 0.8
RETRIES = 1  # the site default (defaults.retries)
HANG_S = 60  # only a hang reaches this


@pytest.fixture(scope="module")
def snmpd_v3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """net-snmp snmpd with one authPriv user (SHA-256 / AES-128) serving the rfc1628-ups examples."""
    agent = Snmpd(
        tmp_path_factory.mktemp("snmpd-v3"),
        [
            f"createUser {GOOD.user} SHA-256 {GOOD.auth_key} AES {GOOD.priv_key}",
            f"rouser {GOOD.user} priv",
            *profile_overrides("rfc1628-ups"),
        ],
        ready=v3_args(GOOD.user, GOOD.auth_key, GOOD.priv_key),
    )
    yield agent.port
    agent.close()


def target(name: str, port: int, creds: SnmpV3) -> PollTarget:
    profile = snmp_profile("rfc1628-ups")
    return PollTarget(
        ref=DeviceRef("s", "r", name, profile.device_class, profile.model),
        reader=SnmpReader(profile, SnmpTarget("127.0.0.1", port, TIMEOUT_S, RETRIES, creds)),
        interval_s=INTERVAL_S,
        timeout_s=TIMEOUT_S,
        retries=RETRIES,
    )


async def test_wrong_privacy_key_at_1s_interval_is_auth_error_through_the_poller(snmpd_v3: int) -> None:
    targets = [target("ups-ok", snmpd_v3, GOOD), target("ups-wrong-priv", snmpd_v3, WRONG_PRIV)]
    first: dict[str, PollResult] = {}
    both = asyncio.Event()

    async def sink(result: PollResult) -> None:
        first.setdefault(result.ref.device, result)
        if len(first) == len(targets):
            both.set()

    poller = Poller(targets, sink, seed=1)
    task = asyncio.create_task(poller.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(both.wait(), HANG_S)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await poller.close()
    ok, wrong = first["ups-ok"], first["ups-wrong-priv"]
    assert ok.quality is Quality.GOOD, ok.error
    assert wrong.quality is Quality.AUTH_ERROR, wrong.error
    assert "AuthFailure" in (wrong.error or "")
    assert all(m.value is None for m in wrong.metrics)


def test_deadline_covers_every_attempt_and_the_probe() -> None:
    t = target("x", 161, GOOD)
    assert t.deadline_s > TIMEOUT_S * (RETRIES + 1) + min(TIMEOUT_S, 1.0)
    slow = PollTarget(ref=t.ref, reader=t.reader, interval_s=60, timeout_s=2, retries=3)
    assert slow.deadline_s >= 60  # never shorter than an interval
