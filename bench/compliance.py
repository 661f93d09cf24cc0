"""Evidence-pack benchmark: half a year of the example site in InfluxDB, the pack beside InfluxDB's own time.

    .venv/bin/python -m bench.compliance [--days 183] [--reuse DIR] [--profile]

All from one run, on one private InfluxDB 1.6 (configured as deploy/influxdb: tsi1, a 400-day default
retention policy, hence 7-day shards; cold shards fully compacted before anything is timed):
1. writes `--days` (default 183: 2026-06-01 .. 2026-11-30 Asia/Taipei) of synthetic readings of the
   example site at a 5 s poll (bench/compliance_data.py: 6 env probes with daily cycles and excursions,
   2 UPS, the genset with its monthly 32-minute test at 40 %, 2 CRAC, 2 doors) as line protocol through
   the v1 /write API, 50 000 lines per POST, precision s; prints points and points/s. With `--reuse DIR`
   the database lives in DIR and a marker point says what it holds: a re-run with the same --days and
   dataset skips the write;
2. builds the whole evidence pack (`build_pack`) of the period over a records DB holding its generator
   and UPS tests, a duty shift every 12 h, vendor visits, disposals, incidents, cold: no day of the
   environment measured yet (a new install, the first report after a history import); the pack
   measures every day and keeps it (compliance.envelope.envelope_days);
3. the peer: the very same InfluxQL requests the pack sent (form fields captured from the client),
   replayed with urllib against /query, as many at a time as roomguard sends (2), end to end
   including reading the JSON;
4. builds the same pack again, the days now kept (what the compliance process keeps ready: it
   measures each ended day in the background), beside its one request replayed raw; both packs'
   environment.xlsx must be identical. Peak RSS of each pack (sampled).
Targets: each pack within 2x the raw queries it sent; the pack with kept days also under 60 s.
`--profile` adds the time of every statement alone (by kind) and a cProfile of the pack (days kept).

Measured on a 2-core box (24 GB, InfluxDB 1.6.7, Python 3.11), the full half-year: 41,109,120 points
written at 147,900 points/s (278 s), 18,964,800 env samples of six probes in the period (the two
hot-aisle probes' are left out of the envelopes as not inlets), two runs:

    InfluxDB alone, cold: the 7 requests (49 statements), 2 at a time   148.0 s           137.8 s
    roomguard evidence pack, cold                                       138.1 s           145.7 s
    cold pack / raw (target <= 2: met)                                     0.93              1.06
    room-days measured and kept, per day                                 0.75 s            0.79 s
    InfluxDB alone, kept days: the 1 request (sample counts)              3.40 s            3.02 s
    roomguard evidence pack, days kept (target < 60 s: met)              4.93 s            4.39 s
    kept-days pack / its raw request (target <= 2: met)                    1.45              1.45
    pack peak RSS, cold / days kept                                 235 / 256 MB      163 / 185 MB

Before the days were kept (same data, previous version): the pack 391 s beside 428 s raw, requests one
at a time, dew-point subqueries 83 % of InfluxDB's time at 3.4-3.9 µs per sample; moving the plain
bounds into the subquery and sending two requests at a time brought the cold pack to ~140 s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import queue
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import psutil
from sqlalchemy import select

import compliance.pack as pack_module
from bench.compliance_data import DATASET_VERSION, POLL_S, Plan, check_results, lines, records
from compliance.envelope import counts_statement, paired_statement, share_statements, stats_statement
from compliance.envelope_store import EnvelopeDayRow
from compliance.influxql import InfluxQL, Params, Series
from compliance.pack import build_pack, site_envelopes
from compliance.store import Records
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import SECRETS, example_site
from testkit.services import Influxd

DATABASE = "roomguard"
MARKER = "bench_compliance_marker"
BATCH = 50_000
TZ = ZoneInfo("Asia/Taipei")
WHO = Actor("bench", "bench:compliance")
TARGET_RATIO = 2.0
TARGET_S = 60.0
# Requests in flight, as compliance.envelope.measure_days sends them.
CONCURRENCY = 2
# build_pack's progress steps, by their number.
STEPS = {
    "1/6": "board and result changes",
    "2/6": "records of every kind",
    "3/6": "environment (InfluxDB) and environment.xlsx",
    "4/6": "audit log and chain verification",
    "5/6": "summary.pdf",
    "6/6": "manifest and zip",
}


# --------------------------------------------------------------------------------------- the database


class BenchInfluxd(Influxd):
    """testkit's InfluxDB 1.6 with deploy/influxdb's index, and cold shards compacted within a minute.

    A real half-year of history is fully compacted (the default is after 4 h without writes); the
    benchmark times that state, not the level-1 files a fresh bulk write leaves.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, database=DATABASE)
        text = self.config_path.read_text()
        extra = (
            '  index-version = "tsi1"\n'
            '  compact-full-write-cold-duration = "30s"\n'
            '  cache-snapshot-write-cold-duration = "10s"\n'
        )
        self.config_path.write_text(text.replace("[data]\n", "[data]\n" + extra, 1))

    def raw_default_policy(self) -> None:
        """deploy/README.md's `raw` policy (400 days: 7-day shards) as the default, once."""
        rows = self.rows("SHOW RETENTION POLICIES")
        if not any(r.get("name") == "raw" for r in rows):
            self.query(f'CREATE RETENTION POLICY "raw" ON "{DATABASE}" DURATION 400d REPLICATION 1 DEFAULT')


