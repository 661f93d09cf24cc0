"""`roomguard access SITE …`: import holders, grants and badge events; flags; the quarterly review.

roomguard access SITE import holders|grants|badges FILE      (generic CSV/JSON, docs/access-review.md)
roomguard access SITE import zkteco FOLDER                   (ZKTeco user/userauthorize/transaction CSVs)
roomguard access SITE flags [--person ID] [--json]
roomguard access SITE review start 2026Q4 --by NAME
roomguard access SITE review show REVIEW_ID [--flagged] [--undecided] [--json]
roomguard access SITE review decide REVIEW_ID [GRANT_ID…] [--unflagged] [--flag CODE…]
                                    --decision keep|revoke|change|to_confirm --reason … --by NAME
roomguard access SITE review sign-off REVIEW_ID --by NAME
roomguard access SITE review export REVIEW_ID --out DIR
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bus.process import DEFAULT_STATE, StateDir
from compliance.cli import ByOption, _actor, _fail, _records
from siteconfig.cli import SiteArg, SiteFirst, load_site_or_exit
from siteconfig.config import SiteConfig

access_app = typer.Typer(
    cls=SiteFirst,
    help="Machine-room access rights: imports, flags, the quarterly review. 門禁權限覆核。",
    no_args_is_help=True,
)
review_app = typer.Typer(
    cls=SiteFirst, help="The quarterly access-rights review. 季度權限覆核。", no_args_is_help=True
)
access_app.add_typer(review_app, name="review")
IMPORT_KINDS = ("holders", "grants", "badges", "zkteco")


def _store(site: SiteConfig, state_dir: Path) -> Any:
    from compliance.access.store import AccessStore

    return AccessStore(_records(site, state_dir).sessions)


def _rules(site: SiteConfig) -> Any:
    from compliance.access.service import flag_rules

    return flag_rules(site.compliance.access)


def _counts(c: Any) -> str:
    return f"{c.created} created, {c.updated} updated, {c.unchanged} unchanged"


def _refused(exc: Exception) -> typer.Exit:
    return _fail(f"refused 拒絕: {exc}", 3)


@access_app.command("import")
def import_(
    path: SiteArg,
    what: Annotated[str, typer.Argument(help=f"One of {', '.join(IMPORT_KINDS)}.")],
    file: Annotated[Path, typer.Argument(help="CSV/JSON file, or the ZKTeco export's folder.")],
    by: ByOption = "import",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Import people, grants or badge events; all or nothing, the same file twice changes nothing. 匯入。"""
    import hashlib

    import compliance.access.importing as importing
    from compliance.importing import RecordImportError

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    if what not in IMPORT_KINDS:
        raise _fail(f"unknown import {what!r}; valid: {', '.join(IMPORT_KINDS)}")
    store, actor, now = _store(site, state_dir), _actor(by), datetime.now(UTC)
    doors = {n: (d.name, d.zone) for n, d in site.compliance.access.doors.items()}
    try:
        if what == "holders":
            counts = store.put_holders(importing.parse_holders(file, tz), actor, now)
            typer.echo(f"holders 人員: {_counts(counts)}")
        elif what == "grants":
            rows = importing.parse_grants(file, tz)
            counts = store.put_grants([r.grant for r in rows], actor, now)
            typer.echo(f"grants 權限: {_counts(counts)}")
        elif what == "badges":
            badges = importing.parse_badges(file, tz, dict(doors.values()))
            digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
            new = store.add_badges(badges, actor, now, f"{file.name}#{digest}")
            typer.echo(f"badge events 刷卡紀錄: {len(badges)} read, {new} new")
        else:
            export = importing.parse_zkteco(file, tz, doors=doors)
            h = store.put_holders(export.holders, actor, now)
            g = store.put_grants(export.grants, actor, now)
            new = store.add_badges(export.badges, actor, now, f"zkteco:{file.name}")
            typer.echo(
                f"zkteco: holders {h.created}+{h.updated} changed, grants {g.created}+{g.updated} changed, "
                f"badge events {len(export.badges)} read, {new} new"
            )
    except RecordImportError as exc:
        raise _fail(f"nothing imported 未匯入: {exc}") from None


