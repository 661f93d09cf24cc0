"""Item (十三) of the CC-16000 board from the access reviews: on cadence, due soon, overdue, decisions
not carried out, none signed (unknown); and the compliance process publishing it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.access.board import access_review_result
from compliance.access.model import Grant
from compliance.access.review import Review, ReviewLine, SignOff
from compliance.items import ACCESS_REVIEW
from siteconfig.compliance_config import Cadence

TZ = ZoneInfo("Asia/Taipei")
SIGNED = datetime(2026, 10, 5, 10, tzinfo=TZ)
QUARTERLY = Cadence(every_days=92, warn_days=14)


def _review(status: str = "signed", decision: str = "keep") -> tuple[Review, Grant]:
    g = Grant("G1", "E1", "C1", ("mr1",), datetime(2026, 1, 5, tzinfo=TZ), approver="A", requester="R")
    line = ReviewLine(1, g, None, (), None, 0, "none", decision=decision, reason="x")  # type: ignore[arg-type]
    review = Review("ACR-2026Q3-s", "s", "2026Q3", SIGNED, SIGNED, SIGNED, "m", (line,), status="open")
    if status == "signed":
        review = replace(review, status="signed", sign_offs=(SignOff("資訊主管", SIGNED),))
    return review, g


@pytest.mark.parametrize(
    ("days_after", "status"),
    [(30, "pass"), (78, "warn"), (92, "warn"), (92.01, "fail")],  # 92 - 14 = 78: warn_days exactly
)
def test_the_cadence_of_signed_reviews(days_after: float, status: str) -> None:
    review, g = _review()
    result = access_review_result([review], [g], QUARTERLY, SIGNED + timedelta(days=days_after), TZ)
    assert result is not None
    assert (result.item, result.status) == (ACCESS_REVIEW.key, status)
    assert result.next_due == SIGNED + timedelta(days=92)
    assert result.evidence[0].ref == "ACR-2026Q3-s"
    assert "ACR-2026Q3-s" in result.reason_zh
    assert "signed off 2026-10-05" in result.reason_en


def test_no_signed_review_is_no_evidence() -> None:
    review, g = _review(status="open")
    assert access_review_result([review], [g], QUARTERLY, SIGNED, TZ) is None
    assert access_review_result([], [], QUARTERLY, SIGNED, TZ) is None


def test_a_revoke_not_carried_out_warns_until_the_grant_ends() -> None:
    review, g = _review(decision="revoke")
    now = SIGNED + timedelta(days=10)
    result = access_review_result([review], [g], QUARTERLY, now, TZ)
    assert result is not None
    assert result.status == "warn"
    assert "not carried out" in result.reason_en
    assert "G1" in result.reason_zh
    ended = replace(g, valid_to=SIGNED + timedelta(days=1))
    done = access_review_result([review], [ended], QUARTERLY, now, TZ)
    assert done is not None
    assert done.status == "pass"


def test_the_process_puts_the_review_on_the_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compliance.access.store import AccessStore
    from compliance.process import ComplianceProcess
    from records.audit import Actor
    from siteconfig.config import load_site
    from testkit.example_site import SECRETS, example_site

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    site = load_site(example_site(tmp_path / "site.yaml")[0])
    now = SIGNED + timedelta(days=20)
    process = ComplianceProcess(site, tmp_path / "state", clock=lambda: now)
    by_key = {r.item: r for r in process.evaluate_now(now)}
    assert by_key[ACCESS_REVIEW.key].status == "unknown"
    review, g = _review()
    store = AccessStore(process.records.sessions)
    store.put_grants([g], Actor("t", "test"), now)
    store.start(review, Actor("t", "test"), now)
    by_key = {r.item: r for r in process.evaluate_now(now)}
    assert by_key[ACCESS_REVIEW.key].status == "pass"
    assert "ACR-2026Q3-s" in by_key[ACCESS_REVIEW.key].reason_en


async def test_door_events_from_the_bus_are_kept_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from bus.consumer import Message
    from compliance.access.store import AccessStore
    from compliance.process import ComplianceProcess
    from devices.wire import WireEvent, encode_event, topic_events
    from siteconfig.config import load_site
    from testkit.example_site import SECRETS, example_site

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    site = load_site(example_site(tmp_path / "site.yaml")[0])
    process = ComplianceProcess(site, tmp_path / "state", clock=lambda: SIGNED)
    topic = topic_events(site.mqtt.topic_prefix, site.site.id)
    forced = WireEvent(SIGNED, site.site.id, "door", "forced", room="mr1", device="door-main")
    held = WireEvent(
        SIGNED + timedelta(minutes=3), site.site.id, "door", "held_open", room="mr1", device="door-rear"
    )
    trap = WireEvent(SIGNED, site.site.id, "trap", "upsTrapOnBattery", device="ups-1")
    batch = [Message(i, 1, topic, encode_event(e), 1) for i, e in enumerate((forced, held, trap))]
    assert await process.handle(batch, asyncio.Event(), None)
    assert await process.handle(batch[:1], asyncio.Event(), None)  # redelivered after a reconnect
    kept = AccessStore(process.records.sessions).door_events()
    assert [(e.device, e.state, e.room) for e in kept] == [
        ("door-main", "forced", "mr1"),
        ("door-rear", "held_open", "mr1"),
    ]
    assert kept[0].at == SIGNED


async def test_an_alert_summary_on_the_bus_is_skipped_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The alerts process's group notifications (`alerts/summary:…`, roomguard.alert-summary/1) share the
    alert topics; compliance takes incidents from each alert's own topic and skips them without a warning."""
    import asyncio

    from bus.consumer import Message
    from compliance.process import ComplianceProcess
    from devices.wire import topic_alert
    from siteconfig.config import load_site
    from testkit.example_site import SECRETS, example_site

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    site = load_site(example_site(tmp_path / "site.yaml")[0])
    process = ComplianceProcess(site, tmp_path / "state", clock=lambda: SIGNED)
    topic = topic_alert(site.mqtt.topic_prefix, site.site.id, "summary:tpe-hq:mr1:1764633600")
    payload = b'{"schema": "roomguard.alert-summary/1", "id": "summary:tpe-hq:mr1:1764633600", "keys": []}'
    with caplog.at_level("WARNING", logger="compliance"):
        assert await process.handle([Message(1, 1, topic, payload, 1)], asyncio.Event(), None)
    assert process.undecodable == 0
    assert not [r for r in caplog.records if "undecodable" in r.getMessage()]
