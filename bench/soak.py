"""Soak test: the example site for a given time, and the resident-memory slope of each process.

    .venv/bin/python -m bench.soak --minutes 150 [--tracemalloc-every 30] [--work DIR]
    .venv/bin/python -m bench.soak --compare DIR/snapshots [--top 15]

Starts a private mosquitto and InfluxDB 1.6, `roomguard simulate` and `roomguard run` on the example site
(deploy/examples/site.yaml on free ports), samples each process's RSS every few seconds (WORK/rss.csv) and
prints, per process, the start/end RSS and the least-squares slope in MB/h over the whole run and over its
second half, start-up (--settle minutes) left out: a levelling-off shows as a second-half slope near 0, a
steady leak keeps both alike. Then where the RSS changed (malloc heap, anonymous maps such as pymalloc's
arenas, files) and a sanity line: points in InfluxDB against the poll intervals, outbox depth and drops,
warnings in the logs.

`roomguard run`'s ingest child is sampled as its own process ("roomguard ingest").

With --tracemalloc-every MIN the two roomguard processes run under bench.soak_child, which dumps a
tracemalloc snapshot every MIN minutes into WORK/snapshots/<process>/; --compare on that folder (or one
process's folder) prints the traced total, RSS, gc objects and glibc malloc use at each snapshot, and the
allocation sites that grew most between the first and last periodic snapshots. A growing RSS over a flat
traced total is the allocator or native code (SQLite, OpenSSL), not a Python object leak. tracemalloc
slows the processes, and each snapshot adds tens of MB of RSS: measure slopes without it, name
allocations with it. The ingest child is not traced (it is started by `run` as `python -m roomguard`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from testkit.example_site import SECRETS, example_site
from testkit.services import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
WARMUP_S = 8.0  # simulator up before the collector polls it


@dataclass
class Series:
    """RSS samples of one process: (seconds since start, MB)."""

    name: str
    pid: int
    points: list[tuple[float, float]] = field(default_factory=list)
    parent_pid: int = 0  # when set: the pid is the parent's child process, looked up again if it restarts
    cpu_s: float = 0.0
    maps: list[dict[str, float]] = field(default_factory=list)  # at the end of start-up, at the end

    def sample(self, t: float) -> bool:
        """Add one RSS sample; False once the process is gone."""
        if self.parent_pid:
            self._find_child()
            if not self.pid:
                return True  # not started yet
        try:
            proc = psutil.Process(self.pid)
            rss = proc.memory_info().rss / 2**20
            cpu = proc.cpu_times()
        except psutil.NoSuchProcess:
            return False
        self.points.append((t, rss))
        self.cpu_s = cpu.user + cpu.system
        return True

    def _find_child(self) -> None:
        """Follow the parent's (only) child: `roomguard run` restarts its ingest child if it dies."""
        try:
            if self.pid and psutil.Process(self.pid).ppid() == self.parent_pid:
                return
            children = psutil.Process(self.parent_pid).children()
        except psutil.NoSuchProcess:
            return
        if children:
            self.pid = children[0].pid

    def map_rss(self) -> None:
        """Record the RSS by kind of mapping: malloc heap, anonymous (pymalloc arenas, mmap), files."""
        kinds = {"heap": 0.0, "anon": 0.0, "files": 0.0}
        try:
            for m in psutil.Process(self.pid).memory_maps(grouped=True):
                kind = "heap" if m.path == "[heap]" else "files" if m.path.startswith("/") else "anon"
                kinds[kind] += m.rss / 2**20
        except psutil.NoSuchProcess:
            return
        self.maps.append(kinds)

    def settled(self, after_s: float) -> list[tuple[float, float]]:
        """Samples from `after_s` on (start-up excluded)."""
        return [p for p in self.points if p[0] >= after_s]


def slope_mb_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (s, MB) points, in MB/h (0 with fewer than two distinct times)."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600.0


