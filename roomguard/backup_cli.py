"""`roomguard backup` and `roomguard restore`: the state directory and the records database in one archive.

Here, not in bus/, because the summary reads the records database (records.audit) and the archive
mechanics are bus's (bus/backup.py): bus and records never import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from bus.backup import (
    EXTERNAL_RECORDS,
    BackupError,
    Manifest,
    Restored,
    create_backup,
    describe_members,
    read_archive,
    restore_archive,
    table_counts,
)
from bus.process import DEFAULT_STATE, StateDir
from records.audit import verify
from records.db import make_engine, session_factory, to_url
from records.site import records_url
from siteconfig.cli import SiteArg, load_site_or_exit
from siteconfig.config import SiteConfig

ArchiveArg = Annotated[Path, typer.Argument(help="The archive: NAME.tar.gz (gzip) or NAME.tar.")]
# Tables of records.db that are not records: the audit chain (counted apart) and the migration mark.
_NOT_RECORDS = frozenset({"audit_log", "audit_head", "alembic_version"})
PG_NOTE = (
    "the records database is PostgreSQL: NOT in this archive, back it up with pg_dump "
    "紀錄資料庫為 PostgreSQL 不在此封存檔中 請用 pg_dump 備份"
)


def _records_source(site: SiteConfig, state_dir: Path) -> tuple[dict[str, str], Path | None]:
    """The manifest's `records` entry, and the records file to add when it lies outside the state dir."""
    url = to_url(records_url(site, state_dir))
    if url.get_backend_name() != "sqlite":
        return {"kind": "postgresql", "database": str(url.database), "note": PG_NOTE}, None
    file = Path(str(url.database)).resolve()
    if file.is_relative_to(state_dir.resolve()):
        return {"kind": "state", "file": file.name}, None
    if not file.exists():
        return {
            "kind": "missing",
            "file": str(file),
            "note": "records.url names a file that does not exist",
        }, None
    return {"kind": "external-sqlite", "file": str(file), "member": EXTERNAL_RECORDS}, file


def backup(
    path: SiteArg,
    archive: ArchiveArg,
    state_dir: StateDir = DEFAULT_STATE,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a running collector to copy its locked outbox.")
    ] = 30.0,
) -> None:
    """Archive the state directory and the records database, consistent while the processes run;
    never overwrites an archive. 備份狀態目錄與紀錄資料庫 (服務執行中亦可)。"""
    site = load_site_or_exit(path, secrets=False)  # records.url names no password (siteconfig refuses one)
    records, external = _records_source(site, state_dir)
    try:
        manifest = create_backup(
            state_dir,
            archive,
            site_id=site.site.id,
            records=records,
            external_records=external,
            handoff_timeout_s=wait,
        )
    except BackupError as exc:
        typer.echo(f"roomguard backup: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已備份 wrote {archive}: {len(manifest.members)} file(s) from {state_dir}")
    if records["kind"] in ("postgresql", "missing"):
        typer.echo(f"注意 note: {records['note']}", err=True)


def _summary(restored: Restored) -> list[str]:
    """Counts a person checks after a restore: records, audit chain, outbox, sequence state."""
    lines: list[str] = []
    for name, file in sorted(restored.files.items()):
        check = restored.integrity.get(name)
        if check is None:
            continue
        flag = "ok" if check == "ok" else f"FAILED 失敗: {check}"
        counts = table_counts(file) if check == "ok" else {}
        detail = ""
        if "audit_log" in counts:
            records = sum(n for t, n in counts.items() if t not in _NOT_RECORDS)
            detail = f"紀錄 records {records} rows, 稽核軌跡 audit {_audit(file)}"
        elif "messages" in counts:
            detail = f"待送訊息 outbox messages {counts['messages']}"
        elif "seq" in counts:
            detail = f"序號 sequence state of {counts['seq']} device(s)"
        elif "devices" in counts:
            detail = f"接收序號 ingest state of {counts['devices']} device(s)"
        lines.append(f"  {name} → {file}: integrity {flag}{'; ' + detail if detail else ''}")
    return lines


def _audit(file: Path) -> str:
    engine = make_engine(file)
    try:
        with session_factory(engine)() as session:
            report = verify(session)
    except SQLAlchemyError as exc:
        return f"unreadable 無法讀取 ({exc})"
    finally:
        engine.dispose()
    state = "chain intact 鏈完整" if report.ok else f"CHAIN BROKEN 鏈已損: {report.problems[0].message}"
    return f"{report.entries} entries, {state}"


def _header(m: Manifest) -> str:
    return f"site {m.site_id}, created {m.created} on {m.host}, roomguard {m.roomguard_version}"


def restore(
    archive: ArchiveArg,
    state_dir: StateDir = DEFAULT_STATE,
    list_only: Annotated[
        bool, typer.Option("--list", help="Only check the archive against its manifest and list it.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore into a non-empty directory, replacing the archive's files."),
    ] = False,
    records_file: Annotated[
        Path | None,
        typer.Option(help="Where a records database kept outside the state directory goes (default: in it)."),
    ] = None,
) -> None:
    """Check every file of an archive against its manifest, then restore it into an empty state
    directory (stop the services first). 驗證並還原備份 (請先停止服務)。"""
    try:
        if list_only:
            manifest, problems = read_archive(archive)
            typer.echo(_header(manifest))
            typer.echo("\n".join(describe_members(manifest.members)))
            if manifest.records.get("note"):
                typer.echo(f"注意 note: {manifest.records['note']}")
            if problems:
                typer.echo(
                    "封存檔與清單不符 does not match its manifest:\n  " + "\n  ".join(problems), err=True
                )
                raise typer.Exit(1)
            typer.echo("清單相符 every file matches the manifest")
            return
        restored = restore_archive(archive, state_dir, force=force, records_file=records_file)
    except BackupError as exc:
        typer.echo(f"roomguard restore: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已還原 restored {archive} into {state_dir} ({_header(restored.manifest)})")
    typer.echo("\n".join(_summary(restored)))
    if restored.manifest.records.get("note"):
        typer.echo(f"注意 note: {restored.manifest.records['note']}")
    if any(check != "ok" for check in restored.integrity.values()):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount `backup` and `restore` on the root `roomguard` app."""
    app.command("backup")(backup)
    app.command("restore")(restore)


__all__ = ["register"]
