"""The CC-16000 checks against golden cases: tests/golden/compliance/<item key>/<case>/.

facts.json is a JSON form of `Facts` (every key optional but `now`):
  now            ISO time with offset; tz (default Asia/Taipei), site_id, rooms (default ["mr1"])
  config         a partial `compliance:` section, merged key by key onto the ComplianceConfig defaults
  devices        [{"id", "class", "room"}]
  records        {kind: [record as its kind's model takes it]} (validated by compliance.kinds)
  telemetry      {device: {"last_seen", "online", "metrics": {...}}}
  environment    {room: {"samples", "outside_recommended", "outside_allowable", "worst_temp_c", ...}}
  alerts         [AlertInfo fields]
  access_review  a CheckResult's fields (the access-review module's result), or absent
expected.json: {"status", "reason_en_contains": [...], "reason_zh_contains": [...], and optionally
"next_due" (ISO or null), "last_evidence_at" (ISO or null), "evidence" (["kind ref", ...] that must be
among the result's evidence)}. Keys starting with "_" are comments. Adding a case = adding a folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.checks import ABSENCE_IS_PASS, CHECKS, evaluate
from compliance.facts import AlertInfo, DeviceInfo, DeviceState, EnvWindow, Facts
from compliance.items import BY_KEY, ITEMS
from compliance.kinds import RecordModel, kind
from compliance.result import STATUSES, CheckResult, Evidence
from siteconfig.compliance_config import ComplianceConfig

GOLDEN = Path(__file__).parent / "golden" / "compliance"
CASES = sorted(p.parent for p in GOLDEN.glob("*/*/facts.json"))
TAIPEI = ZoneInfo("Asia/Taipei")


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    at = datetime.fromisoformat(value)
    assert at.tzinfo is not None, f"{value!r}: a golden time needs its offset"
    return at


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _config(over: dict[str, Any]) -> ComplianceConfig:
    return ComplianceConfig.model_validate(_merge(ComplianceConfig().model_dump(), over))


def _records(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Sequence[RecordModel]]:
    return {name: [kind(name).model_validate(row) for row in rows] for name, rows in raw.items()}


def _timed(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: _time(v) if k in names else v for k, v in raw.items()}


def load_facts(path: Path) -> Facts:
    """facts.json → Facts."""
    raw = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if not k.startswith("_")}
    now = _time(raw["now"])
    assert now is not None
    review = raw.get("access_review")
    review_evidence = review.pop("evidence", []) if review is not None else []
    return Facts(
        now=now,
        tz=ZoneInfo(raw.get("tz", "Asia/Taipei")),
        config=_config(raw.get("config", {})),
        site_id=raw.get("site_id", "tpe1"),
        rooms=tuple(raw.get("rooms", ["mr1"])),
        devices=tuple(DeviceInfo(d["id"], d["class"], d["room"]) for d in raw.get("devices", [])),
        records=_records(raw.get("records", {})),
        telemetry={
            dev: DeviceState(_time(s.get("last_seen")), s.get("online"), dict(s.get("metrics", {})))
            for dev, s in raw.get("telemetry", {}).items()
        },
        environment={room: EnvWindow(**_timed(w, "since")) for room, w in raw.get("environment", {}).items()},
        alerts=tuple(
            AlertInfo(**_timed(a, "started_at", "resolved_at", "acked_at")) for a in raw.get("alerts", [])
        ),
        access_review=None
        if review is None
        else CheckResult(
            **_timed(review, "last_evidence_at", "next_due"),
            evidence=tuple(Evidence(**_timed(e, "at")) for e in review_evidence),
        ),
    )


def _expected(case: Path) -> dict[str, Any]:
    raw = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def test_there_are_golden_cases_for_every_item():
    assert CASES, "no golden cases found"
    assert {c.parent.name for c in CASES} == set(BY_KEY), "every item, and only items, have a case folder"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden(case: Path):
    item = case.parent.name
    facts = load_facts(case / "facts.json")
    expected = _expected(case)
    result = CHECKS[item](facts)
    shown = f"\n  en: {result.reason_en}\n  zh: {result.reason_zh}"
    assert result.item == item
    assert result.status == expected["status"], shown
    for part in expected.get("reason_en_contains", []):
        assert part in result.reason_en, f"{part!r} not in the English reason:{shown}"
    for part in expected.get("reason_zh_contains", []):
        assert part in result.reason_zh, f"{part!r} not in the Chinese reason:{shown}"
    if "next_due" in expected:
        assert result.next_due == _time(expected["next_due"]), shown
    if "last_evidence_at" in expected:
        assert result.last_evidence_at == _time(expected["last_evidence_at"]), shown
    refs = [f"{e.kind} {e.ref}" for e in result.evidence]
    for ref in expected.get("evidence", []):
        assert ref in refs, f"{ref!r} not among the evidence {refs}"


@pytest.mark.parametrize("item", [i.key for i in ITEMS])
def test_every_item_has_the_cases_the_board_needs(item: str):
    statuses = {_expected(c)["status"] for c in CASES if c.parent.name == item}
    assert statuses <= set(STATUSES)
    assert "pass" in statuses, "a pass case"
    assert statuses & {"fail", "warn"}, "a fail or warn case"
    if item not in ABSENCE_IS_PASS:
        assert "unknown" in statuses, "a missing-input case"


def _empty(now: datetime) -> Facts:
    return Facts(now=now, tz=TAIPEI, config=ComplianceConfig(), site_id="tpe1", rooms=("mr1",), devices=())


def test_evaluate_gives_every_item_once_in_board_order():
    results = evaluate(_empty(datetime(2025, 3, 10, 10, 0, tzinfo=TAIPEI)))
    assert [r.item for r in results] == [i.key for i in ITEMS]
    assert len({i.key for i in ITEMS}) == len(ITEMS)
    assert set(CHECKS) == {i.key for i in ITEMS}


def test_only_the_absence_is_pass_items_pass_on_empty_facts():
    # No devices, no records, no telemetry: only "nothing happened" items may pass; the rest need evidence.
    assert {
        "cc16000-10-vendor-escort",
        "cc16000-11-maintenance-hours",
        "cc16000-12-disposal",
        "cc20000-05-incident-review",
    } == ABSENCE_IS_PASS
    results = evaluate(_empty(datetime(2025, 3, 10, 10, 0, tzinfo=TAIPEI)))
    passing = {r.item for r in results if r.status == "pass"}
    assert passing == ABSENCE_IS_PASS
    for r in results:
        if r.item not in ABSENCE_IS_PASS:
            assert r.status == "unknown", (r.item, r.reason_en)
        assert r.reason_zh
        assert r.reason_en


def test_items_are_published_under_lower_kebab_ascii_keys():
    for item in ITEMS:
        assert re.fullmatch(r"cc[0-9]{5}-[0-9]{2}-[a-z]+(-[a-z]+)*", item.key), item.key
        assert all((item.title_zh, item.title_en, item.description_zh, item.description_en)), item.key


def test_golden_facts_are_in_taipei():
    for case in CASES:
        raw = json.loads((case / "facts.json").read_text(encoding="utf-8"))
        assert raw.get("tz", "Asia/Taipei") == "Asia/Taipei", case
