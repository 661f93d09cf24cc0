"""Shared fixtures: the real servers of testkit/services.py (mosquitto, influxd, victoria-metrics)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.services import Influxd, Mosquitto, VictoriaMetrics, serve


@pytest.fixture(scope="session", autouse=True)
def _private_net_snmp_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """net-snmp tools keep their engine boots and id in this run's own folder, not /var/lib/snmp.

    snmpinform, snmptrap, snmpget … read and rewrite snmpapp.conf there on every call; two runs side by
    side (or a run beside an operator's tool) rewriting it at once made a v3 inform fail in both with
    "buffer too small to read octet string (17 < 17)" and a timeout. The subprocesses inherit this.
    """
    old = os.environ.get("SNMP_PERSISTENT_DIR")
    os.environ["SNMP_PERSISTENT_DIR"] = str(tmp_path_factory.mktemp("net-snmp-state"))
    yield
    if old is None:
        os.environ.pop("SNMP_PERSISTENT_DIR", None)
    else:
        os.environ["SNMP_PERSISTENT_DIR"] = old


# Session-scoped servers are shared: tests use their own database/measurement names. The function-scoped
# public fixtures restart a server a previous test left stopped. Tests that stop or kill a server for an
# outage use the `*_private` fixtures, which give each test its own instance.


@pytest.fixture(scope="session")
def _mosquitto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from serve(Mosquitto(tmp_path_factory.mktemp("mosquitto")))


@pytest.fixture(scope="session")
def _influxd_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    yield from serve(Influxd(tmp_path_factory.mktemp("influxd")))


@pytest.fixture(scope="session")
def _victoria_metrics_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    yield from serve(VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics")))


@pytest.fixture
def mosquitto(_mosquitto_session: Mosquitto) -> Mosquitto:
    """Shared mosquitto (session); credentials in `.username`/`.password`."""
    _mosquitto_session.start()
    return _mosquitto_session


@pytest.fixture
def influxd(_influxd_session: Influxd) -> Influxd:
    """Shared InfluxDB 1.6 (session) with database `.database` created."""
    _influxd_session.start()
    return _influxd_session


@pytest.fixture
def victoria_metrics(_victoria_metrics_session: VictoriaMetrics) -> VictoriaMetrics:
    """Shared VictoriaMetrics (session)."""
    _victoria_metrics_session.start()
    return _victoria_metrics_session


@pytest.fixture
def mosquitto_private(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto of this test alone, free to stop/kill (autosave every 1 s so a SIGKILL loses ≤ 1 s)."""
    yield from serve(Mosquitto(tmp_path / "mosquitto", autosave_interval_s=1))


@pytest.fixture
def influxd_private(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB 1.6 of this test alone, free to stop/kill."""
    yield from serve(Influxd(tmp_path / "influxd"))


@pytest.fixture
def victoria_metrics_private(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics of this test alone, free to stop/kill."""
    yield from serve(VictoriaMetrics(tmp_path / "victoria-metrics"))
