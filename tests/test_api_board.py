"""The CC-16000 board, the checks, the test schedule and the duty operator through the web API, over a
migrated records database and the example site: a record made through the API, evaluated by the real
checks (`compliance.checks.evaluate`), shows on the board with a link back to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.routes_board import BoardOut, DutyNow, ScheduleOut, board_lines, duty_now, upcoming_tests
from compliance.checks import evaluate
from compliance.facts import DeviceInfo, Facts
from compliance.items import ITEMS
from compliance.kinds import KINDS
from compliance.result import CheckResult
from tests.api_compliance_support import Env, error, make_env
from tests.api_support import T0, migrated_template

TPE = ZoneInfo("Asia/Taipei")
GEN_ITEM = "cc16000-05-generator-test"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template, tmp_path)


def evaluate_board(env: Env, now: datetime) -> list[CheckResult]:
    """What the compliance process does each round: the checks over the stored records, results kept."""
    records = env.records
    kinds: dict[str, Any] = {name: records.of_kind(model) for name, model in KINDS.items()}
    facts = Facts(
        now=now,
        tz=TPE,
        config=env.site.compliance,
        site_id=env.site.site.id,
        rooms=tuple(r.id for r in env.site.rooms),
        devices=(DeviceInfo("gen-1", "genset", "mr1"), DeviceInfo("ups-1", "ups", "mr1")),
        records=kinds,
    )
    results = evaluate(facts)
    records.save_results(results, now)
    return results


def record(env: Env, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    r = env.client("otto").post(f"/api/v1/records/{kind}", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_before_any_evaluation_every_item_is_unknown_and_says_so(env: Env) -> None:
    error(env.client().get("/api/v1/board"), 401, "unauthenticated")
    board = env.client("vera").get("/api/v1/board").json()
    assert board["evaluated"] is False
    assert "compliance process" in board["note_en"]
    assert [line["item"] for line in board["lines"]] == [i.key for i in ITEMS]
    assert {line["status"] for line in board["lines"]} == {"unknown"}
    assert board["lines"][0]["link"] == f"/api/v1/checks/{ITEMS[0].key}/history"


def test_the_board_reflects_a_generator_test_recorded_through_the_api(env: Env) -> None:
    made = record(
        env,
        "generator_test",
        {
            "device": "gen-1",
            "started_at": (T0 - timedelta(days=3)).isoformat(),
            "on_load_minutes": 40,
            "avg_load_pct": 45,
            "trigger": "test_mode",
            "counts": True,
        },
    )
    evaluate_board(env, T0)
    board = env.client("audrey").get("/api/v1/board").json()
    assert board["evaluated"] is True
    line = next(x for x in board["lines"] if x["item"] == GEN_ITEM)
    assert line["status"] == "pass", line
    assert "gen-1" in line["reason_en"]
    assert "發電機 gen-1" in line["reason_zh"]
    assert line["link"] == made["url"]
    assert [e["url"] for e in line["evidence"]] == [made["url"]]
    behind = env.client("audrey").get(line["link"])
    assert behind.status_code == 200
    assert behind.json()["ref"] == made["ref"]
    # The same lines for the status page, without HTTP.
    direct = board_lines(env.ctx)
    assert isinstance(direct, BoardOut)
    assert direct.model_dump(mode="json") == board


def test_the_checks_and_an_items_history(env: Env) -> None:
    evaluate_board(env, T0)  # no generator test yet: unknown
    record(
        env,
        "generator_test",
        {
            "device": "gen-1",
            "started_at": T0.isoformat(),
            "on_load_minutes": 40,
            "trigger": "test_mode",
            "counts": True,
        },
    )
    evaluate_board(env, T0 + timedelta(hours=1))
    checks = {c["item"]: c for c in env.client("vera").get("/api/v1/checks").json()}
    assert set(checks) == {i.key for i in ITEMS}
    assert checks[GEN_ITEM]["status"] == "pass"
    assert checks[GEN_ITEM]["evidence"][0]["kind"] == "generator_test"
    history = env.client("vera").get(f"/api/v1/checks/{GEN_ITEM}/history").json()
    assert [r["status"] for r in history["results"]] == ["unknown", "pass"]
    assert history["title_zh"] == "發電機定期測試"
    later = env.client("vera").get(
        f"/api/v1/checks/{GEN_ITEM}/history", params={"since": (T0 + timedelta(minutes=30)).isoformat()}
    )
    assert [r["status"] for r in later.json()["results"]] == ["unknown", "pass"]  # the one in force, then
    body = error(env.client("vera").get("/api/v1/checks/cc99/history"), 404, "unknown_item")
    assert GEN_ITEM in body["message"]


def test_the_schedule_puts_an_overdue_test_first_and_lists_the_recent_ones(env: Env) -> None:
    made = record(
        env,
        "generator_test",
        {
            "device": "gen-1",
            "started_at": (T0 - timedelta(days=40)).isoformat(),
            "ended_at": (T0 - timedelta(days=40) + timedelta(hours=1)).isoformat(),
            "on_load_minutes": 40,
            "trigger": "test_mode",
            "counts": True,
        },
    )
    ups = record(
        env,
        "ups_test",
        {"device": "ups-1", "tested_at": (T0 - timedelta(days=2)).isoformat(), "result": "passed"},
    )
    evaluate_board(env, T0)
    schedule = env.client("vera").get("/api/v1/tests/schedule").json()
    first = schedule["due"][0]
    assert (first["item"], first["state"], first["status"]) == (GEN_ITEM, "overdue", "fail")
    assert first["days_left"] < 0
    ups_line = next(d for d in schedule["due"] if d["item"] == "cc16000-05-ups-test")
    assert (ups_line["state"], ups_line["days_left"]) == ("ok", 29.0)
    assert schedule["timezone"] == "Asia/Taipei"
    assert schedule["now"].endswith("+08:00")
    assert [(t["kind"], t["url"]) for t in schedule["recent"]] == [
        ("generator_test", made["url"]),
        ("ups_test", ups["url"]),
    ]
    assert isinstance(upcoming_tests(env.ctx), ScheduleOut)


def test_the_duty_operator_on_shift_now_comes_from_the_roster(env: Env) -> None:
    vera = env.client("vera")
    none = vera.get("/api/v1/duty/current").json()
    assert none["on_duty"] is None
    assert none["reason_en"] == "no duty roster recorded"
    record(
        env,
        "person",
        {
            "person_id": "E123",
            "name": "王小明",
            "organisation": "資訊部",
            "phone": "02-2345-6789",
            "since": "2020-01-01T00:00+08:00",
        },
    )
    local = T0.astimezone(TPE)  # 09:00 in Taipei
    day = local.replace(hour=8, minute=0)
    record(
        env,
        "duty",
        {"operator": "E123", "starts_at": day.isoformat(), "ends_at": (day + timedelta(hours=8)).isoformat()},
    )
    record(
        env,
        "duty",
        {
            "operator": "李大華",
            "starts_at": (day + timedelta(hours=8)).isoformat(),
            "ends_at": (day + timedelta(hours=24)).isoformat(),
            "phone": "0912-000-000",
        },
    )
    now = vera.get("/api/v1/duty/current").json()
    on = now["on_duty"]
    assert (on["operator"], on["name"], on["organisation"], on["phone"]) == (
        "E123",
        "王小明",
        "資訊部",
        "02-2345-6789",
    )
    assert on["starts_at"] == "2026-12-02T08:00:00+08:00"
    assert on["ends_at"] == "2026-12-02T16:00:00+08:00"
    assert now["next"]["operator"] == "李大華"
    assert now["reason_en"] is None
    env.clock.now = T0 + timedelta(hours=7)  # 16:00 Taipei: the second shift (shifts are half-open)
    assert vera.get("/api/v1/duty/current", params={"room": "mr1"}).json()["on_duty"]["operator"] == "李大華"
    env.clock.now = T0 + timedelta(days=1)  # past the roster (and the session: a new login)
    gap = env.client("vera").get("/api/v1/duty/current").json()
    assert gap["on_duty"] is None
    assert gap["reason_en"] == "no one is on the duty roster now"
    direct = duty_now(env.ctx)
    assert isinstance(direct, DutyNow)
    assert direct.on_duty is None


def test_a_shift_for_another_room_is_not_this_rooms(env: Env) -> None:
    start = T0 - timedelta(hours=1)
    record(
        env,
        "duty",
        {
            "operator": "陳",
            "room": "mr2",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=8)).isoformat(),
        },
    )
    vera = env.client("vera")
    assert vera.get("/api/v1/duty/current", params={"room": "mr2"}).json()["on_duty"]["operator"] == "陳"
    other = vera.get("/api/v1/duty/current", params={"room": "mr1"}).json()
    assert other["on_duty"] is None
    assert "mr1" in other["reason_en"]
