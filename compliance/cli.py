# ruff: noqa: RUF001, RUF002 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""`roomguard compliance SITE …` and `roomguard audit SITE …`: the CC-16000 board, the records people
keep, the evidence pack, and the audit log's verification."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bus.process import DEFAULT_STATE, StateDir, Verbose, run_jobs, start_logging
from siteconfig.cli import SiteArg, SiteFirst, load_site_or_exit
from siteconfig.config import SiteConfig

compliance_app = typer.Typer(
    cls=SiteFirst,
    help="CC-16000 compliance: the board, records, tests, evidence packs. 實體及環境安全查核。",
    no_args_is_help=True,
)
audit_app = typer.Typer(cls=SiteFirst, help="The hash-chained audit log. 稽核軌跡。", no_args_is_help=True)
ByOption = Annotated[str, typer.Option("--by", help="Who does it (recorded in the audit log).")]
KindArg = Annotated[str, typer.Argument(help="Record kind (roomguard compliance SITE kinds).")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _records(site: SiteConfig, state_dir: Path) -> Any:
    from bus.state_dir import prepare_state_dir
    from compliance.store import Records
    from records.db import make_engine, session_factory
    from records.migrate import upgrade
    from records.site import records_url

    prepare_state_dir(state_dir)
    engine = make_engine(records_url(site, state_dir))
    upgrade(engine)
    return Records(session_factory(engine))


def _actor(by: str) -> Any:
    from records.audit import cli_actor

    return cli_actor(by)


def _kind(name: str) -> Any:
    from compliance.kinds import UnknownKind, kind

    try:
        return kind(name)
    except UnknownKind as exc:
        raise _fail(str(exc)) from None


def _day(text: str | None, tz: ZoneInfo, default: datetime) -> datetime:
    """A day (YYYY-MM-DD) as its local midnight; none: `default`."""
    if text is None:
        return default
    try:
        return datetime.combine(date.fromisoformat(text), time(0), tz)
    except ValueError:
        raise typer.BadParameter(f"got {text!r}; a date YYYY-MM-DD") from None


def _period(since: str | None, until: str | None, tz: ZoneInfo, first: datetime) -> tuple[datetime, datetime]:
    """[start, end) from --from/--to days: --to is inclusive (its next local midnight); defaults `first`
    and today."""
    now = datetime.now(UTC)
    return _day(since, tz, first), _day(until, tz, now) + timedelta(days=1)


def _local(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "—"


@compliance_app.command("serve")
def serve(path: SiteArg, state_dir: StateDir = DEFAULT_STATE, verbose: Verbose = False) -> None:
    """Run the compliance process: evidence from the bus, the board published. 執行查核程序。"""
    from compliance.process import run_compliance

    start_logging(verbose)
    site = load_site_or_exit(path)
    run_jobs([lambda stop: run_compliance(site, state_dir, stop)])


@compliance_app.command("status")
def status(
    path: SiteArg,
    state_dir: StateDir = DEFAULT_STATE,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """The CC-16000 board: item, status, reason, last evidence, next due. 查核看板。"""
    from compliance.board import latest_board

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    lines = latest_board(_records(site, state_dir))
    if as_json:
        typer.echo(json.dumps([line.to_json() for line in lines], ensure_ascii=False, indent=2))
        return
    if not any(line.result for line in lines):
        typer.echo("no results yet: is the compliance process running? 尚無查核結果（查核程序是否執行中？）")
    for line in lines:
        r = line.result
        mark = {"pass": "PASS 通過", "warn": "WARN 注意", "fail": "FAIL 未通過"}.get(
            r.status if r else "", "UNKNOWN 未知"
        )
        typer.echo(f"{line.item.code:<14} {line.item.title_zh}｜{line.item.title_en}")
        typer.echo(f"    {mark}  (as of 評估於 {_local(line.at, tz)})")
        if r:
            typer.echo(f"    {r.reason_zh}\n    {r.reason_en}")
            typer.echo(
                f"    last evidence 最近佐證: {_local(r.last_evidence_at, tz)}"
                f"   next due 下次期限: {_local(r.next_due, tz)}"
            )


@compliance_app.command("kinds")
def kinds() -> None:
    """The record kinds and their fields (zh / en). 紀錄類別。"""
    from compliance.kinds import KINDS, labels

    for name, model in KINDS.items():
        typer.echo(f"{name}: {model.ZH} / {model.EN}")
        for field, zh, en in labels(model):
            required = "*" if model.model_fields[field].is_required() else " "
            typer.echo(f"   {required} {field:<20} {zh} / {en}")


@compliance_app.command("record")
def record(
    path: SiteArg,
    kind_name: KindArg,
    fields: Annotated[list[str], typer.Argument(help="field=value … (field names or zh labels).")],
    by: ByOption,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Record one thing people keep (a duty shift, a vendor visit, a disposal, …). 新增紀錄。"""
    from compliance.importing import RecordImportError, parse_value_rows

    site = load_site_or_exit(path)
    model = _kind(kind_name)
    row: dict[str, str | None] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(f"{item!r}: write field=value, e.g. operator=王小明")
        row[key.strip()] = value
    try:
        (parsed,) = parse_value_rows([row], model, "command line", ZoneInfo(site.site.timezone), first_row=1)
    except RecordImportError as exc:
        raise _fail(str(exc)) from None
    (result,) = _records(site, state_dir).put_all([parsed], _actor(by), datetime.now(UTC))
    typer.echo(f"{result.outcome} {result.kind} {result.ref}")


@compliance_app.command("update")
def update(
    path: SiteArg,
    kind_name: KindArg,
    ref: Annotated[str, typer.Argument(help="The record's key (roomguard compliance SITE list KIND).")],
    fields: Annotated[list[str], typer.Argument(help="field=value … to change (field names or zh labels).")],
    by: ByOption,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Change fields of a record, e.g. the witness of a detected generator test (audited). 更新紀錄。"""
    from compliance.edit import UpdateRefused, update_record
    from compliance.importing import RecordImportError
    from compliance.store import RecordNotFound

    site = load_site_or_exit(path)
    model = _kind(kind_name)
    changes: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(
                f"{item!r}: write field=value with a field of {kind_name}: {', '.join(model.model_fields)}"
            )
        changes[key.strip()] = value
    try:
        result = update_record(
            _records(site, state_dir),
            model,
            ref,
            changes,
            _actor(by),
            datetime.now(UTC),
            ZoneInfo(site.site.timezone),
            source="command line",
        )
    except RecordNotFound:
        raise _fail(f"no {kind_name} record {ref!r}; roomguard compliance {path} list {kind_name}") from None
    except (RecordImportError, UpdateRefused) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{result.outcome} {result.kind} {result.ref}")


@compliance_app.command("import")
def import_records(
    path: SiteArg,
    kind_name: KindArg,
    file: Annotated[Path, typer.Argument(help="CSV or JSON (UTF-8 or Big5).", exists=True, dir_okay=False)],
    by: ByOption,
    encoding: Annotated[str | None, typer.Option(help="Force an encoding (default: detected).")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Import records from a file: all or nothing, errors name row and field. 匯入紀錄，全部或全不。"""
    from compliance.importing import RecordImportError, import_file

    site = load_site_or_exit(path)
    model = _kind(kind_name)
    try:
        parsed = import_file(file, model, tz=ZoneInfo(site.site.timezone), encoding=encoding)
    except RecordImportError as exc:
        raise _fail(str(exc)) from None
    results = _records(site, state_dir).put_all(
        parsed.records, _actor(by), datetime.now(UTC), action="import"
    )
    counts = {o: sum(r.outcome == o for r in results) for o in ("created", "updated", "unchanged")}
    typer.echo(
        f"{file.name} ({parsed.encoding}): {parsed.rows} rows; created {counts['created']}, "
        f"updated {counts['updated']}, unchanged {counts['unchanged']} "
        f"新增 {counts['created']}、更新 {counts['updated']}、未變 {counts['unchanged']}"
    )


@compliance_app.command("list")
def list_records(
    path: SiteArg,
    kind_name: KindArg,
    since: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Records of one kind (JSON lines). 列出紀錄。"""
    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    model = _kind(kind_name)
    start, end = _period(since, until, tz, datetime(1970, 1, 1, tzinfo=UTC))
    for r in _records(site, state_dir).of_kind(model, since=start, until=end):
        typer.echo(json.dumps({"ref": r.ref(), **r.model_dump(mode="json")}, ensure_ascii=False))


@compliance_app.command("void")
def void(
    path: SiteArg,
    kind_name: KindArg,
    ref: Annotated[str, typer.Argument(help="The record's key (roomguard compliance SITE list KIND).")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    by: ByOption,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Void a record (kept and audited, left out of the checks). 作廢紀錄。"""
    from compliance.store import RecordNotFound

    site = load_site_or_exit(path)
    _kind(kind_name)
    try:
        _records(site, state_dir).void(kind_name, ref, _actor(by), reason, datetime.now(UTC))
    except RecordNotFound as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"voided {kind_name} {ref}")


@compliance_app.command("review")
def review(
    path: SiteArg,
    incident_id: Annotated[
        str, typer.Argument(help="Incident id (roomguard compliance SITE list incident).")
    ],
    by: ByOption,
    cause: Annotated[str | None, typer.Option(help="Cause 原因.")] = None,
    corrective: Annotated[str | None, typer.Option(help="Corrective action 矯正措施.")] = None,
    preventive: Annotated[str | None, typer.Option(help="Preventive action 預防措施.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner 負責人.")] = None,
    close: Annotated[bool, typer.Option(help="Close the review (needs cause and both actions).")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Record an incident review's cause and measures, and close it (CC-20000 (五)). 異常事件檢討。"""
    from pydantic import ValidationError

    from compliance.kinds import Incident

    site = load_site_or_exit(path)
    store = _records(site, state_dir)
    incident = store.get(Incident, incident_id)
    if incident is None:
        raise _fail(f"no incident {incident_id!r}; roomguard compliance {path} list incident")
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "cause": cause,
            "corrective_action": corrective,
            "preventive_action": preventive,
            "owner": owner,
        }.items()
        if v is not None
    }
    if close:
        changes |= {"closed_at": now, "closed_by": by}
    try:
        updated = Incident.model_validate({**incident.model_dump(), **changes})
    except ValidationError as exc:
        raise _fail(f"incident {incident_id}: {exc.errors()[0]['msg']}") from None
    (result,) = store.put_all([updated], _actor(by), now, action="review")
    typer.echo(f"{result.outcome} incident {incident_id}{' (closed 已結案)' if close else ''}")


@compliance_app.command("tests")
def timeline_command(
    path: SiteArg,
    since: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """The test timeline: generator runs, UPS tests, inspections, drills. 測試時間軸。"""
    from compliance.board import timeline

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    now = datetime.now(UTC)
    start, end = _period(since, until, tz, now - timedelta(days=site.compliance.lookback_days))
    entries = timeline(_records(site, state_dir), start, end)
    if not entries:
        typer.echo("no tests in the period 期間內無測試紀錄")
    for e in entries:
        typer.echo(f"{_local(e.at, tz)}  {e.kind:<15} {e.subject:<12} {e.status:<7} {e.text}")


@compliance_app.command("rebuild")
def rebuild(
    path: SiteArg,
    since: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Rebuild generator-run and UPS-test records of a past period from InfluxDB. 由歷史資料重建測試紀錄。"""
    from compliance.rebuild import rebuild_tests

    site = load_site_or_exit(path)
    if site.influxdb is None:
        raise _fail(f"{path}: no influxdb section: nothing to rebuild from")
    tz = ZoneInfo(site.site.timezone)
    start, end = _period(since, until, tz, datetime.now(UTC))
    import asyncio

    results = asyncio.run(
        rebuild_tests(site, _records(site, state_dir), start, end, _actor("roomguard-rebuild"))
    )
    for r in results:
        typer.echo(f"{r.outcome} {r.kind} {r.ref}")
    typer.echo(f"{len(results)} records from history 由歷史資料重建 {len(results)} 筆")


@compliance_app.command("environment")
def environment(
    path: SiteArg,
    since: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Time inside the ASHRAE envelopes per room and month, computed by InfluxDB. 溫濕度符合率（每月）。"""
    from compliance.envelope import envelope_stats
    from compliance.envelope_store import EnvelopeDays
    from compliance.influxql import InfluxQL
    from compliance.telemetry import envelopes_of

    site = load_site_or_exit(path)
    if site.influxdb is None:
        raise _fail(f"{path}: no influxdb section: no history to compute from")
    tz = ZoneInfo(site.site.timezone)
    now = datetime.now(UTC)
    start, end = _period(since, until, tz, now)
    recommended, allowable = envelopes_of(site.compliance.environment)
    excluded = site.compliance.environment.exclude_devices
    kept = EnvelopeDays(_records(site, state_dir).sessions)

    async def stats() -> Any:
        async with InfluxQL.from_site(site) as client:
            return await envelope_stats(
                client,
                site.site.id,
                start,
                end,
                tz,
                [recommended, allowable],
                excluded=excluded,
                store=kept,
                now=now,
            )

    import asyncio

    if excluded:
        typer.echo(f"not inlet sensors, left out 不計入: {', '.join(excluded)}")
    months = asyncio.run(stats())
    if not months:
        typer.echo("no environmental readings in the period 期間內無溫濕度資料")

    def pct(v: float | None) -> str:
        return "  —  " if v is None else f"{v * 100:5.1f}%"

    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}"

    def shares(name: str, m: Any) -> str:
        s = m.share(name)
        return f"{pct(s.temp)} {pct(s.humidity)} {pct(s.both)}"

    typer.echo(
        f"{'room 機房':<12} {'month 月份':<10} {'samples':>9}  {recommended.name + ' T/H/both':<20} "
        f"{allowable.name + ' T/H/both':<20} temp °C min/avg/max  RH % min/avg/max"
    )
    for m in months:
        temps = "/".join(num(v) for v in (m.temp_min, m.temp_avg, m.temp_max))
        rhs = "/".join(num(v) for v in (m.rh_min, m.rh_avg, m.rh_max))
        typer.echo(
            f"{m.room:<12} {m.month:%Y-%m}    {m.samples:>9}  "
            f"{shares(recommended.name, m)}  {shares(allowable.name, m)}  {temps}  {rhs}"
        )


@compliance_app.command("evidence-pack")
def evidence_pack(
    path: SiteArg,
    since: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
    out: Annotated[
        Path | None, typer.Option(help="Zip file to write (default: in the current folder).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who prepares it (cover page).")] = "roomguard",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """The inspector's evidence pack for a period: XLSX, CSV, PDF, audit excerpt, manifest. 查核佐證包。"""
    from compliance.pack import build_pack

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    start, end = _period(since, until, tz, datetime.now(UTC))
    if end <= start:
        raise _fail(f"--to {until} is before --from {since}")
    target = out or Path(f"cc16000-{site.site.id}-{since}-{until}.zip")
    import asyncio

    result = asyncio.run(
        build_pack(site, _records(site, state_dir), start, end, target, prepared_by=by, progress=typer.echo)
    )
    typer.echo(f"wrote 已產生 {result}")


@compliance_app.command("verify-pack")
def verify_pack(
    file: Annotated[Path, typer.Argument(help="An evidence pack (zip).", exists=True, dir_okay=False)],
) -> None:
    """Check an evidence pack against its manifest; names every changed, missing or extra file.
    驗證佐證包。"""
    from compliance.export.manifest import verify_manifest

    problems = verify_manifest(file)
    if problems:
        for p in problems:
            typer.echo(p, err=True)
        raise _fail(f"{file}: NOT verified 驗證失敗 ({len(problems)} problems)", 1)
    typer.echo(f"{file}: verified 驗證通過")


@audit_app.command("verify")
def audit_verify(path: SiteArg, state_dir: StateDir = DEFAULT_STATE) -> None:
    """Recompute the audit log's hash chain; names every edited or deleted entry. 驗證稽核軌跡。"""
    from records.audit import verify

    site = load_site_or_exit(path)
    store = _records(site, state_dir)
    with store.sessions() as s:
        report = verify(s)
    if not report.ok:
        for p in report.problems:
            typer.echo(p.message, err=True)
        raise _fail(f"audit log NOT intact 稽核軌跡遭竄改: {len(report.problems)} problems", 1)
    typer.echo(
        f"audit log intact 稽核軌跡完整: {report.entries} entries, head {report.head_seq} {report.head_hash}"
    )


@audit_app.command("show")
def audit_show(
    path: SiteArg,
    since: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Audit entries of a period (JSON lines). 列出稽核軌跡。"""
    from records.audit import iter_entries

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    start, end = _period(since, until, tz, datetime(1970, 1, 1, tzinfo=UTC))
    with _records(site, state_dir).sessions() as s:
        for e in iter_entries(s, since=start, until=end):
            typer.echo(
                json.dumps(
                    {
                        "seq": e.seq,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "source": e.source,
                        "action": e.action,
                        "entity": e.entity,
                        "entity_id": e.entity_id,
                        "before": e.before,
                        "after": e.after,
                        "note": e.note,
                        "hash": e.hash,
                    },
                    ensure_ascii=False,
                )
            )


def register(app: typer.Typer) -> None:
    """Mount `compliance` and `audit` on the root `roomguard` app."""
    app.add_typer(compliance_app, name="compliance")
    app.add_typer(audit_app, name="audit")


__all__ = ["register"]
