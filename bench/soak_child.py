"""A `roomguard` command under tracemalloc, dumping a heap snapshot every few minutes (for bench.soak).

    python -m bench.soak_child SNAPSHOT_DIR EVERY_S FRAMES -- run site.yaml --state-dir ...

Snapshots go to SNAPSHOT_DIR/NNN-<elapsed s>.tmsnap (one at start-up of the command, then every EVERY_S,
and one at a clean exit); each also appends a line to SNAPSHOT_DIR/stats.jsonl with tracemalloc's total,
the RSS, the number of gc-tracked objects, glibc malloc's bytes in use and free-but-kept and SQLite's own
heap, so a growing RSS can be told from a growing Python heap.
FRAMES: frames kept per allocation (1 is cheapest).
Product code is untouched: this only wraps `roomguard.main()`.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import json
import resource
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def _rss_mb() -> float:
    """Resident set size of this process in MB (from /proc, no psutil needed)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_mb() -> dict[str, float]:
    """glibc malloc (everything outside pymalloc's arenas): bytes in use and free-but-kept, in MB."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):  # not glibc >= 2.33
        return {}
    return {
        "malloc_in_use_mb": round((info.uordblks + info.hblkhd) / 2**20, 3),
        "malloc_free_mb": round(info.fordblks / 2**20, 3),
    }


def _sqlite_mb() -> dict[str, float]:
    """SQLite's own heap (page caches, statements) in this process: the library `sqlite3` is linked to."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return {"sqlite_mb": round(lib.sqlite3_memory_used() / 2**20, 3)}
    except (OSError, AttributeError):
        return {}


class Snapshotter:
    """Dumps numbered tracemalloc snapshots and a stats line into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.start = time.monotonic()
        self.count = 0
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def dump(self, label: str) -> None:
        """One snapshot plus its stats line."""
        with self._lock:
            elapsed = time.monotonic() - self.start
            gc.collect()  # what survives a full collection is what is really kept
            current, peak = tracemalloc.get_traced_memory()
            snap = tracemalloc.take_snapshot()
            path = self.folder / f"{self.count:03d}-{elapsed:07.0f}s-{label}.tmsnap"
            snap.dump(str(path))
            took = time.monotonic() - self.start - elapsed
            stats = {
                "n": self.count,
                "label": label,
                "elapsed_s": round(elapsed, 1),
                "traced_mb": round(current / 2**20, 3),
                "traced_peak_mb": round(peak / 2**20, 3),
                "tracemalloc_mb": round(tracemalloc.get_tracemalloc_memory() / 2**20, 3),
                "rss_mb": round(_rss_mb(), 2),
                **_malloc_mb(),
                **_sqlite_mb(),
                "gc_objects": len(gc.get_objects()),
                "snapshot": path.name,
                "dump_s": round(took, 2),
            }
            with (self.folder / "stats.jsonl").open("a") as fh:
                fh.write(json.dumps(stats) + "\n")
            self.count += 1

    def every(self, seconds: float) -> None:
        """Dump every `seconds` from a daemon thread (it dies with the process)."""

        def loop() -> None:
            while True:
                time.sleep(seconds)
                self.dump("periodic")

        threading.Thread(target=loop, name="tracemalloc-snapshots", daemon=True).start()


def main() -> None:
    """Parse SNAPSHOT_DIR EVERY_S FRAMES -- ARGS, start tracemalloc and run `roomguard ARGS`."""
    argv = sys.argv[1:]
    if len(argv) < 4 or argv[3] != "--":
        sys.exit("usage: python -m bench.soak_child SNAPSHOT_DIR EVERY_S FRAMES -- ROOMGUARD_ARGS...")
    folder, every_s, frames, args = Path(argv[0]), float(argv[1]), int(argv[2]), argv[4:]
    tracemalloc.start(frames)
    import collector
    import roomguard  # after tracemalloc: import-time allocations are traced too

    snaps = Snapshotter(folder)
    (folder / "origin.txt").write_text(f"roomguard {roomguard.__file__}\ncollector {collector.__file__}\n")
    snaps.dump("start")
    snaps.every(every_s)
    atexit.register(snaps.dump, "exit")
    sys.argv = ["roomguard", *args]
    roomguard.main()


if __name__ == "__main__":
    main()
