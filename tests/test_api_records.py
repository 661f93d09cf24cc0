# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Compliance records through the web API over a migrated SQLite records database and the example site:
who may read and write, create / read / update / void with their audit entries (before and after),
422 naming each field with its labels and choices, 404 naming the kinds, and the audit log's export."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.api_compliance_support import Env, error, make_env
from tests.api_support import migrated_template

GEN = "/api/v1/records/generator_test"
TEST = {
    "device": "gen-1",
    "started_at": "2026-12-01T10:00:00+08:00",
    "on_load_minutes": 35,
    "avg_load_pct": 41.5,
    "trigger": "test_mode",
    "counts": True,
}
REF = "gen-1@2026-12-01T02:00:00Z"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template, tmp_path)


def test_the_kinds_come_with_their_fields_labels_and_choices(env: Env) -> None:
    kinds = {k["kind"]: k for k in env.client("vera").get("/api/v1/records/kinds").json()}
    assert "duty" in kinds
    assert "vendor_visit" in kinds
    gen = kinds["generator_test"]
    assert (gen["zh"], gen["en"]) == ("發電機測試", "Generator tests")
    fields = {f["name"]: f for f in gen["fields"]}
    assert (fields["device"]["zh"], fields["device"]["required"]) == ("設備", True)
    assert fields["witness"]["required"] is False
    assert fields["trigger"]["choices"] == ["test_mode", "mains_failure", "manual", "unknown"]
    assert fields["started_at"]["format"] == "date-time"
    assert gen["json_schema"]["additionalProperties"] is False


def test_only_a_writer_records_a_generator_test(env: Env) -> None:
    error(env.client().post(GEN, json=TEST), 401, "unauthenticated")
    for user in ("vera", "audrey", "april", "alice"):
        body = error(env.client(user).post(GEN, json=TEST), 403, "forbidden")
        assert "records.write" in body["message"]
    assert env.audit("create") == []
    r = env.client("otto").post(GEN, json=TEST)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["ref"], made["version"], made["created_by"], made["void"]) == (REF, 1, "otto", False)
    assert made["url"] == f"{GEN}/{REF}"
    back = env.client("vera").get(made["url"]).json()
    assert back["data"]["avg_load_pct"] == 41.5
    assert back["data"]["source"] == "manual"  # the model's default
    [entry] = env.audit("create")
    assert (entry.actor, entry.source, entry.entity, entry.entity_id) == (
        "otto",
        "api:testclient",
        "compliance.generator_test",
        REF,
    )
    assert entry.before is None
    assert entry.after == back["data"]


