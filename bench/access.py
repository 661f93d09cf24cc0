"""Access-rights benchmark: a quarter of 5,000 people, 20,000 grants and 1,000,000 badge events.

    .venv/bin/python -m bench.access [--people 5000] [--grants 20000] [--events 1000000] [--keep DIR]
                                     [--decisions 10] [--profile]

All from one run, in this process, over a fresh SQLite records DB (records.migrate.upgrade):
1. generates the quarter (2026Q4, Asia/Taipei) as the generic CSV files, seeded (bench/access_data.py:
   employees, 24x7 operations staff, guards, contractors, vendors ~3 %, leavers; ~4 grants each with
   planted defects; badge visits inside each card's schedule); timed, not a target. With `--keep DIR`
   the files, the DB and the export stay in DIR, and files of the same sizes and dataset are reused;
2. import: parse_holders/parse_grants/parse_badges, then AccessStore.put_holders/put_grants (one
   audited row each) and add_badges (one audit entry), each timed with its rows/s. Peers from the same
   run: csv.reader reading badges.csv alone; sqlite3 executemany of the same Badge values (converted
   inside the timing) into a bare table, and into one with access_badges' unique key and indexes;
3. flags: the store's holders, grants and the period's badge events loaded (peer: plain sqlite3 reading
   the same rows into the same Badge values), then grant_flags over every grant, at the snapshot
   (2027-01-04 09:00). Peer: one pure-Python pass grouping the granted events by credential and by
   door, each sorted by time: the work grant_flags does before its first flag (its `Uses`), alone;
4. review: start_review of 2026Q4 (loads, flags, snapshots every grant in force, stores it, audited),
   `--decisions` single audited AccessStore.decide calls, decide_many for the rest (the unflagged kept,
   the flagged kept or revoked), sign_off, then export_review of the signed review into a fresh
   folder: the XLSX, the CSVs, the PDF and MANIFEST.sha256, with the time of each part and the files'
   sizes. Peer: openpyxl in write-only mode writing the same cells (the XLSX's tables, every cell as
   its text) into one XLSX;
5. the peak RSS of this process in each step, sampled every 20 ms (and the RSS before it), and the CPU
   time of the process in it beside its wall time (how much a busy machine took away).
Targets: the flag computation under 10 s; the export under 60 s. `--profile` adds a cProfile of
grant_flags and of the export.

Measured on a 2-core box (23 GB, Python 3.11), the full quarter (19,659 grants in force, 3,370 of the
20,000 flagged: 2,176 DORMANT_90D, 300 NO_APPROVAL, 291 SELF_APPROVED, 279 SHARED_CARD, 198
EXPIRED_ACTIVE, 194 AFTER_HOURS, 122 LEAVER_ACTIVE, 32 UNESCORTED_VENDOR, 30 VENDOR_NO_WORK_ORDER), run A
beside a test suite, run B alone:

                                                                        run A                 run B
    parse_badges, 1,000,000 rows / csv.reader alone                  12.2 / 4.2 s          12.0 / 3.7 s
    put_holders + put_grants, 25,000 audited rows                      5.3 s                 6.9 s
    add_badges / sqlite3 executemany, same keys / bare table   38.0 / 27.5 / 10.2 s  43.1 / 26.3 / 12.1 s
    AccessStore.badges, 1,000,000 / plain sqlite3                     8.3 / 11.3 s         10.2 / 10.7 s
    grant_flags (target < 10 s: met) / the grouping alone             6.5 / 3.7 s           6.8 / 2.7 s
    start_review (load 9.7 / 10.0 s, review_lines 7.8 / 7.9 s)       21.6 s                21.5 s
    AccessStore.decide, one / decide_many, the other 19,649         0.030 / 31.3 s        0.036 / 28.0 s
    sign_off (every line decided)                                     3.8 s                 3.4 s
    export_review of the signed review (target < 60 s: met)          42.4 s                37.4 s
      XLSX / PDF (442 pages) / CSVs                           18.8 / 16.4 / 2.3 s   15.5 / 15.1 / 1.7 s
      openpyxl write-only, the same 730,309 cells as text             14.7 s                10.8 s
    peak RSS, MB: parse / store / flags / review / export      380/550/321/439/439   375/550/321/439/439

Before this round (the same data, a busier box): parse_badges 46-56 s at 2.3 GB, put_holders+grants
65-70 s, grant_flags 15.2-20.5 s, start_review 47 s, a decision 3.2 s (each rewrote the review's JSON),
export 65-69 s. What changed: the flags compare every time in UTC over one index built per credential
(comparing aware datetimes of different zones computed offsets on every comparison); badges.csv is
read with csv.reader and cached converters (the generic per-row model only for a row it cannot read);
holders and grants are written in one pass with one audit batch (records.audit.append_many);
decisions are rows of their own; the PDF draws a cell that fits its line as a plain string, and the
XLSX is written in openpyxl's write-only mode.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import io
import json
import pstats
import shutil
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any

from openpyxl import Workbook

import compliance.access.export as export_module
import compliance.access.service as service_module
from bench.access_data import DATASET_VERSION, TZ, Dataset, Spec, generate
from bench.compliance import RssPeak, mb, patched, row, verdict
from compliance.access.flags import FLAG_CODES, grant_flags
from compliance.access.importing import parse_badges, parse_grants, parse_holders
from compliance.access.model import Badge
from compliance.access.review import Review, review_lines
from compliance.access.service import export_review, flag_rules, start_review
from compliance.access.store import AccessStore
from compliance.export import write_csv, write_manifest, write_workbook
from compliance.export.tables import cell_text
from compliance.export.xlsx import sheet_titles
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade
from siteconfig.compliance_config import AccessRules

TARGET_FLAGS_S = 10.0
TARGET_EXPORT_S = 60.0
SITE_ID = "tpe-hq"
SITE_NAME = "台北總部機房 Taipei HQ machine room"
COMPANY = "範例證券 Example Securities"
IMPORTER = Actor("門禁管理員 許", "bench:access")
REVIEWER = Actor("稽核 林", "bench:access")
BADGE_COLUMNS = "at, door, zone, credential_id, granted, direction"


# ------------------------------------------------------------------------------------------------ timing


class Parts:
    """Seconds spent in named callables while a step runs (wrappers installed with `patched`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0

        return wrapper


class Step:
    """A step's peak RSS (sampled; after a collection, so `before` is what it starts from), its wall
    time and the CPU time of this process in it (less than the wall time: the machine was busy)."""

    def __init__(self) -> None:
        gc.collect()
        self.rss = RssPeak()
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Step:
        self.rss.__enter__()
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._t0, time.process_time() - self._c0
        self.rss.__exit__(*exc)


def rss_row(st: Step, note: str = "") -> None:
    row(
        "  peak RSS (sampled every 20 ms)",
        mb(st.rss.peak),
        f"before it {mb(st.rss.before)}; process CPU {st.cpu:.1f} s in {st.wall:.1f} s"
        + (f"; {note}" if note else ""),
    )


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} rows/s" if seconds > 0 else ""