def marker_of(db: Influxd) -> dict[str, Any] | None:
    """What a reused database says it holds (None: nothing finished)."""
    try:
        rows = db.rows(f'SELECT * FROM "{MARKER}"')
    except RuntimeError:
        return None
    return rows[-1] if rows else None


def wanted_marker(plan: Plan) -> dict[str, Any]:
    return {"dataset": DATASET_VERSION, "start": plan.start.isoformat(), "days": float(plan.days)}


@dataclass
class WriteStats:
    points: int = 0
    bytes: int = 0
    seconds: float = 0.0
    generate_s: float = 0.0
    posts: int = 0


def post(url: str, body: bytes) -> None:
    req = urllib.request.Request(f"{url}/write?db={DATABASE}&precision=s", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=600) as resp:
        if resp.status != 204:
            raise RuntimeError(f"/write answered {resp.status}: {resp.read()[:300]!r}")


def write_dataset(db: Influxd, site: SiteConfig, plan: Plan, posters: int = 2) -> WriteStats:
    """Generate the period and POST it in batches: the main thread generates, `posters` threads send."""
    stats = WriteStats()
    batches: queue.Queue[bytes | None] = queue.Queue(maxsize=2 * posters)
    failed: list[BaseException] = []

    def poster() -> None:
        while (body := batches.get()) is not None:
            try:
                if not failed:
                    post(db.url, body)
            except BaseException as exc:
                failed.append(exc)

    threads = [threading.Thread(target=poster, name=f"poster-{i}") for i in range(posters)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    pending: list[str] = []
    source = lines(site, plan)
    try:
        while True:
            t0 = time.perf_counter()
            device_day = next(source, None)
            if device_day is not None:
                pending.extend(device_day)
            chunks: list[bytes] = []
            while len(pending) >= BATCH or (device_day is None and pending):
                chunk, pending = pending[:BATCH], pending[BATCH:]
                chunks.append("\n".join(chunk).encode())
                stats.points += len(chunk)
            stats.generate_s += time.perf_counter() - t0
            for body in chunks:
                stats.bytes += len(body)
                stats.posts += 1
                batches.put(body)
                if stats.posts % 100 == 0:
                    rate = stats.points / (time.perf_counter() - began)
                    print(f"    … {stats.points:,} points, {rate:,.0f} points/s", flush=True)
            if failed:
                raise failed[0]
            if device_day is None:
                break
    finally:
        for _ in threads:
            batches.put(None)
        for t in threads:
            t.join()
    if failed:
        raise failed[0]
    stats.seconds = time.perf_counter() - began
    return stats


def write_marker(db: Influxd, plan: Plan, stats: WriteStats) -> None:
    m = wanted_marker(plan)
    fields = f'dataset="{m["dataset"]}",start="{m["start"]}",days={m["days"]},points={float(stats.points)}'
    ts = int(plan.local(plan.start).timestamp())
    post(db.url, f"{MARKER},site=bench {fields} {ts}".encode())


def wait_idle(pid: int, min_s: float, limit_s: float = 1800.0) -> float:
    """Wait at least `min_s` (shards turn cold 30 s after their last write), then until influxd is done
    compacting (under 5 % of a core for 3 s running); seconds waited."""
    proc = psutil.Process(pid)
    began = time.monotonic()
    time.sleep(min_s)
    proc.cpu_percent(None)
    quiet = 0
    while time.monotonic() - began < limit_s:
        quiet = quiet + 1 if proc.cpu_percent(interval=1.0) < 5.0 else 0
        if quiet >= 3:
            break
    return time.monotonic() - began


# --------------------------------------------------------------------------------- what roomguard sends


@dataclass(frozen=True)
class Request:
    """One /query request as roomguard's client sent it: form fields, statements, seconds it took."""

    form: dict[str, str]
    statements: tuple[str, ...]
    seconds: float


class RecordingInfluxQL(InfluxQL):
    """roomguard's client, noting the form of every request it sends (and how long it took)."""

    log: ClassVar[list[Request]] = []

    async def _results(self, q: str, params: Params | None, statements: list[str]) -> list[list[Series]]:
        form = self._form(q, params, None)
        t0 = time.perf_counter()
        out = await super()._results(q, params, statements)
        RecordingInfluxQL.log.append(Request(form, tuple(statements), time.perf_counter() - t0))
        return out


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


class RssPeak:
    """The peak RSS (bytes) of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.before = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.02)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def records_db(folder: Path, site: SiteConfig, plan: Plan) -> tuple[Records, int]:
    """A migrated SQLite records DB holding the period's records; how many records."""
    engine = make_engine(folder / "records.db")
    upgrade(engine)
    db = Records(session_factory(engine))
    n = 0
    for when, items in records(site, plan):
        db.put_all(items, WHO, when)
        n += len(items)
    for when, results in check_results(plan):
        db.save_results(results, when)
    return db, n


@dataclass
class PackRun:
    seconds: float
    size: int
    rss_before: int
    rss_peak: int
    steps: list[tuple[str, float]]
    requests: list[Request]


async def run_pack(site: SiteConfig, db: Records, start: datetime, end: datetime, target: Path) -> PackRun:
    """build_pack of the period, timed, its InfluxDB requests noted, its RSS sampled."""
    marks: list[tuple[float, str]] = []

    def progress(msg: str) -> None:
        marks.append((time.perf_counter(), msg))

    RecordingInfluxQL.log = []
    with patched(pack_module, "InfluxQL", RecordingInfluxQL), RssPeak() as rss:
        t0 = time.perf_counter()
        await build_pack(
            site, db, start, end, target, prepared_by="林主任", progress=progress, now=end + timedelta(days=1)
        )
        seconds = time.perf_counter() - t0
    size = (await asyncio.to_thread(target.stat)).st_size
    heads = [(t, STEPS.get(m.split(" ", 1)[0], m)) for t, m in marks if m[:1].isdigit()]
    steps = [
        (m, (heads[i + 1][0] if i + 1 < len(heads) else t0 + seconds) - t) for i, (t, m) in enumerate(heads)
    ]
    return PackRun(seconds, size, rss.before, rss.peak, steps, RecordingInfluxQL.log)


# ------------------------------------------------------------------------------------------- the peer


def raw_query(url: str, form: Mapping[str, str]) -> dict[str, Any]:
    """One /query POST with plain urllib, the answer read and decoded (errors raised)."""
    body = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(f"{url}/query", data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Accept", "application/json")
    with urllib.request.urlopen(req, timeout=3600) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    errors = [r["error"] for r in doc.get("results", []) if "error" in r]
    if "error" in doc or errors:
        raise RuntimeError(f"raw query failed: {doc.get('error') or errors}")
    return doc


def replay(url: str, forms: Sequence[Mapping[str, str]], workers: int = 1) -> float:
    """Seconds to send every request (in order, or `workers` at a time) and read every answer."""
    t0 = time.perf_counter()
    if workers == 1:
        for form in forms:
            raw_query(url, form)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda f: raw_query(url, f), forms))
    return time.perf_counter() - t0


