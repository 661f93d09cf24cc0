"""One GETBULK per steady-state SNMP poll: PDU counts, and results equal to the GET + walk path."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from devices.errors import DeviceProtocolError
from devices.reading import Metric, Quality
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import plan_requests
from devices.snmp_profile import SnmpProfile
from devices.snmp_reader import GET_CHUNK, SnmpReader
from devices.snmp_transport import BulkResponse, BulkUnsupported, SnmpTarget, SnmpV2c, SnmpV3
from tests.snmp_fixtures import GOLDEN, snmp_profile, snmp_profiles, snmpsim_port
from tests.test_golden_snmp import assert_matches_golden

__all__ = ["snmpsim_port"]  # re-exported fixture

pytestmark = pytest.mark.integration

V3 = SnmpV3("pduuser", "sha256", "authpass123", "aes128", "privpass123")
BASE = "1.3.6.1.4.1.99999.1"


def odd_profile(model: str = "odd-scalars", with_second_row: bool = True) -> SnmpProfile:
    """Scalars GETNEXT of the parent cannot answer: a second instance, and missing objects."""
    scalars: list[dict[str, Any]] = [
        {"name": "plain", "oid": f"{BASE}.1.0", "example": 5},
        {"name": "row1", "oid": f"{BASE}.2.1", "example": 11},  # first instance under .2
        {"name": "missing", "oid": f"{BASE}.3.0"},  # no example: the agent does not serve it
        {"name": "missing_before", "oid": f"{BASE}.4.5"},  # missing, but .4.7 follows it
        {"name": "later", "oid": f"{BASE}.4.7", "example": 47},  # first *served* instance under .4
    ]
    if with_second_row:
        scalars.append({"name": "row2", "oid": f"{BASE}.2.2", "example": 12})  # .2.1 comes first
    return SnmpProfile.model_validate(
        {
            "model": model,
            "vendor": "test",
            "title": "odd scalars",
            "device_class": "env",
            "protocol": "snmp",
            "scalars": scalars,
            "tables": [
                {
                    "name": "t",
                    "rows": {"1": "", "2": ""},
                    "columns": [{"oid": f"{BASE}.5.1.2", "metric": "col{index}", "example": 3}],
                }
            ],
        }
    )


@pytest.fixture
async def agent() -> AsyncIterator[SnmpSimAgent]:
    """Every SNMP profile with its examples (community = model), a v3 UPS, and the odd-scalar profiles."""
    ag = SnmpSimAgent("127.0.0.1", 0)
    for model in snmp_profiles():
        ag.add_device(model, snmp_profile(model))
    ag.add_device("ups-v3", snmp_profile("rfc1628-ups"), {"battery_charge_pct": 64}, v3=V3)
    ag.add_device("odd", odd_profile())
    ag.add_device("odd-first-only", odd_profile("odd-first-only", with_second_row=False))
    await ag.start()
    yield ag
    await ag.stop()


def by_name(metrics: list[Metric]) -> dict[str, Metric]:
    """Metrics keyed by name."""
    return {m.name: m for m in metrics}


async def pdus_per_poll(reader: SnmpReader, polls: int) -> list[int]:
    """Requests each of `polls` consecutive reads sent."""
    counts = []
    for _ in range(polls):
        before = reader.target.requests
        await reader.read()
        counts.append(reader.target.requests - before)
    return counts


def pair(profile: SnmpProfile, port: int, key: str, **kw: Any) -> tuple[SnmpReader, SnmpReader]:
    """A combined-path reader and a GET + walk reader for the same device."""
    return (
        SnmpReader(profile, SnmpTarget("127.0.0.1", port, 3, 1, SnmpV2c(key)), **kw),
        SnmpReader(profile, SnmpTarget("127.0.0.1", port, 3, 1, SnmpV2c(key)), combine=False, **kw),
    )


# ------------------------------------------------------------------------------- one PDU per poll


def _pdus_allowed(profile: SnmpProfile) -> int:
    """One PDU per poll, unless the profile's scalars alone exceed what one GET may carry (GET_CHUNK:
    embedded agents refuse bigger PDUs) and it has no table to combine them with."""
    plan = plan_requests(profile)
    if plan.walk_roots or len(plan.get_oids) <= GET_CHUNK:
        return 1
    return math.ceil(len(plan.get_oids) / GET_CHUNK)


@pytest.mark.parametrize("model", snmp_profiles())
async def test_steady_state_poll_sends_one_pdu(agent: SnmpSimAgent, model: str) -> None:
    profile = snmp_profile(model)
    reader = SnmpReader(profile, SnmpTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c(model)))
    counts = await pdus_per_poll(reader, 4)
    allowed = _pdus_allowed(profile)
    assert counts[1:] == [allowed] * 3, (counts, allowed)


async def test_v3_steady_state_poll_sends_one_pdu(agent: SnmpSimAgent) -> None:
    reader = SnmpReader(snmp_profile("rfc1628-ups"), SnmpTarget("127.0.0.1", agent.port, 2, 1, V3))
    assert (await pdus_per_poll(reader, 3))[1:] == [1, 1]
    assert reader.combined
    assert by_name(await reader.read())["battery_charge_pct"].value == 64


async def test_two_request_path_still_sends_two(agent: SnmpSimAgent) -> None:
    _, split = pair(snmp_profile("rfc1628-ups"), agent.port, "rfc1628-ups")
    assert (await pdus_per_poll(split, 3))[1:] == [2, 2]


# ------------------------------------------------------------------------------- same results


@pytest.mark.parametrize("model", snmp_profiles())
async def test_combined_equals_two_request_path_on_sim_agent(agent: SnmpSimAgent, model: str) -> None:
    combined, split = pair(snmp_profile(model), agent.port, model)
    for _ in range(3):  # first poll (no row hint yet) and steady state
        assert await combined.read_raw() == await split.read_raw()
        assert await combined.read() == await split.read()


@pytest.mark.parametrize("model", snmp_profiles())
async def test_table_outgrowing_the_hint_is_walked_on(agent: SnmpSimAgent, model: str) -> None:
    # max_repetitions=1: every column with more than one row continues after the combined GETBULK.
    combined, split = pair(snmp_profile(model), agent.port, model, max_repetitions=1)
    for _ in range(2):
        assert await combined.read_raw() == await split.read_raw()


@pytest.mark.parametrize(
    ("community", "model", "case"),
    [
        ("eaton-93e", "rfc1628-ups", "eaton-93e"),
        ("liebert-pex", "liebert-gp-crac", "liebert-pex"),
    ],
)
async def test_combined_equals_two_request_path_on_snmpsim(
    snmpsim_port: int, community: str, model: str, case: str
) -> None:
    combined, split = pair(snmp_profile(model), snmpsim_port, community)
    for _ in range(3):
        assert await combined.read_raw() == await split.read_raw()
        assert_matches_golden(await combined.read(), GOLDEN / model / case)
    assert combined.combined
    assert await pdus_per_poll(combined, 2) == [1, 1]
    assert await pdus_per_poll(split, 2) == [2, 2]


# ------------------------------------------------------------------------------- awkward scalars


async def test_not_first_instance_and_missing_scalars_decode_as_before(agent: SnmpSimAgent) -> None:
    combined, split = pair(odd_profile(), agent.port, "odd")
    for _ in range(3):
        assert await combined.read_raw() == await split.read_raw()
        m = by_name(await combined.read())
        assert (m["plain"].value, m["row1"].value, m["row2"].value, m["later"].value) == (5, 11, 12, 47)
        assert m["missing"].quality is Quality.UNAVAILABLE
        assert m["missing_before"].quality is Quality.UNAVAILABLE
        assert m["col1"].value == m["col2"].value == 3
    # row2 can never be reached by GETNEXT of its parent: the GETBULK plus one GET for it.
    assert await pdus_per_poll(combined, 2) == [2, 2]


async def test_missing_scalars_need_no_get_once_confirmed(agent: SnmpSimAgent) -> None:
    reader = SnmpReader(
        odd_profile("odd-first-only", with_second_row=False),
        SnmpTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c("odd-first-only")),
    )
    # First poll: a GET confirms what GETNEXT skipped is missing; afterwards one PDU says so.
    assert await pdus_per_poll(reader, 3) == [2, 1, 1]
    m = by_name(await reader.read())
    assert m["missing"].quality is Quality.UNAVAILABLE
    assert m["missing_before"].quality is Quality.UNAVAILABLE
    await agent.set_values("odd-first-only", {"missing": 7, "missing_before": 45})  # objects appear
    m = by_name(await reader.read())
    assert (m["missing"].value, m["missing_before"].value, m["later"].value) == (7, 45, 47)
    await agent.set_values("odd-first-only", {"missing": None, "missing_before": None})  # and go again
    for _ in range(2):
        m = by_name(await reader.read())
        assert m["missing"].quality is Quality.UNAVAILABLE
        assert m["missing_before"].quality is Quality.UNAVAILABLE
    assert (await pdus_per_poll(reader, 2)) == [1, 1]


# ------------------------------------------------------------------------------- fallback


class _NoBulkTarget(SnmpTarget):
    """An agent that answers tooBig to the combined request (as some embedded agents do)."""

    async def bulk(
        self, non_repeaters: Sequence[str], repeaters: Sequence[str], max_repetitions: int
    ) -> BulkResponse:
        self.requests += 1
        raise BulkUnsupported(f"{self}: tooBig")


async def test_too_big_falls_back_to_two_requests(agent: SnmpSimAgent) -> None:
    profile = snmp_profile("rfc1628-ups")
    reader = SnmpReader(profile, _NoBulkTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c("rfc1628-ups")))
    _, split = pair(profile, agent.port, "rfc1628-ups")
    assert await reader.read() == await split.read()
    assert not reader.combined
    assert await pdus_per_poll(reader, 2) == [2, 2]  # never tries the combined request again


class _GenErrTarget(SnmpTarget):
    """An agent answering genErr to the combined request, and optionally to plain GETs too."""

    def __init__(self, *args: Any, get_fails: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.get_fails = get_fails

    async def bulk(
        self, non_repeaters: Sequence[str], repeaters: Sequence[str], max_repetitions: int
    ) -> BulkResponse:
        self.requests += 1
        raise BulkUnsupported(f"{self}: genErr", definite=False)

    async def get(self, oids: Sequence[str]) -> dict[str, Any]:
        if self.get_fails:
            self.requests += 1
            raise DeviceProtocolError(f"{self}: genErr at {oids[0]}")
        return await super().get(oids)


async def test_other_error_status_falls_back_only_when_separate_requests_work(agent: SnmpSimAgent) -> None:
    profile = snmp_profile("rfc1628-ups")
    broken = SnmpReader(
        profile, _GenErrTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c("rfc1628-ups"), get_fails=True)
    )
    with pytest.raises(DeviceProtocolError, match="genErr at"):  # the plain GET's error, as before
        await broken.read()
    assert broken.combined  # the device is broken, not the combined request
    reader = SnmpReader(profile, _GenErrTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c("rfc1628-ups")))
    _, split = pair(profile, agent.port, "rfc1628-ups")
    assert await reader.read() == await split.read()
    assert not reader.combined
