"""Backup benchmark: `roomguard backup` and `restore` of a state directory with a full outbox, and the
pause a running collector takes to copy its locked outbox for a backup (the handoff).

    .venv/bin/python -m bench.backup [--mb 256] [--keep DIR]

All from one run, on one state directory built here:
1. an outbox (bus.outbox.Outbox, opened as the collector opens it: exclusive lock, WAL) filled with about
   `--mb` MiB of 600-byte readings messages (a broker outage of hours at the example site's load; the
   outbox's default bound is 512 MiB), a seq.db and a records database (records.migrate.upgrade);
2. handoff: with the outbox open in this process, a backup's copy request is put in place and
   Outbox.serve_backup_request() is timed: the one pause of the collector's event loop a backup costs.
   Peer: the sqlite3 command-line shell's `.backup` of the same file (closed), the floor for copying it;
3. create_backup of the whole directory into a .tar.gz while the outbox stays locked, a thread
   answering the copy request as the collector's 2 s status tick does. Peer: sqlite3 `.backup` of each
   database, then `tar -czf` of the copies;
4. restore_archive into an empty directory (manifest check, write, integrity check of each database).
   Peer: `tar -xzf` of the peer's archive.
No targets: the figures say what an operator waits for and what a backup costs polling.

Measured on a 2-core box (23 GB, Python 3.11), 256 MiB of readings (447,392 messages), alone:
see the closing note of issue 13 (the figures printed by this script).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bus.backup import create_backup, restore_archive
from bus.backup_handoff import request_path
from bus.outbox import Outbox
from bus.state_dir import create_private_file, prepare_state_dir
from records.migrate import upgrade

T = TypeVar("T")
MESSAGE_BYTES = 600  # a readings message of the example site (docs/mqtt.md)
BATCH = 5_000


def timed(what: str, fn: Callable[[], T]) -> tuple[T, float]:
    """Run `fn`, print and return its wall time."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"  {what:<58} {elapsed:8.2f} s", flush=True)
    return result, elapsed


def fill_outbox(outbox: Outbox, mib: int) -> int:
    """Put about `mib` MiB of readings messages into `outbox`; return how many."""
    payload = b'{"schema":"roomguard.readings/1",' + b"x" * (MESSAGE_BYTES - 34) + b"}"
    count = mib * 1024 * 1024 // MESSAGE_BYTES
    for first in range(0, count, BATCH):
        n = min(BATCH, count - first)
        outbox.put_many(
            [(f"roomguard/v1/bench/room/dev-{(first + i) % 50}/readings", payload) for i in range(n)]
        )
    return count


def sqlite_cli_backup(src: Path, dst: Path) -> None:
    """The peer copy: the sqlite3 shell's `.backup` (the same online backup API, in C)."""
    subprocess.run(["sqlite3", str(src), f".backup '{dst}'"], check=True)


def answer_requests(path: Path, max_bytes: int, ready: threading.Event, stop: threading.Event) -> None:
    """The collector's part: hold the outbox (its exclusive lock) and answer a pending copy request at
    each tick. Its own thread, because SQLite connections stay on the thread that opened them."""
    outbox = Outbox(path, max_bytes=max_bytes, max_age_s=10**9)
    try:
        ready.set()
        while not stop.wait(0.2):
            outbox.serve_backup_request()
    finally:
        outbox.close()


def main() -> None:
    """Build the state directory, then time the handoff, the backup and the restore next to their peers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="MiB of readings in the outbox")
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="roomguard-bench-backup-"))
    state = prepare_state_dir(root / "state")
    try:
        print(f"state directory {state}, outbox of about {args.mb} MiB", flush=True)
        outbox = Outbox(state / "outbox.db", max_bytes=2 * args.mb * 1024 * 1024, max_age_s=10**9)
        count, _ = timed("fill the outbox (not a target)", lambda: fill_outbox(outbox, args.mb))
        outbox.close()
        upgrade(f"sqlite:///{state / 'records.db'}")
        size = (state / "outbox.db").stat().st_size
        print(f"  {count:,} messages, outbox.db {size / 2**20:.0f} MiB", flush=True)

        print("handoff: the collector copies its locked outbox once (its event loop waits meanwhile)")
        outbox = Outbox(state / "outbox.db", max_bytes=2 * args.mb * 1024 * 1024, max_age_s=10**9)
        create_private_file(request_path(state / "outbox.db"))
        _, ours = timed("Outbox.serve_backup_request()", outbox.serve_backup_request)
        outbox.close()
        peer_copy = root / "peer-outbox.db"
        _, peer = timed(
            "peer: sqlite3 .backup of the same file",
            lambda: sqlite_cli_backup(state / "outbox.db", peer_copy),
        )
        print(f"  ratio {ours / peer:.2f}x the sqlite3 shell", flush=True)

        print("backup of the whole state directory (.tar.gz), the outbox locked by its owner")
        ready, stop = threading.Event(), threading.Event()
        owner = (state / "outbox.db", 2 * args.mb * 1024 * 1024, ready, stop)
        thread = threading.Thread(target=answer_requests, args=owner, daemon=True)
        archive = root / "backup.tar.gz"
        try:
            thread.start()
            ready.wait()
            _, ours = timed(
                "create_backup",
                lambda: create_backup(state, archive, site_id="bench", records={}, handoff_timeout_s=600),
            )
        finally:
            stop.set()
            thread.join()
        peer_dir = root / "peer"
        peer_dir.mkdir()

        def peer_backup() -> None:
            for db in ("outbox.db", "records.db"):
                sqlite_cli_backup(state / db, peer_dir / db)
            subprocess.run(["tar", "-czf", str(root / "peer.tar.gz"), "-C", str(peer_dir), "."], check=True)

        _, peer = timed("peer: sqlite3 .backup of each database + tar -czf", peer_backup)
        print(
            f"  archive {archive.stat().st_size / 2**20:.1f} MiB; ratio {ours / peer:.2f}x the peer",
            flush=True,
        )

        print("restore into an empty directory")
        _, ours = timed("restore_archive", lambda: restore_archive(archive, root / "restored"))
        (root / "peer-restored").mkdir()
        _, peer = timed(
            "peer: tar -xzf",
            lambda: subprocess.run(
                ["tar", "-xzf", str(root / "peer.tar.gz"), "-C", str(root / "peer-restored")], check=True
            ),
        )
        print(f"  ratio {ours / peer:.2f}x the peer", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
