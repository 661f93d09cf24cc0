"""The durable MQTT outbox: order, ack, bounds, crash safety (SIGKILL) and a stateful model check."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bus.outbox import DropEvent, Outbox, OutboxCorrupt, OutboxError, OutboxLocked, Pending
from tests.manual_clock import Clock

REPO = Path(__file__).resolve().parents[1]
BIG = 10**9


def ids(ob: Outbox) -> list[int]:
    return [m.id for m in ob.peek(10**6)]


def test_order_and_content_preserved_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, BIG, 3600) as ob:
        a = ob.put("roomguard/v1/s/r/ups1/readings", b"\x00\x01", qos=1)
        b = ob.put("roomguard/v1/s/r/ups1/status", b"online", qos=1, retain=True)
        c = ob.put_many([Pending("t/x", b"x"), ("t/y", b"y"), Pending("t/z", b"z", 0, False)])
    assert [a, b, *c] == sorted([a, b, *c])
    with Outbox(path, BIG, 3600) as ob:
        got = ob.peek(10)
        assert [m.id for m in got] == [a, b, *c]
        assert (got[1].topic, got[1].payload, got[1].qos, got[1].retain) == (
            "roomguard/v1/s/r/ups1/status",
            b"online",
            1,
            True,
        )
        assert got[4].qos == 0
        assert ob.depth() == (5, sum(len(m.topic) + len(m.payload) for m in got))
        assert ob.peek(2, after_id=b) == got[2:4]


def test_ack_removes_idempotently_and_acked_never_come_back(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, BIG, 3600) as ob:
        put = [ob.put("t", bytes([i])) for i in range(6)]
        ob.ack([put[0], put[2]])
        ob.ack([put[0], 999_999, -1])  # repeated and unknown ids are harmless
        ob.ack([])
        assert ids(ob) == [put[1], put[3], put[4], put[5]]
        assert ob.depth() == (4, 8)
    with Outbox(path, BIG, 3600) as ob:
        assert ids(ob) == [put[1], put[3], put[4], put[5]]
        ob.ack(put)
        assert ob.depth() == (0, 0)
        assert ob.peek(10) == []
        # Ids are never reused, so a stale ack from before a restart cannot hit a new message.
        new = ob.put("t", b"n")
        assert new > put[-1]
        ob.ack(put)
        assert ids(ob) == [new]


def test_bytes_bound_drops_oldest_counts_persist_and_log_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.db"
    clock = Clock(1000.0)
    caplog.set_level(logging.WARNING, logger="bus.outbox")
    with Outbox(path, max_bytes=100, max_age_s=3600, clock=clock) as ob:
        first = [ob.put("t", b"x" * 9) for i in range(10)]  # 10 bytes each: exactly full
        assert ob.depth() == (10, 100)
        assert not caplog.records
        assert ob.last_drop is None
        inflight = ob.peek(3)  # handed to the publisher, not acked yet: may still be dropped
        new = ob.put_many([("t", b"y" * 19), ("t", b"y" * 9)])  # 30 bytes: three oldest must go
        assert ids(ob) == first[3:] + new
        assert ob.depth() == (9, 100)
        assert len(caplog.records) == 1
        msg = caplog.records[0].getMessage()
        assert "dropped 3 oldest" in msg
        assert "100 bytes" in msg
        assert str(path) in msg
        ob.ack([m.id for m in inflight])  # acks for dropped ids are harmless
        assert ob.depth() == (9, 100)
        with pytest.raises(ValueError, match="exceed"):
            ob.put("t", b"z" * 200)  # could never fit: refused, nothing dropped for it
        assert ob.dropped_total == 3
    with Outbox(path, max_bytes=100, max_age_s=3600, clock=clock) as ob:
        assert ob.dropped_by_reason == {"bytes": 3, "age": 0}
        assert ob.dropped_total == 3
        assert ob.last_drop == DropEvent(1000.0, 3, "bytes")
    caplog.clear()
    with Outbox(path, max_bytes=50, max_age_s=3600, clock=clock) as ob:  # bound shrunk while down
        assert ob.depth()[1] <= 50
        assert ob.dropped_by_reason["bytes"] > 3
        assert len(caplog.records) == 1


def test_age_bound_on_put_and_enforce(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.db"
    clock = Clock(0.0)
    caplog.set_level(logging.WARNING, logger="bus.outbox")
    with Outbox(path, max_bytes=BIG, max_age_s=60, clock=clock) as ob:
        old = ob.put_many([("t", b"a"), ("t", b"b")])
        clock.t = 30.0
        mid = ob.put("t", b"c")
        assert ob.oldest_age_s() == 30.0
        clock.t = 61.0
        assert ob.enforce_bounds() == 2
        assert ids(ob) == [mid]
        assert ob.oldest_age_s() == 31.0
        assert ob.enforce_bounds() == 0  # nothing more to drop: no second warning
        assert len(caplog.records) == 1
        assert "dropped 2 oldest" in caplog.records[0].getMessage()
        assert "older than 60 s" in caplog.records[0].getMessage()
        clock.t = 95.0
        new = ob.put("t", b"d")  # the put itself enforces the age bound
        assert ids(ob) == [new]
        assert len(caplog.records) == 2
        ob.ack([*old, mid])
    clock.t = 1000.0
    with Outbox(path, max_bytes=BIG, max_age_s=60, clock=clock) as ob:  # reopened late: drops at open
        assert ob.depth() == (0, 0)
        assert ob.oldest_age_s() == 0.0
        assert ob.dropped_by_reason == {"bytes": 0, "age": 4}
        assert ob.last_drop == DropEvent(1000.0, 1, "age")


def test_put_many_is_atomic(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", BIG, 3600) as ob:
        before = ob.put("t", b"0")
        with pytest.raises(ValueError, match="qos"):
            ob.put_many([("t", b"1"), Pending("t", b"2", qos=7)])
        # Fault injection inside the transaction: the second row fails after the first was inserted.
        ob._db.execute(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON messages WHEN NEW.topic = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        with pytest.raises(OutboxError, match="injected failure"):
            ob.put_many([("t", b"1"), ("boom", b"2"), ("t", b"3")])
        assert ids(ob) == [before]
        assert ob.depth() == (1, 2)
        after = ob.put_many([("t", b"4"), ("t", b"5")])
        assert ids(ob) == [before, *after]
        assert ob.depth() == (3, 6)


def test_locked_and_corrupt_files_fail_loudly_and_are_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, BIG, 3600) as ob:
        ob.put("t", b"keep")
        with pytest.raises(OutboxLocked, match=str(path)):
            Outbox(path, BIG, 3600)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite at all " * 500)
    with pytest.raises(OutboxCorrupt, match=str(bad)):
        Outbox(bad, BIG, 3600)
    assert bad.read_bytes() == b"not sqlite at all " * 500
    # A valid sqlite file that is not ours (wrong path in the config) is refused, not written into.
    other = tmp_path / "other.db"
    shutil.copy(path, other)
    db = sqlite3.connect(other)
    db.execute("PRAGMA application_id=7")
    db.close()
    with pytest.raises(OutboxCorrupt, match="not a roomguard outbox"):
        Outbox(other, BIG, 3600)


KILL_SCRIPT = """
import sys
from bus.outbox import Outbox
ob = Outbox(sys.argv[1], 10**9, 10**6)
i = 0
while True:
    i += 1
    if i % 2:
        print("put", ob.put("t", str(i).encode()), flush=True)
    else:
        for mid in ob.put_many([("t", b"a"), ("t", b"b")]):
            print("put", mid, flush=True)
    if i % 7 == 0:
        head = [m.id for m in ob.peek(3)]
        print("ack-begin", *head, flush=True)
        ob.ack(head)
        print("ack-done", flush=True)
