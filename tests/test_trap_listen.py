"""Which configured device sent a trap, when several agents share one address (pure lookups)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.render import format_trap
from collector.trap_listen import trap_sender
from devices.reading import DeviceClass
from devices.traps import TrapEvent
from siteconfig.config import load_site

SITE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "site.yaml"


def _event(source: str, cls: DeviceClass | None) -> TrapEvent:
    return TrapEvent(
        ts=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        source=source,
        trap_oid="1.3.6.1.2.1.33.2.1",
        name="upsTrapOnBattery",
        varbinds={},
        device_class=cls,
        event={"on_battery": True},
    )


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(DeviceClass.UPS, "ups-1"), (DeviceClass.DOOR, "door-main"), (DeviceClass.ENV, None), (None, None)],
)
def test_shared_agent_address_is_narrowed_by_device_class(
    cls: DeviceClass | None, expected: str | None
) -> None:
    site = load_site(SITE)
    assert trap_sender(site, _event("127.0.0.1:16100", cls)) == expected


def test_unknown_sender_stays_unnamed() -> None:
    site = load_site(SITE)
    assert trap_sender(site, _event("192.0.2.9:161", DeviceClass.UPS)) is None


def test_trap_line_names_device_time_and_meaning() -> None:
    line = format_trap(_event("127.0.0.1:16100", DeviceClass.UPS), "ups-1", "Asia/Taipei")
    assert line.startswith("10:00:00 ups-1")
    assert "upsTrapOnBattery" in line
    assert "on_battery=true" in line


def test_trap_line_shows_every_varbind_no_field_is_decoded_from() -> None:
    ev = TrapEvent(
        ts=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        source="192.0.2.7:162",
        trap_oid="1.3.6.1.2.1.33.2.0.1",
        name="upsTrapOnBattery",
        varbinds={},
        device_class=DeviceClass.UPS,
        event={"on_battery": True},
        carried={
            "1.3.6.1.2.1.33.1.9.7.0": 3,
            "1.3.6.1.6.3.18.1.3.0": "192.0.2.7",
            "1.3.6.1.4.1.99.1.0": "two words",
            "1.3.6.1.4.1.99.2.0": b"\x00\xff",
        },
    )
    line = format_trap(ev, "ups-1")
    assert line.endswith(
        "upsTrapOnBattery  on_battery=true  1.3.6.1.2.1.33.1.9.7.0=3  snmpTrapAddress.0=192.0.2.7"
        "  1.3.6.1.4.1.99.1.0='two words'  1.3.6.1.4.1.99.2.0=0x00ff"
    )
