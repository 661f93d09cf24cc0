"""`roomguard backup` while the collector runs, `roomguard restore` into an empty state directory: records,
audit chain, outbox and sequence state intact; a tampered archive and a non-empty target are refused.
Plus the manifest logic on its own."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import sys
import tarfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bus.backup import (
    BackupError,
    Manifest,
    Member,
    check_members,
    compression_of,
    copy_sqlite,
    create_backup,
    read_archive,
    restore_archive,
    safe_member_name,
)
from bus.outbox import Outbox, Pending
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from records.audit import verify
from records.db import make_engine, session_factory
from roomguard import app
from testkit.services import Mosquitto
from tests.test_compliance_cli import VISITS, visits_csv

ROOT = Path(__file__).resolve().parents[1]
DEVICES = 3


def _manifest(*members: Member) -> Manifest:
    return Manifest(
        "s1", "2026-12-02T07:00:00Z", "edge", "0.1.0", "/var/lib/roomguard", {"kind": "state"}, members
    )


# -- the manifest, pure ------------------------------------------------------------------------------


def test_check_members_names_every_changed_missing_and_extra_member() -> None:
    m = _manifest(
        Member("outbox.db", "a" * 64, 10, "sqlite"),
        Member("seq.db", "b" * 64, 10, "sqlite"),
        Member("collector.json", "c" * 64, 3, "file"),
    )
    found = {"outbox.db": "a" * 64, "seq.db": "f" * 64, "evil.db": "d" * 64}
    problems = check_members(m, found)
    assert len(problems) == 3, problems
    assert problems[0].startswith("collector.json: missing")
    assert problems[1].startswith("seq.db: changed")
    assert problems[2].startswith("evil.db: extra")
    assert check_members(m, {"outbox.db": "a" * 64, "seq.db": "b" * 64, "collector.json": "c" * 64}) == []


def test_manifest_round_trips_and_a_bad_one_names_the_field() -> None:
    m = _manifest(Member("records.db", "e" * 64, 4096, "sqlite"))
    assert Manifest.from_json(m.to_json(), "x") == m
    body = json.loads(m.to_json())
    del body["members"][0]["sha256"]
    with pytest.raises(BackupError, match="x: missing or bad field 'sha256'"):
        Manifest.from_json(json.dumps(body).encode(), "x")
    with pytest.raises(BackupError, match="format is 'other/1'"):
        Manifest.from_json(json.dumps({**body, "format": "other/1"}).encode(), "x")


def test_member_names_and_archive_suffixes() -> None:
    assert safe_member_name("outbox.db")
    assert safe_member_name("external/records.db")
    for bad in ("", "/etc/passwd", "../x", "a/../b", "a//b", "./a"):
        assert not safe_member_name(bad), bad
    assert compression_of(Path("b.tar.gz")) == "gz"
    assert compression_of(Path("b.tar")) == ""
    with pytest.raises(BackupError, match=r"\.tar, \.tar\.gz, \.tgz"):
        compression_of(Path("b.zip"))


def test_backup_refuses_to_overwrite_and_restore_names_a_tampered_member(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "seq.db")
    db.execute("CREATE TABLE seq (key TEXT PRIMARY KEY, next INTEGER)")
    db.execute("INSERT INTO seq VALUES ('r1/a', 5)")
    db.commit()
    db.close()
    (state / "dead-letter.jsonl").write_bytes(b'{"a": 1}\n{"b": ')  # a line being appended
    archive = tmp_path / "b.tar"
    create_backup(state, archive, site_id="s1", records={"kind": "state"})
    with pytest.raises(BackupError, match="exists; refusing to overwrite"):
        create_backup(state, archive, site_id="s1", records={"kind": "state"})
    out = tmp_path / "out"
    restore_archive(archive, out)
    assert (out / "dead-letter.jsonl").read_bytes() == b'{"a": 1}\n'  # cut at the last whole line
    tampered = _tamper(archive, tmp_path / "t.tar", "seq.db")
    with pytest.raises(BackupError, match=r"seq\.db: changed") as exc:
        restore_archive(tampered, tmp_path / "never")
    assert "dead-letter.jsonl" not in str(exc.value)
    assert not (tmp_path / "never").exists()  # nothing written


def _tamper(archive: Path, out: Path, member: str) -> Path:
    """A copy of `archive` with one byte of `member` flipped (the manifest left as it was)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz" if out.name.endswith("gz") else "w") as dst:
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == member:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(info, io.BytesIO(data))
    return out


# -- while the pipeline runs -------------------------------------------------------------------------


@pytest.fixture
async def modbus_room() -> AsyncIterator[int]:
    """A few SHT20 sensors behind one simulated Modbus TCP gateway."""
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    server = ModbusSimServer("127.0.0.1", 0)
    for unit in range(1, DEVICES + 1):
        server.add_device(unit, profile, {"temp_c": 20 + unit / 10})  # type: ignore[arg-type]
    await server.start()
    yield server.port
    await server.stop()