def test_a_time_without_an_offset_is_the_sites_wall_clock_and_zh_labels_are_keys(env: Env) -> None:
    body = {"設備": "gen-1", "開始時間": "2026-12-01 10:00", "帶載分鐘數": "35", "計入月測": "是"}
    r = env.client("otto").post(GEN, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["ref"] == REF  # Asia/Taipei 10:00 is 02:00 UTC


def test_a_duplicate_is_a_409_and_changes_nothing(env: Env) -> None:
    otto = env.client("otto")
    assert otto.post(GEN, json=TEST).status_code == 201
    body = error(otto.post(GEN, json={**TEST, "witness": "王小明"}), 409, "record_exists")
    assert REF in body["message"]
    assert env.client("vera").get(f"{GEN}/{REF}").json()["data"]["witness"] is None
    assert len(env.audit("create")) == 1


def test_an_invalid_record_names_each_field_with_its_labels_and_choices(env: Env) -> None:
    bad = {**TEST, "trigger": "lunch", "colour": "red"}
    del bad["on_load_minutes"]
    r = env.client("otto").post(GEN, json=bad)
    body = error(r, 422, "invalid_record")
    problems = {p["field"]: p for p in body["problems"]}
    assert problems["trigger"]["zh"] == "啟動原因"
    assert problems["trigger"]["valid"] == ["test_mode", "mains_failure", "manual", "unknown"]
    assert problems["trigger"]["value"] == "lunch"
    assert problems["on_load_minutes"]["message"] == "required, but missing"
    assert problems["on_load_minutes"]["en"] == "Minutes on load (cool-down excluded)"
    unknown = problems[None]
    assert "colour" in unknown["message"]
    assert "device (設備)" in unknown["valid"]
    assert "trigger（啟動原因 Started by" in body["message"]
    assert "valid: test_mode, mains_failure, manual, unknown" in body["message"]
    shift = {"operator": "王小明", "starts_at": "2026-12-02T16:00+08:00", "ends_at": "2026-12-02T08:00+08:00"}
    whole = error(env.client("otto").post("/api/v1/records/duty", json=shift), 422, "invalid_record")
    assert whole["problems"][0]["field"] is None
    assert "ends_at must be after starts_at" in whole["problems"][0]["message"]
    error(env.client("otto").post(GEN, json=["not", "an", "object"]), 422, "invalid_record")
    assert env.audit("create") == []


def test_an_unknown_kind_is_a_404_naming_the_valid_ones(env: Env) -> None:
    for r in (
        env.client("vera").get("/api/v1/records/toaster"),
        env.client("vera").get("/api/v1/records/toaster/x"),
        env.client("otto").post("/api/v1/records/toaster", json={}),
    ):
        body = error(r, 404, "unknown_kind")
        assert "generator_test" in body["message"]
        assert "vendor_visit" in body["message"]
    error(env.client("vera").get(f"{GEN}/gen-9@2026-01-01T00:00:00Z"), 404, "no_record")


def test_update_changes_fields_but_not_the_key_and_is_audited_with_before_and_after(env: Env) -> None:
    otto = env.client("otto")
    assert otto.post(GEN, json=TEST).status_code == 201
    error(env.client("vera").put(f"{GEN}/{REF}", json={"witness": "王小明"}), 403, "forbidden")
    r = otto.put(f"{GEN}/{REF}", json={"見證人": "王小明", "technician": "大同 張技師"})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["data"]["witness"], r.json()["data"]["device"]) == (
        2,
        "王小明",
        "gen-1",
    )
    [entry] = env.audit("update")
    assert entry.before["witness"] is None
    assert entry.after["witness"] == "王小明"
    assert entry.actor == "otto"
    key = error(otto.put(f"{GEN}/{REF}", json={"device": "gen-2"}), 409, "update_refused")
    assert "void it and record it anew" in key["message"]
    bad = error(otto.put(f"{GEN}/{REF}", json={"counts": "maybe"}), 422, "invalid_record")
    assert bad["problems"][0]["field"] == "counts"
    assert "true" in bad["problems"][0]["valid"]
    error(otto.put(f"{GEN}/{REF}", json={}), 422, "invalid_request")
    error(otto.put(f"{GEN}/gen-9@2026-01-01T00:00:00Z", json={"witness": "x"}), 404, "no_record")
    assert len(env.audit("update")) == 1


def test_void_needs_a_reason_keeps_the_record_and_refuses_a_second_void_or_an_update(env: Env) -> None:
    otto = env.client("otto")
    assert otto.post(GEN, json=TEST).status_code == 201
    error(otto.post(f"{GEN}/{REF}/void", json={}), 422, "invalid_request")
    error(otto.post(f"{GEN}/{REF}/void", json={"reason": ""}), 422, "invalid_request")
    error(env.client("audrey").post(f"{GEN}/{REF}/void", json={"reason": "typo"}), 403, "forbidden")
    r = otto.post(f"{GEN}/{REF}/void", json={"reason": "entered twice 重複登錄"})
    assert r.status_code == 200, r.text
    assert (r.json()["void"], r.json()["voided_by"], r.json()["void_reason"]) == (
        True,
        "otto",
        "entered twice 重複登錄",
    )
    [entry] = env.audit("void")
    assert entry.note == "entered twice 重複登錄"
    assert entry.before["device"] == "gen-1"
    vera = env.client("vera")
    assert vera.get(GEN).json()["total"] == 0
    listed = vera.get(GEN, params={"include_void": "true"}).json()
    assert [(x["ref"], x["void"]) for x in listed["records"]] == [(REF, True)]
    assert vera.get(f"{GEN}/{REF}").json()["void"] is True
    error(otto.post(f"{GEN}/{REF}/void", json={"reason": "again"}), 409, "update_refused")
    error(otto.put(f"{GEN}/{REF}", json={"witness": "x"}), 409, "update_refused")
    error(otto.post(f"{GEN}/nope/void", json={"reason": "x"}), 404, "no_record")