def secs(s: float) -> str:
    return f"{s:.2f} s"


def size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


# ----------------------------------------------------------------------------------------------- dataset


def dataset(folder: Path, spec: Spec, keep: bool) -> tuple[Dataset, float | None]:
    """The CSVs of `spec` in `folder`: reused when a kept folder holds them, else generated (seconds)."""
    marker = folder / "dataset.json"
    wanted = {"dataset": DATASET_VERSION, **asdict(spec)}
    if keep and marker.is_file():
        held = json.loads(marker.read_text())
        files = [Path(held["files"][k]) for k in ("holders", "grants", "badges")]
        if held.get("spec") == wanted and all(
            p.is_file() and p.stat().st_size == n for p, n in zip(files, held["sizes"], strict=True)
        ):
            ds = held["summary"]
            return Dataset(
                files[0],
                files[1],
                files[2],
                ds["people"],
                ds["grants"],
                ds["credentials"],
                ds["events"],
                ds["granted_events"],
                ds["planted"],
            ), None
    t0 = time.perf_counter()
    ds = generate(folder, spec)
    seconds = time.perf_counter() - t0
    files = [ds.holders, ds.grants, ds.badges]
    summary = {
        "people": ds.people,
        "grants": ds.grant_count,
        "credentials": ds.credentials,
        "events": ds.events,
        "granted_events": ds.granted_events,
        "planted": ds.planted,
    }
    marker.write_text(
        json.dumps(
            {
                "spec": wanted,
                "files": {k: str(p) for k, p in zip(("holders", "grants", "badges"), files, strict=True)},
                "sizes": [p.stat().st_size for p in files],
                "summary": summary,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return ds, seconds


# ------------------------------------------------------------------------------------------------- peers


def csv_read(path: Path) -> tuple[int, float]:
    """Rows and seconds of csv.reader reading the file (decoded as the importer does: utf-8-sig)."""
    t0 = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    return len(rows) - 1, time.perf_counter() - t0


def sqlite_insert(path: Path, badges: Sequence[Badge], indexed: bool) -> float:
    """Seconds to write the Badge values with plain sqlite3 executemany, as SQLAlchemy stores them.

    Same file settings as records.db (WAL, synchronous NORMAL), one transaction, the times converted to
    naive UTC text inside the timing; `indexed`: access_badges' unique key and two indexes as well.
    """
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute(
        "CREATE TABLE badges (id INTEGER PRIMARY KEY, at DATETIME NOT NULL, door VARCHAR(200) NOT NULL, "
        "zone VARCHAR(200) NOT NULL, credential_id VARCHAR(200) NOT NULL, granted BOOLEAN NOT NULL, "
        "direction VARCHAR(16) NOT NULL"
        + (", CONSTRAINT badge_once UNIQUE (at, door, credential_id, direction))" if indexed else ")")
    )
    if indexed:
        con.execute("CREATE INDEX ix_at ON badges (at)")
        con.execute("CREATE INDEX ix_credential ON badges (credential_id)")
    verb = "INSERT OR IGNORE" if indexed else "INSERT"
    t0 = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        f"{verb} INTO badges ({BADGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                b.at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds"),
                b.door,
                b.zone,
                b.credential_id,
                b.granted,
                b.direction,
            )
            for b in badges
        ),
    )
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def sqlite_read(path: Path, since: datetime, until: datetime) -> tuple[int, float]:
    """Rows and seconds of plain sqlite3 reading the period's events into Badge values, by time."""
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    lo = since.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    hi = until.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    fromiso = datetime.fromisoformat
    out = [
        Badge(fromiso(at).replace(tzinfo=UTC), door, zone, cred, bool(granted), direction)
        for at, door, zone, cred, granted, direction in con.execute(
            f"SELECT {BADGE_COLUMNS} FROM access_badges WHERE at >= ? AND at < ? ORDER BY at", (lo, hi)
        )
    ]
    con.close()
    return len(out), time.perf_counter() - t0


