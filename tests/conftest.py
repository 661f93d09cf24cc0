"""Shared fixtures: the real servers of tests/services.py (mosquitto, influxd, victoria-metrics)."""

from tests.services import (
    _influxd_session,
    _mosquitto_session,
    _victoria_metrics_session,
    influxd,
    influxd_private,
    mosquitto,
    mosquitto_private,
    victoria_metrics,
    victoria_metrics_private,
)

__all__ = [
    "_influxd_session",
    "_mosquitto_session",
    "_victoria_metrics_session",
    "influxd",
    "influxd_private",
    "mosquitto",
    "mosquitto_private",
    "victoria_metrics",
    "victoria_metrics_private",
]