def _site(tmp: Path, modbus_port: int, broker: Mosquitto) -> Path:
    devices = "\n".join(
        f"  - {{id: th-{u}, name: Sensor {u}, room: r1, profile: sht20-xy-md02,"
        f" settings: {{resolution: x10}}, modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: {u}}}}}"
        for u in range(1, DEVICES + 1)
    )
    path = tmp / "site.yaml"
    path.write_text(
        "site: {id: bk, name: 備份測試}\n"
        "rooms: [{id: r1, name: Room 1}]\n"
        "defaults: {poll_interval_s: 1, timeout_s: 1}\n"
        f"devices:\n{devices}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},"
        " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n",
        encoding="utf-8",
    )
    return path


async def _roomguard(*args: str | Path, env: dict[str, str]) -> tuple[int, str]:
    """A short roomguard command in a child process (the simulated devices need this event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roomguard",
        *map(str, args),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _wait_outbox_depth(state: Path, depth: int, log: Path, limit_s: float = 60) -> None:
    end = time.monotonic() + limit_s
    snap: dict[str, Any] = {}
    while time.monotonic() < end:
        try:
            snap = json.loads((state / "collector.json").read_text())
        except (OSError, ValueError):
            snap = {}
        if snap.get("outbox", {}).get("depth", 0) >= depth:
            return
        await asyncio.sleep(0.5)
    tail = (await asyncio.to_thread(log.read_text))[-3000:]
    pytest.fail(f"the outbox never held {depth} messages; snapshot {snap}; log:\n{tail}")


def _readings(db: Path) -> dict[int, tuple[str, int, bytes]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, stream, seq, payload FROM messages WHERE stream IS NOT NULL")
        return {i: (s, q, p) for i, s, q, p in rows}
    finally:
        conn.close()


def _audit(db: Path) -> tuple[int, str, list[tuple[object, ...]]]:
    engine = make_engine(db)
    with session_factory(engine)() as session:
        report = verify(session)
    engine.dispose()
    assert report.ok, report.problems
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq").fetchall()
    conn.close()
    return report.entries, report.head_hash, rows


@pytest.mark.integration
async def test_backup_while_collecting_restores_records_outbox_and_sequence_state(
    mosquitto: Mosquitto, modbus_room: int, tmp_path: Path
) -> None:
    site = _site(tmp_path, modbus_room, mosquitto)
    state = tmp_path / "state"
    env = {**os.environ, "ROOMGUARD_MQTT_PASSWORD": mosquitto.password}
    csv = visits_csv(tmp_path / "visits.csv", VISITS, "utf-8")
    args = ["compliance", site, "import", "vendor_visit", csv, "--by", "林主任", "--state-dir", state]
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == 0, result.output
    log = tmp_path / "collect.log"
    with log.open("ab") as fh:
        # No ingest: nothing confirms the readings, so they stay in the outbox (release: archive).
        collect = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomguard", "collect", str(site), "--state-dir", str(state),
            cwd=ROOT, env=env, stdout=fh, stderr=fh,
        )  # fmt: skip
    archive = tmp_path / "backups" / "edge.tar.gz"
    try:
        await _wait_outbox_depth(state, 4 * DEVICES, log)
        code, out = await _roomguard("backup", site, archive, "--state-dir", state, env=env)
        assert code == 0, out
        assert "wrote" in out
        # The collector went on polling while and after the copy was made.
        await _wait_outbox_depth(state, 8 * DEVICES, log)
        assert collect.returncode is None, log.read_text()[-3000:]
    finally:
        collect.terminate()
        await asyncio.wait_for(collect.wait(), 30)
    assert archive.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in archive.parent.iterdir()] == ["edge.tar.gz"]  # no temp file left
    assert not list((state / ".backup-handoff").iterdir())  # the request was answered and removed

    code, out = await _roomguard("restore", archive, "--list", env=env)
    assert code == 0, out
    assert "every file matches the manifest" in out
    assert "outbox.db" in out

    target = tmp_path / "restored"
    code, out = await _roomguard("restore", archive, "--state-dir", target, env=env)
    assert code == 0, out
    assert "integrity FAILED" not in out
    assert "chain intact" in out, out

    # Records and their audit chain: the same entries, the chain verifies.
    assert _audit(target / "records.db") == _audit(state / "records.db")
    assert "紀錄 records" in out

    # Outbox: a non-empty point-in-time prefix of what the source holds now (nothing confirmed, so no
    # reading was deleted since): every reading up to the newest restored one, byte for byte.
    restored, source = _readings(target / "outbox.db"), _readings(state / "outbox.db")
    assert len(restored) >= 4 * DEVICES
    assert {i: v for i, v in source.items() if i <= max(restored)} == restored
    assert len(source) > len(restored)  # the copy was taken while the collector was adding more

    # Sequence state: each stream's next number is above everything the restored outbox holds.
    seq = sqlite3.connect(target / "seq.db")
    nexts = dict(seq.execute("SELECT key, next FROM seq").fetchall())
    seq.close()
    streams = {s for s, _, _ in restored.values()}
    assert len(streams) >= DEVICES
    for stream in streams:
        top = max(q for s, q, _ in restored.values() if s == stream)
        assert nexts[stream] > top, (stream, nexts[stream], top)

    # Private modes, and no SQLite side file left behind by the checks.
    assert target.stat().st_mode & 0o777 == 0o700
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in target.iterdir()} == {
        p.name: "0o600" for p in target.iterdir()
    }

    # A non-empty target, and a tampered archive, are refused.
    code, out = await _roomguard("restore", archive, "--state-dir", target, env=env)
    assert code == 1, out
    assert "is not empty" in out, out
    tampered = _tamper(archive, tmp_path / "tampered.tar.gz", "seq.db")
    code, out = await _roomguard("restore", tampered, "--state-dir", tmp_path / "never", env=env)
    assert code == 1, out
    assert "seq.db: changed" in out, out
    assert not (tmp_path / "never").exists()


def test_the_owner_of_a_locked_outbox_copies_it_on_request(tmp_path: Path) -> None:
    """The outbox is locked exclusively: only its owner's connection can copy it."""
    with Outbox(tmp_path / "outbox.db", 10**6, 3600) as outbox:
        outbox.put_many([Pending("t/r", b"reading", stream="r1/a", seq=7)])
        with pytest.raises(BackupError, match=r"outbox\.db is locked by another process"):
            copy_sqlite(tmp_path / "outbox.db", tmp_path / "never.db", handoff_timeout_s=0.5)
        copier = threading.Thread(
            target=copy_sqlite, args=(tmp_path / "outbox.db", tmp_path / "copy.db", 60), daemon=True
        )
        copier.start()
        end = time.monotonic() + 60
        while not outbox.serve_backup_request():  # what the collector does at each status snapshot
            assert time.monotonic() < end, "the backup never asked for a copy"
            time.sleep(0.05)
        copier.join(60)
        outbox.put_many([Pending("t/r", b"later", stream="r1/a", seq=8)])
    assert _readings(tmp_path / "copy.db") == {1: ("r1/a", 7, b"reading")}
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / ".backup-handoff" / "outbox.db.request").exists()


