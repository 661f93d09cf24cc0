"""Evidence packs through the web API over a migrated records database and the example site: an operator
starts one, its progress is polled to done, the auditor downloads the zip and its manifest verifies
(`compliance.export.verify_manifest`, what `roomguard compliance verify-pack` runs); every step audited."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.evidence_jobs import PackJobs
from compliance.export import verify_manifest
from siteconfig.api_config import ApiConfig
from tests.api_compliance_support import Env, error, make_env
from tests.api_support import FAST_HASHER, migrated_template

PACKS = "/api/v1/evidence-packs"
PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}
WAIT_S = 180.0  # a generous limit: the pack writes four workbooks and a PDF


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("records"))


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template, tmp_path)


def poll(client: Any, job: str) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
    """Poll a job until it ends; its last state and every (state, step, percent) seen."""
    seen: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        r = client.get(f"{PACKS}/{job}")
        assert r.status_code == 200, r.text
        body = r.json()
        seen.append((body["state"], body["step"], body["percent"]))
        if body["state"] in ("done", "failed"):
            return body, seen
        assert time.monotonic() < deadline, f"pack {job} not done after {WAIT_S} s; last: {body}"
        time.sleep(0.05)


def test_generate_poll_download_and_verify(env: Env, tmp_path: Path) -> None:
    otto = env.client("otto")
    r = otto.post(
        "/api/v1/records/generator_test",
        json={
            "device": "gen-1",
            "started_at": "2026-11-03T10:00+08:00",
            "on_load_minutes": 35,
            "counts": True,
        },
    )
    assert r.status_code == 201, r.text
    started = otto.post(PACKS, json=PERIOD)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running", "done")
    assert job["filename"] == f"cc16000-{env.site.site.id}-2026-11-01-2026-11-30.zip"
    done, seen = poll(otto, job["id"])
    assert done["state"] == "done", done
    assert (done["percent"], done["steps"], done["step"]) == (100, 6, 6)
    percents = [p for _, _, p in seen]
    assert percents == sorted(percents), seen  # progress never goes back
    assert done["download_url"] == f"{PACKS}/{job['id']}/download"

    error(otto.get(done["download_url"]), 403, "forbidden")  # an operator makes packs, does not take them
    error(env.client("vera").get(done["download_url"]), 403, "forbidden")
    got = env.client("audrey").get(done["download_url"])
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(got.content).hexdigest()
    assert got.headers["X-Content-SHA256"] == digest == done["sha256"]
    assert done["filename"] in got.headers["content-disposition"]
    pack = tmp_path / "pack.zip"
    pack.write_bytes(got.content)
    assert verify_manifest(pack) == []

    [generate] = env.audit("evidence.generate")
    assert (generate.actor, generate.entity_id, generate.after["from"]) == ("otto", job["id"], "2026-11-01")
    [generated] = env.audit("evidence.generated")
    assert generated.after["sha256"] == digest
    [download] = env.audit("evidence.download")
    assert (download.actor, download.source, download.entity_id) == ("audrey", "api:testclient", job["id"])
    assert download.after == {"file": done["filename"], "sha256": digest}

    listed = env.client("audrey").get(PACKS).json()
    assert [(j["id"], j["state"]) for j in listed] == [(job["id"], "done")]


def test_who_may_start_a_pack_and_a_bad_period(env: Env) -> None:
    error(env.client().post(PACKS, json=PERIOD), 401, "unauthenticated")
    for user in ("vera", "audrey", "april", "alice"):
        error(env.client(user).post(PACKS, json=PERIOD), 403, "forbidden")
    body = error(
        env.client("otto").post(PACKS, json={"from": "2026-11-30", "to": "2026-11-01"}),
        422,
        "invalid_request",
    )
    assert "before it starts" in body["message"]
    error(env.client("otto").post(PACKS, json={"from": "2026-11-01"}), 422, "invalid_request")
    assert env.audit("evidence.generate") == []
    error(env.client("audrey").get(f"{PACKS}/nope"), 404, "no_job")
    error(env.client("audrey").get(f"{PACKS}/nope/download"), 404, "no_job")


def _jobs(env: Env) -> PackJobs:
    jobs = PackJobs(env.state_dir / "evidence-packs", env.clock)
    env.app.state.evidence_jobs = jobs
    return jobs


def test_one_pack_at_a_time_and_an_unfinished_one_is_not_downloaded(env: Env) -> None:
    jobs = _jobs(env)
    release = threading.Event()

    def work(step: Callable[[int, int, str], None], target: Path) -> None:
        step(1, 6, "1/6 board")
        assert release.wait(WAIT_S), "the test never released the job"
        target.write_bytes(b"not really a zip")

    running = jobs.start(date(2026, 1, 1), date(2026, 1, 31), "someone", "x.zip", work, lambda job: None)
    try:
        body = error(env.client("otto").post(PACKS, json=PERIOD), 409, "pack_running")
        assert running.id in body["message"]
        assert "someone" in body["message"]
        body = error(env.client("audrey").get(f"{PACKS}/{running.id}/download"), 409, "pack_not_ready")
        assert running.id in body["message"]
    finally:
        release.set()
        jobs.wait(running.id, WAIT_S)
    assert jobs.get(running.id).state == "done"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "period",
    [
        {"from": "0001-01-01", "to": "2026-11-30"},
        {"from": "2026-11-01", "to": "9999-12-31"},
        {"from": "9999-12-01", "to": "9999-12-30"},  # was accepted, then failed as a job (month windows)
    ],
)
def test_a_period_out_of_the_calendar_is_a_422_not_a_500(env: Env, period: dict[str, str]) -> None:
    """Found by probing past schemathesis: the first day's start in UTC, or the day after the last,
    overflowed (500) before the job began."""
    body = error(env.client("otto").post(PACKS, json=period), 422, "invalid_request")
    assert "out of range" in body["message"]
    assert env.audit("evidence.generate") == []


def test_a_failed_job_says_why_and_a_restart_keeps_the_finished_packs(env: Env) -> None:
    jobs = _jobs(env)

    def broken(step: Callable[[int, int, str], None], target: Path) -> None:
        raise OSError("disk full")

    ended: list[str] = []
    failed = jobs.start(
        date(2026, 1, 1), date(2026, 1, 31), "otto", "a.zip", broken, lambda j: ended.append(j.state)
    )
    jobs.wait(failed.id, WAIT_S)
    assert ended == ["failed"]
    shown = env.client("vera").get(f"{PACKS}/{failed.id}").json()
    assert (shown["state"], shown["error"], shown["download_url"]) == ("failed", "OSError: disk full", None)

    def fine(step: Callable[[int, int, str], None], target: Path) -> None:
        target.write_bytes(b"zip bytes")

    ok = jobs.start(date(2026, 2, 1), date(2026, 2, 28), "otto", "b.zip", fine, lambda j: None)
    jobs.wait(ok.id, WAIT_S)
    # A new app over the same state dir (a restart) lists both and serves the finished one.
    again = create_app(
        ApiConfig(),
        records_url=env.engine,
        state_dir=env.state_dir,
        site=env.site,
        clock=env.clock,
        hasher=FAST_HASHER,
    )
    restarted = Env(again, env.engine, env.clock, env.site, env.state_dir)
    listed = {j["id"]: j["state"] for j in restarted.client("audrey").get(PACKS).json()}
    assert listed == {failed.id: "failed", ok.id: "done"}
    got = restarted.client("audrey").get(f"{PACKS}/{ok.id}/download")
    assert got.content == b"zip bytes"
    assert got.headers["X-Content-SHA256"] == hashlib.sha256(b"zip bytes").hexdigest()