def second_half(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The samples taken in the second half of the run's time span."""
    if not points:
        return []
    mid = (points[0][0] + points[-1][0]) / 2
    return [p for p in points if p[0] >= mid]


def _roomguard(
    args: list[str], env: dict[str, str], log: IO[bytes], snapdir: Path | None, every_s: float, frames: int
) -> subprocess.Popen[bytes]:
    """`roomguard ARGS` in the background (under bench.soak_child when `snapdir` is given)."""
    if snapdir is None:
        argv = [PY, "-m", "roomguard", *args]
    else:
        argv = [PY, "-m", "bench.soak_child", str(snapdir), str(every_s), str(frames), "--", *args]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _influx_counts(db: Influxd) -> dict[str, int]:
    """Points per device in the database (every point has the `quality` field)."""
    out: dict[str, int] = {}
    for row in db.rows('SELECT count("quality") FROM /.*/ GROUP BY "device"'):
        out[row["device"]] = out.get(row["device"], 0) + int(row["count"])
    return out


def _log_problems(path: Path) -> list[str]:
    """Lines of a process log at WARNING or above, and tracebacks."""
    if not path.exists():
        return []
    keys = (" WARNING ", " ERROR ", " CRITICAL ", "Traceback")
    return [line for line in path.read_text(errors="replace").splitlines() if any(k in line for k in keys)]


def _progress(series: list[Series], t: float, settle_s: float) -> None:
    parts = [
        f"{s.name} {s.points[-1][1]:.1f} MB ({slope_mb_per_h(s.settled(settle_s)):+.2f} MB/h)"
        for s in series
        if s.points
    ]
    print(f"  [{t / 60:6.1f} min] " + ", ".join(parts), flush=True)


def _report(series: list[Series], seconds: float, settle_s: float) -> None:
    print(
        f"RSS from {settle_s / 60:.1f} to {seconds / 60:.1f} min (start-up excluded), sampled every"
        f" {seconds / max(1, len(series[0].points)):.1f} s:"
    )
    print(
        f"  {'process':<20} {'start MB':>9} {'end MB':>8} {'min':>7} {'max':>7}"
        f" {'slope MB/h':>11} {'2nd half MB/h':>14} {'CPU %':>6}"
    )
    for s in series:
        points = s.settled(settle_s)
        if not points:
            print(f"  {s.name:<20} (no samples after start-up)")
            continue
        values = [v for _, v in points]
        print(
            f"  {s.name:<20} {values[0]:9.1f} {values[-1]:8.1f} {min(values):7.1f} {max(values):7.1f}"
            f" {slope_mb_per_h(points):+11.2f} {slope_mb_per_h(second_half(points)):+14.2f}"
            f" {100 * s.cpu_s / max(seconds, 1):6.1f}"
        )
    print(
        "  RSS change by mapping from the end of start-up (malloc heap / anonymous: pymalloc arenas and"
        " mmap / files):"
    )
    for s in series:
        if len(s.maps) >= 2:
            a, b = s.maps[0], s.maps[-1]
            print(f"    {s.name:<20} " + "  ".join(f"{k} {b[k]:6.1f} MB ({b[k] - a[k]:+.2f})" for k in a))


def _sanity(db: Influxd, site_path: Path, state: Path, ran_s: float, logs: dict[str, Path]) -> None:
    from siteconfig.config import load_site

    site = load_site(site_path)
    counts = _influx_counts(db)
    expected = {d.id: ran_s / site.poll_interval_s(d) for d in site.devices}
    ratios = {d: counts.get(d, 0) / e for d, e in expected.items() if e > 0}
    low = min(ratios, key=lambda d: ratios[d]) if ratios else "-"
    print(
        f"Sanity: {sum(counts.values())} points in InfluxDB (~{sum(expected.values()):.0f} expected from"
        f" the poll intervals; lowest device {low} at {ratios.get(low, 0) * 100:.0f} %)"
    )
    try:
        snap = json.loads((state / "collector.json").read_text())
        ob = snap.get("outbox", {})
        print(
            f"  outbox depth {ob.get('depth')} ({ob.get('bytes')} bytes), dropped"
            f" {ob.get('dropped_total')}, broker acked {snap.get('broker', {}).get('acked')}"
        )
    except (OSError, ValueError) as exc:
        print(f"  outbox: no collector snapshot ({exc})")
    for name, path in logs.items():
        problems = _log_problems(path)
        print(
            f"  {name} log: {len(problems)} warning/error lines"
            + (f"; last: {problems[-1]}" if problems else "")
        )


def soak(
    minutes: float,
    every_min: float,
    sample_s: float,
    report_min: float,
    settle_min: float,
    work: Path,
    frames: int = 1,
) -> None:
    """Run the example site for `minutes`, sampling RSS; print the slopes and a sanity line."""
    import collector

    print(f"roomguard code under test: {Path(collector.__file__).parent} (work dir {work})", flush=True)
    broker = Mosquitto(work / "mosquitto")
    db = Influxd(work / "influxd")
    broker.start()
    db.start()
    site, _ = example_site(
        work / "site.yaml",
        mqtt=(
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, "
            "password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        ),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{db.port}', api: v1, database: {db.database}}}\n",
    )
    env = {
        **os.environ,
        **SECRETS,
        "ROOMGUARD_MQTT_PASSWORD": broker.password,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    snaps = work / "snapshots" if every_min > 0 else None
    state = work / "state"
    logs = {"simulate": work / "simulate.log", "run": work / "run.log"}
    handles = {k: p.open("ab") for k, p in logs.items()}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def _stop_soon(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old_term = signal.signal(signal.SIGTERM, _stop_soon)
    try:
        procs["simulate"] = _roomguard(
            ["simulate", str(site)],
            env,
            handles["simulate"],
            snaps / "simulate" if snaps else None,
            every_min * 60,
            frames,
        )
        time.sleep(WARMUP_S)
        procs["run"] = _roomguard(
            ["run", str(site), "--state-dir", str(state)],
            env,
            handles["run"],
            snaps / "run" if snaps else None,
            every_min * 60,
            frames,
        )
        series = [
            Series("roomguard run", procs["run"].pid),
            Series("roomguard ingest", 0, parent_pid=procs["run"].pid),
            Series("roomguard simulate", procs["simulate"].pid),
            Series("mosquitto", broker.pid or 0),
            Series("influxd", db.pid or 0),
        ]
        with (work / "rss.csv").open("w") as csv:
            csv.write("t_s," + ",".join(s.name for s in series) + "\n")
            start = time.monotonic()
            end = start + minutes * 60
            next_report = start + report_min * 60
            try:
                while (now := time.monotonic()) < end and not stopping:
                    t = now - start
                    alive = [s.sample(t) for s in series]
                    row = [f"{s.points[-1][1]:.2f}" if s.points else "" for s in series]
                    csv.write(f"{t:.1f}," + ",".join(row) + "\n")
                    if not (alive[0] and alive[2]):
                        print("a roomguard process exited early; see its log", flush=True)
                        break
                    if not series[0].maps and t >= settle_min * 60:
                        for s in series:
                            s.map_rss()
                    if now >= next_report:
                        csv.flush()
                        _progress(series, t, settle_min * 60)
                        next_report += report_min * 60
                    time.sleep(max(0.0, sample_s - (time.monotonic() - now)))
            except KeyboardInterrupt:
                print("interrupted: reporting what was sampled", flush=True)
            ran = time.monotonic() - start
        for s in series:
            s.map_rss()
        for name in ("run", "simulate"):
            procs[name].send_signal(signal.SIGTERM)
            procs[name].wait(timeout=60)
        _report(series, ran, settle_min * 60)
        _sanity(db, site, state, ran, logs)
        if snaps is not None:
            print(f"tracemalloc snapshots: {snaps}  (compare: python -m bench.soak --compare {snaps})")
    finally:
        signal.signal(signal.SIGTERM, old_term)
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for h in handles.values():
            h.close()
        broker.stop()
        db.stop()
        shutil.rmtree(work / "influxd", ignore_errors=True)
        shutil.rmtree(work / "mosquitto", ignore_errors=True)


def _snapshots(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tmsnap"))


def _compare_one(folder: Path, top: int) -> None:
    """Top growing allocation sites of one process between its first and last periodic snapshots."""
    files = _snapshots(folder)
    periodic = [f for f in files if "-periodic" in f.name]
    chosen = periodic if len(periodic) >= 2 else files
    pair = (chosen[0], chosen[-1]) if len(chosen) >= 2 else None
    print(f"== {folder}")
    stats_path = folder / "stats.jsonl"
    if stats_path.exists():
        print(
            f"  {'snapshot':<34} {'min':>7} {'traced MB':>10} {'RSS MB':>8} {'gc objects':>11}"
            f" {'malloc used/free MB':>20} {'SQLite MB':>9}"
        )
        for line in stats_path.read_text().splitlines():
            st = json.loads(line)
            malloc = (
                f"{st['malloc_in_use_mb']:9.2f}/{st['malloc_free_mb']:<6.2f}"
                if "malloc_in_use_mb" in st
                else ""
            )
            malloc += f" {st['sqlite_mb']:9.2f}" if "sqlite_mb" in st else ""
            print(
                f"  {st['snapshot']:<34} {st['elapsed_s'] / 60:7.1f} {st['traced_mb']:10.2f}"
                f" {st['rss_mb']:8.1f} {st['gc_objects']:11d} {malloc:>20}"
            )
    if pair is None:
        print("  fewer than two snapshots")
        return
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib*>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]
    old = tracemalloc.Snapshot.load(str(pair[0])).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(str(pair[1])).filter_traces(ignore)
    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    print(
        f"  {pair[0].name} -> {pair[1].name}: traced {total_old / 2**20:.2f} -> {total_new / 2**20:.2f} MB"
        f" ({(total_new - total_old) / 2**10:+.0f} KiB)"
    )
    diffs = [d for d in new.compare_to(old, "lineno") if d.size_diff > 0][:top]
    print(f"  top {len(diffs)} growing lines (size diff, count diff, now):")
    for d in diffs:
        frame = d.traceback[0]
        print(
            f"    {d.size_diff / 2**10:+9.1f} KiB {d.count_diff:+7d} blocks  {d.size / 2**10:9.1f} KiB"
            f"  {frame.filename}:{frame.lineno}"
        )
    print("  top 5 growing call stacks (innermost last):")
    for d in [d for d in new.compare_to(old, "traceback") if d.size_diff > 0][:5]:
        print(f"    {d.size_diff / 2**10:+9.1f} KiB {d.count_diff:+7d} blocks")
        for line in d.traceback.format(limit=8):
            print(f"      {line}")


def compare(folder: Path, top: int) -> None:
    """Compare snapshots of one process folder, or of each process folder under `folder`."""
    folders = [folder] if _snapshots(folder) else sorted(p for p in folder.iterdir() if _snapshots(p))
    if not folders:
        sys.exit(f"no *.tmsnap under {folder}")
    for f in folders:
        _compare_one(f, top)


def main() -> None:
    """Soak the example site, or compare tracemalloc snapshots of an earlier soak."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="how long to run the site")
    ap.add_argument(
        "--tracemalloc-every",
        type=float,
        default=0.0,
        metavar="MIN",
        help="run the roomguard processes under tracemalloc, a snapshot every MIN minutes",
    )
    ap.add_argument(
        "--frames",
        type=int,
        default=1,
        help="tracemalloc frames per allocation (1 is cheapest; more show callers)",
    )
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling interval")
    ap.add_argument(
        "--settle", type=float, default=2.0, metavar="MIN", help="start-up minutes left out of the RSS fits"
    )
    ap.add_argument("--report-every", type=float, default=10.0, metavar="MIN", help="progress line interval")
    ap.add_argument("--work", type=Path, help="work dir, kept (default: a temp dir, kept only for snapshots)")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="compare the snapshots in DIR and exit")
    ap.add_argument("--top", type=int, default=15, help="growing sites to list with --compare")
    args = ap.parse_args()
    if args.compare is not None:
        compare(args.compare, args.top)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="roomguard-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        soak(
            args.minutes,
            args.tracemalloc_every,
            args.sample_s,
            args.report_every,
            args.settle,
            work,
            args.frames,
        )
    finally:
        if args.work is None and args.tracemalloc_every <= 0:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
