"""The live environment window of compliance.telemetry: inlet sensors only, and the site's checks on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compliance.telemetry import Telemetry
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.yamlload import ConfigError
from siteconfig.compliance_config import Environment
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import EXAMPLE

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def _env_poll(device: str, at: datetime, temp: float, rh: float) -> PollResult:
    ref = DeviceRef("tpe1", "mr1", device, DeviceClass("env"), "geist-watchdog15")
    return PollResult(ref, at, (Metric("temp_c", temp), Metric("rh_pct", rh)))


def test_hot_aisle_probes_named_in_the_site_are_not_judged_as_inlets() -> None:
    telemetry = Telemetry(Environment(exclude_devices=["th-a-hot"]))
    for minute in range(10):
        at = T0 + timedelta(minutes=minute)
        telemetry.poll(_env_poll("th-a-cold", at, 22.0, 45.0))
        telemetry.poll(_env_poll("th-a-hot", at, 36.0, 30.0))  # outside even A1: would fail the room
    window = telemetry.environment(T0 + timedelta(minutes=10))["mr1"]
    assert (window.samples, window.outside_recommended, window.outside_allowable) == (10, 0, 0)
    assert window.worst_temp_c == 22.0
    # Still a device the board knows: its readings are kept, only not judged against the envelope.
    assert telemetry.devices["th-a-hot"].metrics["temp_c"] == 36.0


def test_without_exclusions_every_env_sensor_counts() -> None:
    telemetry = Telemetry(Environment())
    telemetry.poll(_env_poll("th-a-cold", T0, 22.0, 45.0))
    telemetry.poll(_env_poll("th-a-hot", T0, 36.0, 30.0))
    window = telemetry.environment(T0 + timedelta(minutes=1))["mr1"]
    assert (window.samples, window.outside_allowable) == (2, 1)


def test_an_excluded_device_must_exist(tmp_path: Path) -> None:

    text = EXAMPLE.read_text().replace(
        "exclude_devices: [th-a-hot, th-b-hot]", "exclude_devices: [th-a-hot, th-z]"
    )
    assert "th-z" in text
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_site(path)
    message = str(err.value)
    print(message)
    assert "exclude_devices" in message
    assert "th-z" in message
    assert "unknown device" in message
    assert "th-a-hot" in message  # the valid choices
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "exclude_devices" in row)
    assert any(e.line == line for e in err.value.errors)


def test_the_example_site_excludes_its_hot_aisle_probes() -> None:
    site: SiteConfig = load_site(EXAMPLE)
    hot = sorted(d.id for d in site.devices if d.tags.get("aisle") == "hot")
    assert hot == ["th-a-hot", "th-b-hot"]
    assert sorted(site.compliance.environment.exclude_devices) == hot