def statement_labels(site: SiteConfig) -> dict[str, str]:
    """What each statement roomguard sends is for."""
    rec, allow = site_envelopes(site)
    n = len(site.compliance.environment.exclude_devices)
    labels = {
        stats_statement(n): "stats: count/sum/min/max per room-day",
        paired_statement(n): "paired count (temp and RH)",
        counts_statement(n): "sample counts (are the kept days current?)",
    }
    for i, env in enumerate((rec, allow)):
        temp, hum, both = share_statements(i, env, n)
        labels[temp] = f"{env.name}: dry bulb (plain WHERE)"
        labels[hum] = f"{env.name}: humidity (dew-point subquery)"
        labels[both] = f"{env.name}: both (dew-point subquery)"
    return labels


def per_statement(url: str, requests: Sequence[Request], labels: Mapping[str, str]) -> dict[str, float]:
    """Seconds per kind of statement, each statement sent alone with its request's parameters."""
    out: dict[str, float] = {}
    for r in requests:
        for s in r.statements:
            form = {**r.form, "q": s}
            t0 = time.perf_counter()
            raw_query(url, form)
            label = labels.get(s, s[:60])
            out[label] = out.get(label, 0.0) + time.perf_counter() - t0
    return out


async def profiled_pack(site: SiteConfig, db: Records, start: datetime, end: datetime, target: Path) -> str:
    """cProfile of build_pack with its asyncio.to_thread steps run inline (so the profiler sees them)."""

    async def inline(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    prof = cProfile.Profile()
    with patched(asyncio, "to_thread", inline):
        prof.enable()
        await build_pack(site, db, start, end, target, prepared_by="林主任", now=end + timedelta(days=1))
        prof.disable()
    text = io.StringIO()
    st = pstats.Stats(prof, stream=text)
    st.sort_stats("cumulative").print_stats(28)
    st.sort_stats("tottime").print_stats(15)
    return text.getvalue()


# ------------------------------------------------------------------------------------------------ main


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:62} {value:>12}" + (f"   {note}" if note else ""), flush=True)


