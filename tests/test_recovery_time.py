"""After an outage the pipeline is back within seconds: reconnect and database retries are capped at
`mqtt.reconnect_max_s` / `influxdb.retry_max_s` (3 s by default), so a 35 s outage costs about 35 s.

Before, the backoff doubled up to 30 s: collector and ingest came back 27 s after mosquitto, and ingest
wrote again ~30 s after InfluxDB. The limit asserted here (12 s) is far above the cap plus the 2 s status
snapshot interval, and far below what the old backoff took: no machine is too slow for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from testkit.services import Influxd, Mosquitto
from tests.test_pipeline_outages import _collect_and_ingest_running, modbus_room

pytestmark = pytest.mark.integration
__all__ = ["modbus_room"]
OUTAGE_S = 35
BACK_WITHIN_S = 12.0


def _snap(state: Path, name: str) -> dict[str, Any]:
    try:
        return dict(json.loads((state / f"{name}.json").read_text()))
    except (OSError, ValueError):
        return {}


async def _seconds_until(cond: Any, limit_s: float = 60.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > limit_s:
            return float("inf")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def test_broker_and_database_are_used_again_within_seconds_of_their_return(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with _collect_and_ingest_running(
        tmp_path, modbus_room, mosquitto_private, influxd_private, "collect.log"
    ):
        mosquitto_private.stop()
        assert await _seconds_until(lambda: not _snap(state, "collector")["broker"]["connected"]) < 30
        await asyncio.sleep(OUTAGE_S)
        mosquitto_private.start()
        both = await _seconds_until(
            lambda: (
                _snap(state, "collector")["broker"]["connected"]
                and _snap(state, "ingest")["broker_connected"]
            )
        )
        assert both <= BACK_WITHIN_S, f"collector and ingest reconnected {both:.1f} s after the broker"

        influxd_private.stop()
        assert await _seconds_until(lambda: _snap(state, "ingest")["db_state"] == "retrying") < 30
        await asyncio.sleep(OUTAGE_S)
        influxd_private.start()
        back = await _seconds_until(lambda: _snap(state, "ingest")["db_state"] == "ok")
        assert back <= BACK_WITHIN_S, f"ingest wrote again {back:.1f} s after the database"