def test_the_list_pages_and_filters_by_period(env: Env) -> None:
    otto = env.client("otto")
    for day in range(1, 6):
        # With an end: a test without one is still open, so it overlaps every later period.
        body = {
            **TEST,
            "started_at": f"2026-11-0{day}T10:00+08:00",
            "ended_at": f"2026-11-0{day}T11:00+08:00",
        }
        assert otto.post(GEN, json=body).status_code == 201
    vera = env.client("vera")
    first = vera.get(GEN, params={"limit": 2}).json()
    assert (first["total"], first["next_offset"]) == (5, 2)
    assert [r["data"]["started_at"][:10] for r in first["records"]] == ["2026-11-01", "2026-11-02"]
    last = vera.get(GEN, params={"limit": 2, "offset": 4}).json()
    assert (len(last["records"]), last["next_offset"]) == (1, None)
    period = vera.get(
        GEN, params={"since": "2026-11-02T00:00:00+08:00", "until": "2026-11-04T00:00:00+08:00"}
    )
    assert [r["data"]["started_at"][:10] for r in period.json()["records"]] == ["2026-11-02", "2026-11-03"]
    error(vera.get(GEN, params={"since": "2026-11-02T00:00:00"}), 422, "invalid_request")  # no zone


def test_the_openapi_documents_a_body_per_kind(env: Env) -> None:
    spec = env.client().get("/api/v1/openapi.json").json()
    body = spec["paths"]["/api/v1/records/{kind}"]["post"]["requestBody"]["content"]["application/json"]
    titles = [s["title"] for s in body["schema"]["oneOf"]]
    assert "GeneratorTest (generator_test)" in titles
    assert len(titles) == 12
    assert "RecordInvalid" in spec["components"]["schemas"]


# -- the audit log's export --------------------------------------------------------------------------


def test_the_audit_export_is_a_bom_csv_of_the_chain_and_is_audited(env: Env) -> None:
    assert env.client("otto").post(GEN, json=TEST).status_code == 201
    for user in ("vera", "otto", "april"):
        error(env.client(user).get("/api/v1/audit/export"), 403, "forbidden")
    r = env.client("audrey").get("/api/v1/audit/export", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("序號 / seq,時間 / at,人員 / actor")
    entries = env.audit()
    assert len(lines) == 1 + len(entries)  # every entry, the export's own included
    assert entries[-1].action == "audit.export"
    assert (entries[-1].actor, entries[-1].after["format"]) == ("audrey", "csv")
    assert any(",create,compliance.generator_test," in line for line in lines)
    assert all(line.endswith(",pass") for line in lines[1:])  # every entry's chain check
    assert entries[-1].hash in lines[-1]


def test_the_audit_export_as_xlsx_has_zh_and_en_headers_and_the_verification(env: Env) -> None:
    r = env.client("alice").get("/api/v1/audit/export", params={"format": "xlsx"})
    assert r.status_code == 200, r.text
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = book[book.sheetnames[1]]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("序號", "時間", "人員")
    assert rows[1][:3] == ("Seq", "At", "Actor")
    assert rows[-1][4] == "audit.export"
    assert len(book.sheetnames) == 3  # cover, entries, verification
    error(env.client("alice").get("/api/v1/audit/export", params={"format": "pdf"}), 422, "invalid_request")


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_without_a_utc_value_is_a_422_naming_the_field_not_a_500(env: Env, edge: str) -> None:
    """Found by probing past schemathesis: a time at the calendar's edge with an offset has no UTC value
    (an OverflowError, 500, when stored or queried); a record, a query and the audit export refuse it."""
    otto = env.client("otto")
    body = error(otto.post(GEN, json={**TEST, "started_at": edge}), 422, "invalid_record")
    [problem] = body["problems"]
    assert (problem["field"], problem["en"]) == ("started_at", "Started at")
    assert "out of range" in problem["message"]
    assert env.audit("create") == []
    body = error(otto.get(GEN, params={"since": edge}), 422, "invalid_request")
    assert "since" in body["message"]
    body = error(
        env.client("audrey").get("/api/v1/audit/export", params={"until": edge}), 422, "invalid_request"
    )
    assert "until" in body["message"]
