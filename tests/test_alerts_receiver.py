# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation.
"""`roomguard alerts receive`: prints what a signed webhook delivers, in both languages, and refuses what
the key did not sign."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from alerts.notify.base import DeliveryError, Notification
from alerts.notify.webhook import WebhookChannel
from alerts.receiver import AlertReceiver, describe, serve
from testkit.services import free_tcp_port

PAYLOAD = {
    "schema": "roomguard.alert/1",
    "id": "temp-high:tpe-hq:mr1:th-a01:temp_c",
    "state": "firing",
    "severity": "warning",
    "rule": "temp-high",
    "labels": {"site": "tpe-hq", "room": "mr1", "device": "th-a01"},
    "texts": {
        "zh_TW": "th-a01 temp_c 27.6 °C，高於 27 °C",
        "en": "th-a01 temp_c 27.6 °C above 27 °C",
        "forecast_zh_TW": "溫度每分鐘上升 0.8 °C，約 6 分鐘後達 32 °C",
        "forecast_en": "+0.8 °C/min, 32 °C in about 6 min",
    },
}


def test_describe_shows_state_device_and_both_languages() -> None:
    text = describe(PAYLOAD)
    assert text.splitlines() == [
        "[FIRING] WARNING temp-high mr1/th-a01",
        "  th-a01 temp_c 27.6 °C，高於 27 °C; 溫度每分鐘上升 0.8 °C，約 6 分鐘後達 32 °C",
        "  th-a01 temp_c 27.6 °C above 27 °C; +0.8 °C/min, 32 °C in about 6 min",
    ]


async def test_signed_deliveries_are_shown_and_logged_unsigned_ones_refused(tmp_path: Path) -> None:
    shown: list[str] = []
    log = tmp_path / "alerts.jsonl"
    receiver = AlertReceiver("the-key", shown.append, log)
    port = free_tcp_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(receiver, "127.0.0.1", port, stop))
    await asyncio.sleep(0.3)
    note = Notification(PAYLOAD["id"], "firing", "warning", "s", "s", "b", "b", PAYLOAD)  # type: ignore[arg-type]
    try:
        await WebhookChannel("hook", f"http://127.0.0.1:{port}/roomguard", "the-key").send(note)
        wrong = WebhookChannel("hook", f"http://127.0.0.1:{port}/roomguard", "another-key")
        with pytest.raises(DeliveryError, match="401") as refused:
            await wrong.send(note)
        assert not refused.value.retryable
    finally:
        stop.set()
        await task
    assert (receiver.accepted, receiver.refused) == (1, 1)
    assert shown[0].startswith("[FIRING] WARNING temp-high mr1/th-a01")
    assert "refused" in shown[1]
    assert json.loads(log.read_text(encoding="utf-8").splitlines()[0])["id"] == PAYLOAD["id"]


def test_a_summary_lists_every_alert_it_holds_and_a_margin_in_the_text_is_shown_once() -> None:
    on_battery = {
        "schema": "roomguard.alert/1",
        "state": "firing",
        "severity": "critical",
        "rule": "ups-on-battery",
        "labels": {"room": "mr1", "device": "ups-1"},
        "texts": {
            "zh_TW": "UPS ups-1（mr1）改由電池供電：電池剩餘 30 分鐘",
            "en": "UPS ups-1 (mr1) is on battery: runtime 30 min",
            "margin_zh_TW": "電池剩餘 30 分鐘",
            "margin_en": "runtime 30 min",
        },
    }
    summary = {
        "schema": "roomguard.alert-summary/1",
        "count": 2,
        "labels": {"room": "mr1"},
        "alerts": [{"alert": on_battery}, {"alert": PAYLOAD}],
    }
    lines = describe(summary).splitlines()
    assert lines[0] == "[SUMMARY 彙總] 2 alerts 則告警 mr1"
    assert "  [FIRING] CRITICAL ups-on-battery mr1/ups-1" in lines
    assert "    UPS ups-1 (mr1) is on battery: runtime 30 min" in lines
    assert "  [FIRING] WARNING temp-high mr1/th-a01" in lines