def du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def prepare(db: BenchInfluxd, db_dir: Path, site: SiteConfig, plan: Plan) -> None:
    """The dataset in the database: reused when the marker says it is there, else (re)written."""
    held = marker_of(db)
    if held is not None and all(held.get(k) == v for k, v in wanted_marker(plan).items()):
        row(f"points in InfluxDB (reused: {db_dir})", f"{int(held['points']):,}")
        settle = 5.0
    else:
        if held is not None:
            db.query(f'DROP DATABASE "{DATABASE}"', database=None)
            db.create_database(DATABASE)
            db.raw_default_policy()
        print("  writing the dataset …", flush=True)
        stats = write_dataset(db, site, plan)
        write_marker(db, plan, stats)
        row(
            f"points written, {BATCH:,} lines per POST, precision s",
            f"{stats.points:,}",
            f"{stats.points / stats.seconds:,.0f} points/s ({stats.seconds:.0f} s, "
            f"{stats.bytes / 2**30:.1f} GiB; generating them took {stats.generate_s:.0f} s of it)",
        )
        settle = 45.0
    assert db.pid is not None
    waited = wait_idle(db.pid, settle)
    row("influxd idle (cold shards fully compacted) after", f"{waited:.0f} s", f"data {du(db_dir):.2f} GiB")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def pack_rows(label: str, pack: PackRun, raw: float, target_s: float | None) -> None:
    """A pack's time beside InfluxDB's for its requests (and the 60 s target), its steps, its memory."""
    ratio = pack.seconds / raw if raw else float("nan")
    note = f"pack/raw = {ratio:.2f} (target <= {TARGET_RATIO:g}: {verdict(ratio <= TARGET_RATIO)})"
    if target_s is not None:
        note += f", under {target_s:.0f} s: {verdict(pack.seconds < target_s)}"
    row(label, f"{pack.seconds:.2f} s", note)
    for name, secs in pack.steps:
        row(f"  {name}", f"{secs:.2f} s")
    row(
        "  peak RSS (sampled every 20 ms)",
        mb(pack.rss_peak),
        f"before it {mb(pack.rss_before)}; zip {pack.size / 1e6:.1f} MB",
    )


