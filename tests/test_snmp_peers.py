"""Independent peers and SNMPv3 security: NUT snmp-ups vs our simulator, v3 auth against sim and snmpd."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devices.errors import AuthFailure, DeviceTimeout
from devices.reading import Metric
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV3
from tests.snmp_fixtures import Snmpd, free_udp_port, require_tool, snmp_profile, v3_args

pytestmark = pytest.mark.integration

GOOD_V3 = SnmpV3("rguser", "sha256", "authpass123", "aes128", "privpass123")
WRONG_AUTH = SnmpV3("rguser", "sha256", "wrongauth123", "aes128", "privpass123")
WRONG_PRIV = SnmpV3("rguser", "sha256", "authpass123", "aes128", "wrongpriv123")
UNKNOWN_USER = SnmpV3("nobody", "sha256", "authpass123", "aes128", "privpass123")


def by_name(metrics: list[Metric]) -> dict[str, Metric]:
    """Metrics keyed by name."""
    return {m.name: m for m in metrics}


@pytest.fixture
async def ups_agent() -> AsyncIterator[SnmpSimAgent]:
    """rfc1628-ups on battery (v2c community ups1, v3 user rguser SHA-256/AES-128)."""
    ag = SnmpSimAgent("127.0.0.1", 0)
    ag.add_device(
        "ups1",
        snmp_profile("rfc1628-ups"),
        {"output_source": "battery", "battery_charge_pct": 87, "runtime_s": 1200},
        v3=GOOD_V3,
    )
    ag.add_device(
        "ups2",
        snmp_profile("rfc1628-ups"),
        {},
        v3=SnmpV3("strong", "sha512", "authpass512", "aes256", "privpass256"),
    )
    await ag.start()
    yield ag
    await ag.stop()


# ------------------------------------------------------------------------------- NUT snmp-ups


async def nut_dump(port: int, community: str, tmp: Path) -> dict[str, str]:
    """One-shot `snmp-ups -d 1` dump (NUT 2.8.0, mibs=ietf) as a dict of NUT variables."""
    exe = require_tool("/lib/nut/snmp-ups")
    (tmp / "etc").mkdir(parents=True)
    (tmp / "state").mkdir(mode=0o777)
    conf = tmp / "etc" / "ups.conf"
    conf.write_text(
        f"[ups]\n driver = snmp-ups\n port = 127.0.0.1:{port}\n community = {community}\n"
        " snmp_version = v2c\n mibs = ietf\n"
    )
    conf.chmod(0o640)
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-a",
        "ups",
        "-u",
        "root",
        "-d",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NUT_CONFPATH": str(tmp / "etc"), "NUT_STATEPATH": str(tmp / "state")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    return dict(line.split(": ", 1) for line in out.decode().splitlines() if ": " in line)


async def test_nut_snmp_ups_agrees_with_reader(ups_agent: SnmpSimAgent, tmp_path: Path) -> None:
    reader = SnmpReader(snmp_profile("rfc1628-ups"), SnmpTarget("127.0.0.1", ups_agent.port, 2, 1, GOOD_V3))
    ours = by_name(await reader.read())
    nut = await nut_dump(ups_agent.port, "ups1", tmp_path / "ob")
    assert ours["on_battery"].value is True
    assert nut["ups.status"].split()[0] == "OB"
    assert float(nut["battery.charge"]) == ours["battery_charge_pct"].value == 87
    assert float(nut["battery.runtime"]) == ours["runtime_s"].value == 1200
    await ups_agent.set_values("ups1", {"output_source": "normal", "battery_charge_pct": 100})
    ours = by_name(await reader.read())
    nut = await nut_dump(ups_agent.port, "ups1", tmp_path / "ol")
    assert ours["on_battery"].value is False
    assert nut["ups.status"].split()[0] == "OL"
    assert float(nut["battery.charge"]) == ours["battery_charge_pct"].value == 100


# ------------------------------------------------------------------------------- SNMPv3 vs our agent


async def test_v3_right_credentials_read_values(ups_agent: SnmpSimAgent) -> None:
    got = by_name(
        await SnmpReader(
            snmp_profile("rfc1628-ups"), SnmpTarget("127.0.0.1", ups_agent.port, 2, 1, GOOD_V3)
        ).read()
    )
    assert got["battery_charge_pct"].value == 87
    strong = SnmpV3("strong", "sha512", "authpass512", "aes256", "privpass256")
    got = by_name(
        await SnmpReader(
            snmp_profile("rfc1628-ups"), SnmpTarget("127.0.0.1", ups_agent.port, 2, 1, strong)
        ).read()
    )
    assert got["battery_charge_pct"].value == 100  # ups2 serves the examples


@pytest.mark.parametrize("creds", [WRONG_AUTH, WRONG_PRIV, UNKNOWN_USER], ids=["auth", "priv", "user"])
async def test_v3_wrong_credentials_never_give_values(ups_agent: SnmpSimAgent, creds: SnmpV3) -> None:
    reader = SnmpReader(snmp_profile("rfc1628-ups"), SnmpTarget("127.0.0.1", ups_agent.port, 1, 0, creds))
    with pytest.raises(AuthFailure):
        await reader.read()


async def test_v3_silent_agent_is_a_timeout_not_auth(tmp_path: Path) -> None:
    port = free_udp_port()  # nothing listens: a timeout must stay a timeout
    with pytest.raises(DeviceTimeout):
        await SnmpTarget("127.0.0.1", port, 0.3, 0, GOOD_V3).get(["1.3.6.1.2.1.1.3.0"])


# ------------------------------------------------------------------------------- SNMPv3 vs net-snmp snmpd


@pytest.fixture(scope="module")
def snmpd_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real net-snmp snmpd with one authPriv user (SHA-256 / AES-128) on a free port."""
    agent = Snmpd(
        tmp_path_factory.mktemp("snmpd"),
        [
            f"createUser {GOOD_V3.user} SHA-256 {GOOD_V3.auth_key} AES {GOOD_V3.priv_key}",
            f"rouser {GOOD_V3.user} priv",
            "sysDescr roomguard snmpd peer",
        ],
        ready=v3_args(GOOD_V3.user, GOOD_V3.auth_key, GOOD_V3.priv_key),
    )
    yield agent.port
    agent.close()


async def test_snmpd_v3_right_password(snmpd_port: int) -> None:
    got = await SnmpTarget("127.0.0.1", snmpd_port, 2, 1, GOOD_V3).get(["1.3.6.1.2.1.1.1.0"])
    assert got == {"1.3.6.1.2.1.1.1.0": "roomguard snmpd peer"}
    walked = await SnmpTarget("127.0.0.1", snmpd_port, 2, 1, GOOD_V3).walk("1.3.6.1.2.1.1")
    assert walked["1.3.6.1.2.1.1.1.0"] == "roomguard snmpd peer"


@pytest.mark.parametrize("creds", [WRONG_AUTH, WRONG_PRIV, UNKNOWN_USER], ids=["auth", "priv", "user"])
async def test_snmpd_v3_wrong_credentials_are_auth_failures(snmpd_port: int, creds: SnmpV3) -> None:
    # snmpd drops a wrongly encrypted PDU silently ("error parsing ScopedPDU"): the transport must still
    # say AuthFailure (agent alive, discovery answered), never values and never a plain timeout.
    with pytest.raises(AuthFailure):
        await SnmpTarget("127.0.0.1", snmpd_port, 1, 0, creds).get(["1.3.6.1.2.1.1.1.0"])