@access_app.command("flags")
def flags(
    path: SiteArg,
    person: Annotated[str | None, typer.Option("--person", help="Only this person's grants.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Every grant's flags now, with their evidence. 權限異常旗標。"""
    from compliance.access.codec import flag_json
    from compliance.access.service import current_flags

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    store = _store(site, state_dir)
    found = current_flags(store, datetime.now(UTC), tz, _rules(site))
    holders = store.holders()
    chosen = [f for fl in found.values() for f in fl if person is None or f.person_id == person]
    if as_json:
        typer.echo(json.dumps([flag_json(f) for f in chosen], ensure_ascii=False, indent=1))
        return
    for f in sorted(chosen, key=lambda f: (f.person_id, f.grant_id, f.code)):
        name = holders[f.person_id].name if f.person_id in holders else "?"
        typer.echo(f"{f.code:20} {f.grant_id:16} {f.person_id} {name}: {f.reason_zh} / {f.reason_en}")
        for e in f.evidence:
            typer.echo(f"{'':22}{e}")
    typer.echo(f"{len(chosen)} flags on {len({f.grant_id for f in chosen})} of {len(found)} grants")


@review_app.command("start")
def review_start(
    path: SiteArg,
    quarter: Annotated[str, typer.Argument(help="The quarter, e.g. 2026Q4.")],
    by: ByOption,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Snapshot every grant of the quarter with its flags; compare with the previous one. 建立覆核。"""
    from compliance.access.review import ReviewRefused
    from compliance.access.service import start_review

    site = load_site_or_exit(path)
    tz = ZoneInfo(site.site.timezone)
    try:
        review = start_review(
            _store(site, state_dir),
            site.site.id,
            quarter,
            by,
            _actor(by),
            datetime.now(UTC),
            tz,
            _rules(site),
        )
    except (ReviewRefused, ValueError) as exc:
        raise _refused(exc) from None
    flagged = sum(1 for ln in review.lines if ln.flags)
    typer.echo(
        f"{review.review_id}: {len(review.lines)} grants, {flagged} flagged, {len(review.removed)} removed "
        f"since {review.previous_review_id or 'no previous review'}"
    )


@review_app.command("show")
def review_show(
    path: SiteArg,
    review_id: Annotated[str, typer.Argument(help="e.g. ACR-2026Q4-tpe-hq")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole review as JSON.")] = False,
    flagged_only: Annotated[bool, typer.Option("--flagged", help="Only the flagged grants.")] = False,
    undecided_only: Annotated[bool, typer.Option("--undecided", help="Only grants not decided yet.")] = False,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """A review: its progress, lines, flags, decisions and sign-off. 檢視覆核。"""
    from compliance.access.codec import review_json
    from compliance.access.review import DECISION_ZH, ReviewRefused
    from compliance.access.service import progress

    site = load_site_or_exit(path)
    try:
        review = _store(site, state_dir).review(review_id)
    except ReviewRefused as exc:
        raise _refused(exc) from None
    if as_json:
        typer.echo(json.dumps(review_json(review), ensure_ascii=False, indent=1))
        return
    typer.echo(f"{review.review_id} {review.quarter} {review.status}; prepared by {review.prepared_by}")
    done = progress(review)
    typer.echo(
        f"已覆核 decided {done.decided}/{done.lines}; "
        f"待覆核之旗標 flagged and undecided {done.flagged_undecided}"
    )
    for ln in review.lines:
        if (flagged_only and not ln.flags) or (undecided_only and ln.decision):
            continue
        who = ln.holder.name if ln.holder else "?"
        decision = f"{DECISION_ZH[ln.decision]} {ln.decision}" if ln.decision else "未覆核 undecided"
        codes = ",".join(f.code for f in ln.flags) or "-"
        typer.echo(f"{ln.row_no:4} {ln.grant.grant_id:16} {ln.grant.person_id} {who} [{codes}] {decision}")
    for s in review.sign_offs:
        typer.echo(f"signed off 簽核: {s.by} at {s.at.isoformat()}")


@review_app.command("decide")
def review_decide(
    path: SiteArg,
    review_id: Annotated[str, typer.Argument(help="The review.")],
    grant_ids: Annotated[list[str] | None, typer.Argument(help="The grant(s).")] = None,
    decision: Annotated[str, typer.Option("--decision", help="keep, revoke, change or to_confirm.")] = "",
    by: ByOption = "",
    reason: Annotated[str, typer.Option("--reason", help="Why (needed unless keep).")] = "",
    unflagged: Annotated[
        bool, typer.Option("--unflagged", help="Also every undecided grant without a flag.")
    ] = False,
    flag: Annotated[
        list[str] | None,
        typer.Option(
            "--flag", help="Also every undecided grant with this flag (repeatable), e.g. LEAVER_ACTIVE."
        ),
    ] = None,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Record the reviewer's decision on grants: all or none, each one audited. 覆核決定。"""
    from compliance.access.review import InvalidDecision, ReviewRefused
    from compliance.access.service import choose_grants, decide_grants

    if not decision or not by:
        raise _fail("--decision and --by are needed")
    site = load_site_or_exit(path)
    store, actor, now = _store(site, state_dir), _actor(by), datetime.now(UTC)
    chosen = list(grant_ids or [])
    try:
        if unflagged or flag:
            chosen = choose_grants(store.review(review_id), chosen, unflagged=unflagged, flags=flag or [])
    except InvalidDecision as exc:  # a wrong --flag, or nothing chosen: the command line's fault
        raise _fail(f"--flag / --unflagged: {exc}") from None
    except ReviewRefused as exc:
        raise _refused(exc) from None
    if not chosen:
        raise _fail("name grant ids, or --unflagged / --flag CODE")
    try:
        count = decide_grants(store, review_id, chosen, decision, reason, by, actor, now)
    except ReviewRefused as exc:
        raise _refused(exc) from None
    typer.echo(f"{review_id}: {decision} for {count} grant(s)")


@review_app.command("sign-off")
def review_sign_off(
    path: SiteArg,
    review_id: Annotated[str, typer.Argument(help="The review.")],
    by: ByOption,
    note: Annotated[str, typer.Option("--note", help="A note kept with the sign-off.")] = "",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Sign the review off (not by whoever implemented its grants); then it is read-only. 簽核。"""
    from compliance.access.review import ReviewRefused
    from compliance.access.service import sign_off_review

    site = load_site_or_exit(path)
    try:
        review = sign_off_review(_store(site, state_dir), review_id, by, _actor(by), datetime.now(UTC), note)
    except ReviewRefused as exc:
        raise _refused(exc) from None
    typer.echo(f"{review.review_id} signed off by {by} 已簽核")


@review_app.command("export")
def review_export(
    path: SiteArg,
    review_id: Annotated[str, typer.Argument(help="The review.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the XLSX, CSVs, PDF and manifest.")],
    company: Annotated[str, typer.Option("--company", help="Company name on the cover.")] = "",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """The auditor's files: XLSX (sheets A-F), CSV with BOM, PDF, SHA-256 manifest. 匯出覆核報告。"""
    from compliance.access.review import ReviewRefused
    from compliance.access.service import export_review

    site = load_site_or_exit(path)
    try:
        files = export_review(
            _store(site, state_dir),
            review_id,
            out,
            site_name=site.site.name,
            company=company or site.site.name,
            tz=ZoneInfo(site.site.timezone),
        )
    except ReviewRefused as exc:
        raise _refused(exc) from None
    for f in files:
        typer.echo(str(f))


def register(app: typer.Typer) -> None:
    """Mount `access` on the root `roomguard` app."""
    app.add_typer(access_app, name="access")