def main() -> None:
    """Write (or reuse) the half-year; time the pack cold and with kept days, each beside raw InfluxDB."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=183, help="length of the period (from --start)")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 6, 1), help="first local day")
    ap.add_argument("--reuse", type=Path, metavar="DIR", help="keep the InfluxDB in DIR and reuse its data")
    ap.add_argument("--profile", action="store_true", help="time each statement, cProfile the pack")
    args = ap.parse_args()
    for k, v in SECRETS.items():
        os.environ.setdefault(k, v)
    plan = Plan(args.start, args.days, TZ)
    start, end = plan.local(plan.start), plan.local(plan.start + timedelta(days=args.days))
    work = Path(tempfile.mkdtemp(prefix="roomguard-bench-compliance-"))
    db_dir = args.reuse / "influxd" if args.reuse else work / "influxd"
    db = BenchInfluxd(db_dir)
    db.start()
    try:
        assert db.pid is not None
        db.raw_default_policy()
        site_path, _ = example_site(
            work / "site.yaml", influxdb=f"influxdb:\n  url: {db.url}\n  api: v1\n  database: {DATABASE}\n"
        )
        site = load_site(site_path)
        last = plan.start + timedelta(days=args.days - 1)
        print(
            f"Evidence pack of {site.site.id}, {plan.start} to {last} ({TZ.key}, {args.days} days), "
            f"every device at a {POLL_S} s poll:",
            flush=True,
        )
        prepare(db, db_dir, site, plan)
        folder = work / "records"
        folder.mkdir()
        records_store, n_records = records_db(folder, site, plan)

        # 1. Cold: no day kept yet (a new install, or the first report after a rebuild from history).
        cold = asyncio.run(run_pack(site, records_store, start, end, work / "out" / "cold.zip"))
        influx = psutil.Process(db.pid)
        cpu0 = sum(influx.cpu_times()[:2])
        with RssPeak(db.pid) as influx_rss:
            raw_cold = replay(db.url, [r.form for r in cold.requests], workers=CONCURRENCY)
        influx_cpu = sum(influx.cpu_times()[:2]) - cpu0
        # 2. Kept: the same pack again, every ended day measured before (what the process keeps ready).
        warm = asyncio.run(run_pack(site, records_store, start, end, work / "out" / "warm.zip"))
        raw_warm = replay(db.url, [r.form for r in warm.requests], workers=CONCURRENCY)
        same = member_bytes(work / "out" / "cold.zip", "environment.xlsx") == member_bytes(
            work / "out" / "warm.zip", "environment.xlsx"
        )
        statements = sum(len(r.statements) for r in cold.requests)
        room_days = len(records_store_days(records_store))

        row(
            f"InfluxDB alone, cold: the pack's {len(cold.requests)} requests ({statements} statements), "
            f"urllib, {CONCURRENCY} at a time",
            f"{raw_cold:.2f} s",
            f"influxd {influx_cpu / raw_cold:.2f} cores busy, peak RSS {mb(influx_rss.peak)}",
        )
        pack_rows(f"roomguard evidence pack, cold ({n_records} records)", cold, raw_cold, None)
        env_s = dict(cold.steps).get(STEPS["3/6"], cold.seconds)
        row(
            f"  room-days measured and kept ({args.days} days)",
            f"{room_days:,}",
            f"{env_s / max(1, args.days):.2f} s per day: what the process spends on yesterday each night",
        )
        row(
            f"InfluxDB alone, kept days: the pack's {len(warm.requests)} request(s), urllib",
            f"{raw_warm:.2f} s",
        )
        pack_rows("roomguard evidence pack, days kept", warm, raw_warm, TARGET_S)
        print(f"  environment.xlsx of both packs: {'identical' if same else 'DIFFERENT'}", flush=True)
        if args.profile:
            profile(db, site, cold, records_store, start, end, work)
    finally:
        db.stop()
        shutil.rmtree(work, ignore_errors=True)


def member_bytes(zip_path: Path, name: str) -> bytes:
    """One member of a pack (by file name)."""
    with zipfile.ZipFile(zip_path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith(name)))


def records_store_days(db: Records) -> list[Any]:
    """Every kept room-day of the records database."""
    with db.sessions() as s:
        return list(s.scalars(select(EnvelopeDayRow.id)).all())


def profile(
    db: BenchInfluxd,
    site: SiteConfig,
    cold: PackRun,
    records_store: Records,
    start: datetime,
    end: datetime,
    work: Path,
) -> None:
    """Where the time goes: each statement alone, summed; cProfile of the pack with kept days."""
    print("Profile: each statement of the cold pack alone, summed over its requests (raw urllib):")
    times = per_statement(db.url, cold.requests, statement_labels(site))
    total = sum(times.values())
    for label, secs in sorted(times.items(), key=lambda x: -x[1]):
        print(f"    {label:50} {secs:8.2f} s  {100 * secs / total:5.1f} %")
    print("Profile: cProfile of build_pack with the days kept (worker-thread steps inline):")
    print(asyncio.run(profiled_pack(site, records_store, start, end, work / "out" / "pack2.zip")))


if __name__ == "__main__":
    main()