def group_pass(events: Sequence[Badge], now: datetime) -> float:
    """Seconds of grouping the granted events by credential and by door, each sorted by time."""
    t0 = time.perf_counter()
    by_credential: dict[str, list[Badge]] = defaultdict(list)
    by_door: dict[str, list[Badge]] = defaultdict(list)
    for e in events:
        if e.granted and e.at <= now:
            by_credential[e.credential_id].append(e)
            by_door[e.door].append(e)
    key = attrgetter("at")
    for lst in (*by_credential.values(), *by_door.values()):
        lst.sort(key=key)
    return time.perf_counter() - t0


def openpyxl_cells(review: Review, path: Path) -> tuple[int, float]:
    """Cells and seconds of openpyxl (write-only) writing the export's tables, every cell as its text."""
    tables = export_module.review_tables(review, site_name=SITE_NAME, company=COMPANY, tz=TZ)
    sheets = [
        [
            [c.zh for c in t.columns],
            [c.en for c in t.columns],
            *([cell_text(v, TZ) for v in t.cells(r)] for r in t.rows),
        ]
        for t in tables
    ]
    cells = sum(len(r) for s in sheets for r in s)
    t0 = time.perf_counter()
    wb = Workbook(write_only=True)
    for title, rows in zip(sheet_titles(tables), sheets, strict=True):
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return cells, time.perf_counter() - t0


def profile_of(fn: Callable[[], Any], lines: int = 22) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    text = io.StringIO()
    st = pstats.Stats(prof, stream=text)
    st.sort_stats("cumulative").print_stats(lines)
    st.sort_stats("tottime").print_stats(lines)
    return text.getvalue()


# -------------------------------------------------------------------------------------------------- main