def test_an_external_sqlite_records_file_travels_and_postgresql_is_named_not_faked(tmp_path: Path) -> None:
    elsewhere = tmp_path / "srv" / "records.db"
    elsewhere.parent.mkdir()  # records.url's folder must exist (records/db.py)
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: {id: ext, name: 外部紀錄}\nrooms: [{id: mr1, name: 主機房}]\n"
        f"records: {{url: 'sqlite:///{elsewhere}'}}\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"
    csv = visits_csv(tmp_path / "visits.csv", VISITS, "utf-8")
    runner = CliRunner()
    args = ["compliance", site, "import", "vendor_visit", csv, "--by", "林主任", "--state-dir", state]
    assert runner.invoke(app, [str(a) for a in args]).exit_code == 0
    assert elsewhere.exists()
    assert not (state / "records.db").exists()
    archive = tmp_path / "b.tar"
    result = runner.invoke(app, ["backup", str(site), str(archive), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    moved = tmp_path / "new" / "records.db"
    result = runner.invoke(
        app, ["restore", str(archive), "--state-dir", str(tmp_path / "out"), "--records-file", str(moved)]
    )
    assert result.exit_code == 0, result.output
    assert "external/records.db" in result.output
    assert _audit(moved) == _audit(elsewhere)

    site.write_text(
        "site: {id: pg, name: PG}\nrooms: [{id: mr1, name: 主機房}]\n"
        "records: {url: 'postgresql://roomguard@127.0.0.1/records', password: {env: PGPASS}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["backup", str(site), str(tmp_path / "pg.tar.gz"), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "NOT in this archive" in result.output
    assert "pg_dump" in result.output
    manifest, problems = read_archive(tmp_path / "pg.tar.gz")
    assert problems == []
    assert manifest.records["kind"] == "postgresql"
    assert "external/records.db" not in {m.name for m in manifest.members}


def test_an_archive_inside_the_state_directory_and_a_duplicated_member_are_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "collector.json").write_text("{}")
    with pytest.raises(BackupError, match="inside the state directory"):
        create_backup(state, state / "b.tar", site_id="s1", records={"kind": "state"})
    archive = tmp_path / "b.tar"
    create_backup(state, archive, site_id="s1", records={"kind": "state"})
    with tarfile.open(archive, "a") as tar:
        info = tar.getmember("collector.json")
        tar.addfile(info, io.BytesIO(b"{}"))  # the same bytes again: only the duplicate is wrong
    _, problems = read_archive(archive)
    assert problems == ["collector.json: in the archive twice 重複的檔案"]