"""


@pytest.mark.parametrize("seed", range(5))
def test_sigkill_loses_nothing_put_returned_and_resurrects_no_ack(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "o.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(random.Random(seed).randint(20, 3000))]
    proc.send_signal(signal.SIGKILL)  # it keeps writing meanwhile: the kill lands at an arbitrary point
    proc.wait()
    out = "".join(seen) + proc.stdout.read()  # everything it printed before dying
    proc.stdout.close()
    put: list[int] = []
    acked: set[int] = set()
    pending_ack: set[int] = set()
    for line in out.splitlines():
        word, *rest = line.split() or [""]
        if word == "put" and rest:
            put.append(int(rest[0]))
        elif word == "ack-begin":
            pending_ack = {int(x) for x in rest}  # may or may not have committed before the kill
        elif word == "ack-done":
            acked |= pending_ack
            pending_ack = set()
    assert proc.returncode == -signal.SIGKILL
    with Outbox(path, 10**9, 10**6) as ob:
        found = ids(ob)
    assert found == sorted(set(found))
    assert not acked & set(found), "an acknowledged message came back"
    missing = set(put) - acked - pending_ack - set(found)
    assert not missing, f"lost {len(missing)} messages whose put had returned"
    assert set(found) - set(put) <= set(range(max(put) + 1, max(put) + 3))  # only the unprinted last put


def test_throughput_measurement(tmp_path: Path) -> None:
    """Prints put/put_many/peek+ack rates; no timing assertion (machines differ)."""
    payload = b'{"schema":1,"seq":1,"metrics":{"temp_c":23.4,"rh_pct":41.0,"load_pct":37.5}}'
    topic = "roomguard/v1/site/room/ups1/readings"
    with Outbox(tmp_path / "o.db", BIG, 3600) as ob:
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            ob.put(topic, payload)
        single = n / (time.perf_counter() - t0)
        batches, size = 200, 50
        t0 = time.perf_counter()
        for _ in range(batches):
            ob.put_many([(topic, payload)] * size)
        many = batches * size / (time.perf_counter() - t0)
        total = ob.depth()[0]
        t0 = time.perf_counter()
        while batch := ob.peek(100):
            ob.ack([m.id for m in batch])
        drain = total / (time.perf_counter() - t0)
    print(
        f"\noutbox throughput: put {single:,.0f} msg/s, put_many(50) {many:,.0f} msg/s, "
        f"peek+ack(100) {drain:,.0f} msg/s"
    )
    assert ob.depth() == (0, 0)


@dataclass
class _Row:
    """One message of the model, as the outbox should hold it."""

    id: int
    size: int
    created: float
    stream: str | None
    seq: int | None
    published: bool = False


class OutboxModel(RuleBasedStateMachine):
    """peek() == every put id not delivered and not dropped, in order, across reopens, drops, clock moves,
    PUBACKs, confirmations and re-publication; depth counts the published-but-unconfirmed ones too."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="outbox-model-")
        self.path = Path(self.dir) / "o.db"
        self.clock = Clock(0.0)
        self.max_bytes, self.max_age = 200, 100.0
        self.ob = self._open()
        self.model: list[_Row] = []  # oldest first
        self.dropped = 0
        self.last_id = 0
        self.next_seq = {"a": 0, "b": 0}

    def _open(self) -> Outbox:
        return Outbox(self.path, self.max_bytes, self.max_age, clock=self.clock)

    def _enforce(self, added: int) -> None:
        """The documented policy: drop the oldest expired, then the oldest until the new bytes fit."""
        while self.model and self.model[0].created < self.clock.t - self.max_age:
            self.model.pop(0)
            self.dropped += 1
        while self.model and sum(m.size for m in self.model) + added > self.max_bytes:
            self.model.pop(0)
            self.dropped += 1

    @rule(
        sizes=st.lists(st.integers(0, 60), min_size=1, max_size=3),
        streams=st.lists(st.sampled_from([None, "a", "b"]), min_size=3, max_size=3),
    )
    def put(self, sizes: list[int], streams: list[str | None]) -> None:
        self._enforce(sum(sizes) + len(sizes))
        pending = []
        for size, stream in zip(sizes, streams, strict=False):
            seq = None
            if stream is not None:
                seq = self.next_seq[stream]
                self.next_seq[stream] += 1
            pending.append(Pending("t", b"p" * size, stream=stream, seq=seq))
        got = self.ob.put_many(pending) if len(sizes) > 1 else [self.ob.put_many(pending)[0]]
        assert got[0] > self.last_id
        assert got == list(range(got[0], got[0] + len(sizes)))
        self.last_id = got[-1]
        self.model += [
            _Row(i, len(p.payload) + 1, self.clock.t, p.stream, p.seq)
            for i, p in zip(got, pending, strict=True)
        ]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from([m.id for m in self.model]), max_size=5))
        stale = data.draw(st.lists(st.integers(-2, self.last_id + 3), max_size=2))
        self.ob.ack(chosen + stale)
        gone = set(chosen + stale)
        for m in self.model:
            if m.id in gone and m.stream is not None:
                m.published = True  # a reading waits for the archive
        self.model = [m for m in self.model if m.id not in gone or m.stream is not None]

    @rule(stream=st.sampled_from(["a", "b"]), first=st.integers(0, 12), span=st.integers(0, 4))
    def confirm(self, stream: str, first: int, span: int) -> None:
        hit = [
            m
            for m in self.model
            if m.stream == stream and m.seq is not None and first <= m.seq <= first + span
        ]
        assert self.ob.confirm([(stream, first, first + span)]) == len(hit)
        self.model = [m for m in self.model if m not in hit]

    @rule()
    def unpublish_all(self) -> None:
        published = [m for m in self.model if m.published]
        assert self.ob.unpublish_all() == len(published)
        for m in published:
            m.published = False

    @rule(limit=st.integers(1, 5))
    def peek_head(self, limit: int) -> None:
        due = [m.id for m in self.model if not m.published]
        assert [m.id for m in self.ob.peek(limit)] == due[:limit]

    @rule(dt=st.floats(0, 80))
    def advance(self, dt: float) -> None:
        self.clock.t += dt

    @rule()
    def enforce(self) -> None:
        before = self.dropped
        self._enforce(0)
        assert self.ob.enforce_bounds() == self.dropped - before

    @rule()
    def reopen(self) -> None:
        self.ob.close()
        self.ob = self._open()
        self._enforce(0)

    @invariant()
    def peek_is_model(self) -> None:
        assert ids(self.ob) == [m.id for m in self.model if not m.published]
        assert self.ob.depth() == (len(self.model), sum(m.size for m in self.model))
        assert self.ob.awaiting == sum(1 for m in self.model if m.published)
        assert self.ob.dropped_total == self.dropped

    def teardown(self) -> None:
        self.ob.close()
        shutil.rmtree(self.dir, ignore_errors=True)


OutboxModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestOutboxModel = OutboxModel.TestCase


# --- delivery confirmations (archive release) ----------------------------------------------------------


def _reading(stream: str, seq: int) -> Pending:
    return Pending(f"roomguard/v1/s/{stream}/readings", f"{stream}#{seq}".encode(), stream=stream, seq=seq)


def test_a_reading_stays_after_puback_until_the_archive_confirms_it(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    with Outbox(tmp_path / "o.db", BIG, 3600, clock=clock) as ob:
        r0, r1, status = ob.put_many([_reading("r1/ups-1", 0), _reading("r1/ups-1", 1), Pending("st", b"on")])
        ob.ack([r0, r1, status])
        # The status message is gone; the readings wait for ingest, out of the publisher's way.
        assert ob.depth()[0] == 2
        assert ob.awaiting == 2
        assert ob.peek(10) == []
        assert ob.confirm([("r1/ups-1", 0, 0), ("r1/other", 0, 5)]) == 1
        assert ob.awaiting == 1
        # The broker restarted: what it acknowledged but nobody confirmed goes out again, in order.
        assert ob.unpublish_all() == 1
        assert ids(ob) == [r1]
        assert ob.awaiting == 0
        ob.ack([r1])
        assert ob.confirm([("r1/ups-1", 1, 1)]) == 1
        assert ob.depth() == (0, 0)


def test_readings_the_archive_skipped_are_put_back_in_line(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    with Outbox(tmp_path / "o.db", BIG, 3600, clock=clock) as ob:
        got = ob.put_many([_reading("a", s) for s in range(5)] + [_reading("b", 0)])
        ob.ack(got)
        clock.t += 60
        assert ob.unpublish_lost(published_before=clock.t - 30) == 0  # nothing confirmed yet: no progress
        ob.confirm([("a", 0, 1), ("a", 3, 4)])  # "a"#2 and "b"#0 never reached the database
        assert ob.confirmed_up_to == got[4]
        # Only what was published before the cut-off and stored before the last confirmed message.
        assert ob.unpublish_lost(published_before=clock.t - 120) == 0
        assert ob.unpublish_lost(published_before=clock.t - 30) == 1
        assert [m.payload for m in ob.peek(10)] == [b"a#2"]


def test_broker_release_deletes_on_puback_and_restart_keeps_seqs_above_the_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", BIG, 3600, release="broker") as ob:
        got = ob.put_many([_reading("a", 7), _reading("a", 8), _reading("b", 3)])
        assert ob.max_seqs() == {"a": 8, "b": 3}
        ob.ack(got[:1])
        assert ob.depth()[0] == 2
        assert ob.awaiting == 0
    with pytest.raises(ValueError, match="stream and seq go together"):
        Outbox(tmp_path / "p.db", BIG, 3600).put_many([Pending("t", b"x", stream="a")])


def test_a_version_1_outbox_is_migrated_in_place_with_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL,"
        " size INTEGER NOT NULL);"
        "CREATE TABLE stats (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
        f"PRAGMA application_id={0x52474F42}; PRAGMA user_version=1;"
    )
    db.execute(
        "INSERT INTO messages (topic, payload, qos, retain, created, size) VALUES ('t', x'01', 1, 0, ?, 2)",
        (time.time(),),
    )
    db.commit()
    db.close()
    with Outbox(path, BIG, 3600) as ob:
        (old,) = ob.peek(10)
        assert old.payload == b"\x01"
        new = ob.put_many([_reading("a", 0)])
        ob.ack([old.id, *new])
        assert ob.depth()[0] == 1  # the v1 message had no stream: PUBACK released it
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_outbox_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "state"
        with Outbox(state / "outbox.db", BIG, 3600) as ob:
            ob.put("t", b"x")
            modes = {p.name: p.stat().st_mode & 0o777 for p in state.iterdir()}
        assert (state.stat().st_mode & 0o777) == 0o700
        assert modes["outbox.db"] == 0o600
        assert {n for n in modes if n.endswith(("-wal", "-shm"))}, modes  # WAL mode made its side files
        assert set(modes.values()) == {0o600}, modes
    finally:
        os.umask(old)