def main() -> None:
    """Generate the quarter, import it, flag it, review and export it: each step timed beside its peer."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=5_000)
    ap.add_argument("--grants", type=int, default=20_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep (and reuse) the files, DB and export here")
    ap.add_argument("--decisions", type=int, default=10, help="audited decisions timed (default 10)")
    ap.add_argument("--profile", action="store_true", help="cProfile grant_flags and the export")
    args = ap.parse_args()
    spec = Spec(args.people, args.grants, args.events)
    work = args.keep or Path(tempfile.mkdtemp(prefix="roomguard-bench-access-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(spec, work, args.keep is not None, args.decisions, args.profile)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(spec: Spec, work: Path, keep: bool, n_decisions: int, profile: bool) -> None:
    quarter, now = spec.period, spec.now
    rules = flag_rules(AccessRules())
    print(
        f"Access rights of {SITE_ID}, {quarter.label} ({TZ.key}), snapshot {now:%Y-%m-%d %H:%M}: "
        f"{spec.people:,} people, {spec.grants:,} grants, {spec.events:,} badge events (seed {spec.seed})",
        flush=True,
    )

    # 1. The files.
    with Step() as st:
        ds, gen_s = dataset(work / "csv", spec, keep)
    people = ", ".join(f"{n:,} {k}" for k, n in sorted(ds.people.items(), key=lambda x: -x[1]))
    row(
        "generated holders.csv, grants.csv, badges.csv (not a target)",
        secs(gen_s) if gen_s is not None else "reused",
        f"{size(ds.holders)} / {size(ds.grants)} / {size(ds.badges)}",
    )
    row("  people", f"{sum(ds.people.values()):,}", people)
    row("  grants / credentials", f"{ds.grant_count:,}", f"{ds.credentials:,} credentials")
    row("  badge events / let in", f"{ds.events:,}", f"{ds.granted_events:,} let in")
    print("  planted: " + "; ".join(f"{k} {v:,}" for k, v in ds.planted.items()), flush=True)
    if gen_s is not None:
        rss_row(st)

    # 2. Import into a fresh records DB.
    db_path = work / "records.db"
    for p in work.glob("*.db*"):
        p.unlink()
    engine = make_engine(db_path)
    upgrade(engine)
    store = AccessStore(session_factory(engine))
    imported_at = now - timedelta(hours=1)
    print("Import (the generic CSV format into the records DB):", flush=True)
    with Step() as st:
        t0 = time.perf_counter()
        holders = parse_holders(ds.holders, TZ)
        grant_rows = parse_grants(ds.grants, TZ)
        hg_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        badges = parse_badges(ds.badges, TZ)
        parse_s = time.perf_counter() - t0
    row("parse_holders + parse_grants", secs(hg_s), rate(len(holders) + len(grant_rows), hg_s))
    row(f"parse_badges ({len(badges):,} rows)", secs(parse_s), rate(len(badges), parse_s))
    rss_row(st, "the parse of the three files")
    rows_read, csv_s = csv_read(ds.badges)
    row("  peer: csv.reader reading badges.csv alone", secs(csv_s), rate(rows_read, csv_s))
    with Step() as st:
        t0 = time.perf_counter()
        hc = store.put_holders(holders, IMPORTER, imported_at)
        gc_ = store.put_grants([g.grant for g in grant_rows], IMPORTER, imported_at)
        put_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = store.add_badges(badges, IMPORTER, imported_at, ds.badges.name)
        add_s = time.perf_counter() - t0
    row(
        "put_holders + put_grants (a row and an audit entry each)",
        secs(put_s),
        f"{rate(hc.created + gc_.created, put_s)}; {hc.created:,} + {gc_.created:,} created",
    )
    row(f"AccessStore.add_badges ({new:,} new)", secs(add_s), rate(len(badges), add_s))
    rss_row(st)
    bare_s = sqlite_insert(work / "peer-bare.db", badges, indexed=False)
    keyed_s = sqlite_insert(work / "peer-keyed.db", badges, indexed=True)
    row("  peer: sqlite3 executemany, bare table", secs(bare_s), rate(len(badges), bare_s))
    row(
        "  peer: sqlite3 executemany, with the unique key + 2 indexes",
        secs(keyed_s),
        f"{rate(len(badges), keyed_s)}; add_badges / this = {add_s / keyed_s:.2f}",
    )
    total_import = hg_s + parse_s + put_s + add_s
    n_rows = len(badges) + len(holders) + len(grant_rows)
    row("import in all (parse + store)", secs(total_import), rate(n_rows, total_import))
    del badges, holders, grant_rows
    for p in work.glob("peer-*.db*"):
        p.unlink()

    # 3. Flags.
    since = min(quarter.start, now - timedelta(days=rules.dormant_days + 1))
    until = max(now, quarter.end)
    print(f"Flags (every grant, at the snapshot, over the events of {since:%Y-%m-%d} .. {until:%Y-%m-%d}):")
    with Step() as st:
        t0 = time.perf_counter()
        held = store.holders()
        grants = store.grants()
        hg_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        events = store.badges(since, until)
        load_s = time.perf_counter() - t0
    row("AccessStore.holders() + grants()", secs(hg_load), f"{len(held):,} + {len(grants):,}")
    row(f"AccessStore.badges(since, until) ({len(events):,})", secs(load_s), rate(len(events), load_s))
    rss_row(st)
    read_n, read_s = sqlite_read(db_path, since, until)
    row(
        "  peer: plain sqlite3 reading the same rows into Badge values",
        secs(read_s),
        f"{rate(read_n, read_s)}; store / this = {load_s / read_s:.2f}",
    )
    with Step() as flags_step:
        t0 = time.perf_counter()
        found = grant_flags(held, grants, events, now, TZ, rules)
        flags_s = time.perf_counter() - t0
    row(
        f"grant_flags ({len(grants):,} grants, {len(events):,} events)",
        secs(flags_s),
        f"target < {TARGET_FLAGS_S:.0f} s: {verdict(flags_s < TARGET_FLAGS_S)}",
    )
    rss_row(flags_step)
    group_s = group_pass(events, now)
    row(
        "  peer: group by credential and door, sorted (one pass)",
        secs(group_s),
        f"grant_flags / this = {flags_s / group_s:.1f}",
    )
    per_code = Counter(f.code for fl in found.values() for f in fl)
    flagged = sum(1 for fl in found.values() if fl)
    row("  grants flagged", f"{flagged:,}", f"of {len(found):,}; {sum(per_code.values()):,} flags")
    for code in FLAG_CODES:
        row(f"    {code}", f"{per_code[code]:,}")
    if profile:
        print("Profile: cProfile of grant_flags:")
        print(profile_of(partial(grant_flags, held, grants, events, now, TZ, rules)))
    del events, found

    # 4. The review: start, decisions, export.
    print(f"Review of {quarter.label} (start_review, audited decisions, export_review):", flush=True)
    parts = Parts()
    with (
        Step() as st,
        patched(store, "badges", parts.timed("load events", store.badges)),
        patched(
            service_module, "review_lines", parts.timed("review_lines (flags, use, change)", review_lines)
        ),
        patched(store, "start", parts.timed("store the review (JSON + audit)", store.start)),
    ):
        t0 = time.perf_counter()
        review = start_review(store, SITE_ID, quarter.label, "稽核 林", REVIEWER, now, TZ, rules)
        start_s = time.perf_counter() - t0
    lines_flagged = sum(1 for ln in review.lines if ln.flags)
    row(
        f"start_review ({len(review.lines):,} grants in force in the quarter)",
        secs(start_s),
        f"{lines_flagged:,} flagged; {review.review_id}",
    )
    for name, s in parts.seconds.items():
        row(f"  {name}", secs(s))
    rss_row(st)

    chosen = [ln for ln in review.lines if ln.flags][: n_decisions // 2]
    chosen += [ln for ln in review.lines if not ln.flags][: n_decisions - len(chosen)]
    times = []
    for k, ln in enumerate(chosen):
        decision, reason = "keep", ""
        if ln.flags:
            decision, reason = (
                ("revoke", "已無業務需要 no longer needed") if k % 2 else ("keep", "已確認 confirmed")
            )
        t0 = time.perf_counter()
        store.decide(
            review.review_id,
            ln.grant.grant_id,
            decision,
            reason,
            "稽核 林",
            REVIEWER,
            now + timedelta(minutes=k),
        )
        times.append(time.perf_counter() - t0)
    if times:
        each = sum(times) / len(times)
        row(f"AccessStore.decide: {len(times)} single audited decisions", f"{each:.3f} s", "each")
    # The rest as a reviewer does them: the unflagged in one go, the flagged ones by decision.
    done = {ln.grant.grant_id for ln in chosen}
    undecided = [ln for ln in review.lines if ln.grant.grant_id not in done]
    flagged_ids = [ln.grant.grant_id for ln in undecided if ln.flags]
    batches = [
        ("keep", "", [ln.grant.grant_id for ln in undecided if not ln.flags]),
        ("keep", "已確認 confirmed", flagged_ids[1::2]),
        ("revoke", "已無業務需要 no longer needed", flagged_ids[::2]),
    ]
    with Step() as st:
        t0 = time.perf_counter()
        decided = sum(
            store.decide_many(review.review_id, ids, decision, reason, "稽核 林", REVIEWER, now)
            for decision, reason, ids in batches
        )
        many_s = time.perf_counter() - t0
    row(f"AccessStore.decide_many: the other {decided:,} in 3 calls", secs(many_s), rate(decided, many_s))
    rss_row(st)
    with Step() as st:
        t0 = time.perf_counter()
        store.sign_off(review.review_id, "資訊長 陳", Actor("資訊長 陳", "bench:access"), now)
        row(
            "AccessStore.sign_off (checks every line, stores the signed review)",
            secs(time.perf_counter() - t0),
        )
    rss_row(st)

    out = work / "export"
    shutil.rmtree(out, ignore_errors=True)
    parts = Parts()
    pdf_parts = parts

    def timed_report(*args: Any, **kwargs: Any) -> Any:
        report = real_report(*args, **kwargs)
        setattr(report, "build", pdf_parts.timed("PDF (reportlab)", report.build))  # noqa: B010
        return report

    real_report = export_module._report
    with (
        Step() as export_step,
        patched(store, "review", parts.timed("read the review (JSON)", store.review)),
        patched(export_module, "review_tables", parts.timed("tables A-F", export_module.review_tables)),
        patched(export_module, "write_workbook", parts.timed("XLSX (openpyxl)", write_workbook)),
        patched(export_module, "write_csv", parts.timed("CSV x6", write_csv)),
        patched(export_module, "_report", timed_report),
        patched(export_module, "write_manifest", parts.timed("MANIFEST.sha256", write_manifest)),
    ):
        t0 = time.perf_counter()
        files = export_review(store, review.review_id, out, site_name=SITE_NAME, company=COMPANY, tz=TZ)
        export_s = time.perf_counter() - t0
    row(
        f"export_review ({len(files)} files)",
        secs(export_s),
        f"target < {TARGET_EXPORT_S:.0f} s: {verdict(export_s < TARGET_EXPORT_S)}",
    )
    for name, s in parts.seconds.items():
        row(f"  {name}", secs(s))
    rss_row(export_step)
    for f in files:
        row(f"  {f.relative_to(out)}", size(f))
    stored = store.review(review.review_id)
    cells, peer_s = openpyxl_cells(stored, work / "peer.xlsx")
    xlsx_s = parts.seconds.get("XLSX (openpyxl)", 0.0)
    ratios = f"our XLSX / this = {xlsx_s / peer_s:.2f}; whole export / this = {export_s / peer_s:.2f}"
    row(f"  peer: openpyxl write-only, the same {cells:,} cells as text", secs(peer_s), ratios)
    print("Targets:", flush=True)
    for what, wall, cpu, target in (
        ("grant_flags", flags_s, flags_step.cpu, TARGET_FLAGS_S),
        ("export_review", export_s, export_step.cpu, TARGET_EXPORT_S),
    ):
        row(f"{what} under {target:.0f} s", secs(wall), f"{verdict(wall < target)} (process CPU {cpu:.1f} s)")
    if profile:
        print("Profile: cProfile of export_review:")
        again = work / "export-profiled"
        shutil.rmtree(again, ignore_errors=True)
        print(
            profile_of(
                lambda: export_review(
                    store, review.review_id, again, site_name=SITE_NAME, company=COMPANY, tz=TZ
                )
            )
        )
    engine.dispose()


if __name__ == "__main__":
    main()
