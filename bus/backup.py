"""One archive of a state directory, consistent while the processes run, and its verified restore.

Every SQLite file (found by its header, not its name) is copied with the online backup API, so the copy
is one consistent snapshot with the WAL's committed content in it (sqlite.org/backup.html); the outbox,
which its owner holds exclusively, is copied by its owner on request (bus/backup_handoff.py). The outboxes
are copied first: the collector commits a batch to the outbox before it commits the next sequence numbers
to seq.db, so a seq.db copied later is never behind the outbox copy. Status snapshots are written by
rename (bus/status_file.py) and are copied as they are; an append-only log (dead-letter.jsonl) is cut at
its last complete line. MANIFEST.json, the archive's first member, holds the SHA-256 of every other one;
a restore checks all of them before it writes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from bus.backup_handoff import HANDOFF_DIR, copy_path, request_path
from bus.state_dir import FILE_MODE, create_private_file, prepare_state_dir

FORMAT = "roomguard-backup/1"
MANIFEST = "MANIFEST.json"
EXTERNAL_RECORDS = "external/records.db"  # a records database outside the state directory
SQLITE_MAGIC = b"SQLite format 3\x00"
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
# Copied first, before seq.db: see the module docstring.
_FIRST = ("outbox.db", "compliance-outbox.db")
_APPEND_LOGS = (".jsonl",)
_CHUNK = 1 << 20
Kind = Literal["sqlite", "file"]
COMPRESSION = {".tar": "", ".tar.gz": "gz", ".tgz": "gz"}


class BackupError(Exception):
    """The backup or restore cannot be done; the message names the file or member and why."""


@dataclass(frozen=True, slots=True)
class Member:
    """One archived file: its name in the archive, SHA-256, size and kind."""

    name: str
    sha256: str
    size: int
    kind: Kind


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the archive holds and where it came from."""

    site_id: str
    created: str  # ISO 8601 UTC
    host: str
    roomguard_version: str
    state_dir: str
    records: dict[str, str]  # kind: state | external-sqlite | postgresql | missing, plus a note
    members: tuple[Member, ...] = field(default_factory=tuple)
    format: str = FORMAT

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON (Chinese kept readable)."""
        body = asdict(self)
        body["members"] = [asdict(m) for m in self.members]
        return json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        """Parse a manifest; a bad one is a BackupError naming `where` and the field."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BackupError(f"{where}: not JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            got = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise BackupError(f"{where}: format is {got!r}, expected {FORMAT!r}")
        try:
            members = tuple(
                Member(str(m["name"]), str(m["sha256"]), int(m["size"]), m["kind"]) for m in body["members"]
            )
            return cls(
                site_id=str(body["site_id"]),
                created=str(body["created"]),
                host=str(body["host"]),
                roomguard_version=str(body["roomguard_version"]),
                state_dir=str(body["state_dir"]),
                records={str(k): str(v) for k, v in body["records"].items()},
                members=members,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupError(f"{where}: missing or bad field {exc}") from None


def check_members(manifest: Manifest, found: dict[str, str]) -> list[str]:
    """Every difference between the manifest and the archive's members (name → SHA-256), by name."""
    problems: list[str] = []
    listed = {m.name: m for m in manifest.members}
    for name, member in sorted(listed.items()):
        if name not in found:
            problems.append(f"{name}: missing from the archive 封存檔缺少此檔")
        elif found[name] != member.sha256:
            problems.append(f"{name}: changed (SHA-256 does not match the manifest) 內容與清單不符")
    for name in sorted(set(found) - set(listed)):
        problems.append(f"{name}: extra, not in the manifest 清單外的檔案")
    return problems


def safe_member_name(name: str) -> bool:
    """A relative path without `..`, absolute parts or empty levels (never written outside the target)."""
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and str(p) == name


def roomguard_version() -> str:
    """The installed roomguard version (or `unknown` when run from a source tree)."""
    try:
        return version("roomguard")
    except PackageNotFoundError:
        return "unknown"


def is_sqlite(path: Path) -> bool:
    """True if the file starts with SQLite's header string."""
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def state_files(state_dir: Path) -> list[Path]:
    """The files to archive: every regular file except SQLite's side files, temp files and handoffs."""
    out: list[Path] = []
    for path in sorted(state_dir.rglob("*")):
        rel = path.relative_to(state_dir)
        if rel.parts[0] == HANDOFF_DIR or any(p.startswith(".") for p in rel.parts):
            continue  # hidden: write_snapshot's temp files, the handoff directory
        if not path.is_file() or path.is_symlink() or path.name.endswith(_SIDE_SUFFIXES):
            continue
        out.append(path)
    out.sort(key=lambda p: (p.name not in _FIRST, str(p)))
    return out


def _locked(path: Path) -> sqlite3.Connection | None:
    """A read-only connection holding a read transaction on `path`, or None if another holds it."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            return None
        raise BackupError(f"{path}: cannot read ({exc})") from None
    return conn


def copy_sqlite(src: Path, dst: Path, handoff_timeout_s: float) -> None:
    """Copy the database `src` to `dst` consistently; ask its owner when it is locked exclusively."""
    conn = _locked(src)
    if conn is not None:
        # Python's backup() retries a busy source forever: the read transaction above holds the snapshot.
        try:
            target = sqlite3.connect(create_private_file(dst))
            try:
                conn.backup(target)
            finally:
                target.close()
        finally:
            conn.close()
        return
    request, copy = request_path(src), copy_path(src)
    prepare_state_dir(request.parent)
    copy.unlink(missing_ok=True)
    create_private_file(request)
    if os.geteuid() == 0:
        # Run as root: the owner (the service user) must write its copy there and remove the request.
        owner = src.parent.stat()
        for p in (request.parent, request):
            os.chown(p, owner.st_uid, owner.st_gid)
    deadline = time.monotonic() + handoff_timeout_s
    try:
        while not copy.exists():
            if time.monotonic() > deadline:
                raise BackupError(
                    f"{src} is locked by another process, which did not answer the copy request within "
                    f"{handoff_timeout_s:.0f} s (a roomguard collector/compliance process answers at its "
                    f"next status snapshot) 檔案被其他程序鎖定且未回應複製請求"
                )
            time.sleep(0.2)
        shutil.move(copy, dst)
        os.chmod(dst, FILE_MODE)
    finally:
        request.unlink(missing_ok=True)


def copy_file(src: Path, dst: Path) -> None:
    """Copy a plain file (0600); an append-only log is cut after its last complete line."""
    data = src.read_bytes()
    if src.suffix in _APPEND_LOGS and data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # a line being appended right now: the next backup has it
    create_private_file(dst).write_bytes(data)


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def compression_of(archive: Path) -> str:
    """The tarfile compression for the archive's name (`` or `gz`); other names are refused."""
    for suffix, mode in COMPRESSION.items():
        if archive.name.endswith(suffix):
            return mode
    raise BackupError(f"{archive}: the name must end in {', '.join(COMPRESSION)} 檔名須以其中之一結尾")


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, FILE_MODE, int(mtime), tarfile.REGTYPE
    return info


def create_backup(
    state_dir: Path,
    archive: Path,
    *,
    site_id: str,
    records: dict[str, str],
    external_records: Path | None = None,
    handoff_timeout_s: float = 30.0,
    now: datetime | None = None,
) -> Manifest:
    """Write one archive of `state_dir` (and an external SQLite records file) to `archive`, never over
    an existing file; return its manifest."""
    compression = compression_of(archive)
    if archive.exists():
        raise BackupError(f"{archive} exists; refusing to overwrite it 封存檔已存在 不覆寫")
    if not state_dir.is_dir():
        raise BackupError(f"state directory {state_dir} does not exist 狀態目錄不存在")
    if archive.resolve().is_relative_to(state_dir.resolve()):
        # The next backup would hold this one; a restore would bring it back into the state.
        raise BackupError(f"{archive} is inside the state directory {state_dir}: write it elsewhere 請另存")
    created = (now or datetime.now(UTC)).astimezone(UTC)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".roomguard-backup-", dir=archive.parent) as tmp:
        staging = Path(tmp)
        os.chmod(staging, 0o700)
        members: list[Member] = []
        sources = [(str(p.relative_to(state_dir).as_posix()), p) for p in state_files(state_dir)]
        if external_records is not None:
            sources.append((EXTERNAL_RECORDS, external_records))
        for name, src in sources:
            dst = staging / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            kind: Kind = "sqlite" if is_sqlite(src) else "file"
            try:
                if kind == "sqlite":
                    copy_sqlite(src, dst, handoff_timeout_s)
                else:
                    copy_file(src, dst)
            except FileNotFoundError:
                continue  # removed while we walked (a temp file renamed away): not part of the state
            members.append(Member(name, sha256_file(dst), dst.stat().st_size, kind))
        manifest = Manifest(
            site_id=site_id,
            created=created.isoformat().replace("+00:00", "Z"),
            host=socket.gethostname(),
            roomguard_version=roomguard_version(),
            state_dir=str(state_dir.resolve()),
            records=records,
            members=tuple(members),
        )
        fd, part = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".part", dir=archive.parent)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                with (
                    tarfile.open(fileobj=fh, mode="w:gz")
                    if compression
                    else tarfile.open(fileobj=fh, mode="w")
                ) as tar:
                    raw = manifest.to_json()
                    tar.addfile(_tarinfo(MANIFEST, len(raw), created.timestamp()), io.BytesIO(raw))
                    for m in members:
                        with (staging / m.name).open("rb") as src_fh:
                            tar.addfile(_tarinfo(m.name, m.size, created.timestamp()), src_fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(part, archive)  # unlike rename, link never replaces an archive made meanwhile
        except FileExistsError:
            raise BackupError(f"{archive} exists; refusing to overwrite it 封存檔已存在 不覆寫") from None
        finally:
            Path(part).unlink(missing_ok=True)
    return manifest


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 -- closed by the `with` below; only opening is caught
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive}: cannot read the archive ({exc}) 無法讀取封存檔") from None
    with tar:
        yield tar


def read_archive(archive: Path) -> tuple[Manifest, list[str]]:
    """The archive's manifest and every problem found checking each member against it."""
    found: dict[str, str] = {}
    problems: list[str] = []
    raw: bytes | None = None
    with _open_archive(archive) as tar:
        try:
            for info in tar:
                if not info.isfile() or not safe_member_name(info.name):
                    problems.append(f"{info.name}: not a plain file with a relative name 非一般檔案 拒絕")
                    continue
                fh = tar.extractfile(info)
                assert fh is not None  # a regular file always has contents
                if info.name == MANIFEST:
                    raw = fh.read()
                    continue
                if info.name in found:
                    problems.append(f"{info.name}: in the archive twice 重複的檔案")
                h = hashlib.sha256()
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
                found[info.name] = h.hexdigest()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise BackupError(f"{archive}: damaged archive ({exc}) 封存檔損毀") from None
    if raw is None:
        raise BackupError(f"{archive}: no {MANIFEST} in the archive 封存檔沒有清單")
    manifest = Manifest.from_json(raw, f"{archive}:{MANIFEST}")
    return manifest, problems + check_members(manifest, found)


def integrity_check(path: Path) -> str:
    """`PRAGMA integrity_check` of a database: `ok` or SQLite's first complaints."""
    # Read-write: a read-only connection to a WAL database leaves its -wal/-shm files behind.
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows[:5])


def table_counts(path: Path) -> dict[str, int]:
    """Rows per table of a database (SQLite's own tables left out)."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts: dict[str, int] = {}
        for n in names:
            # Names come from sqlite_master, quoted as identifiers: nothing from outside reaches the SQL.
            quoted = n.replace('"', '""')
            counts[n] = conn.execute(f'SELECT COUNT(*) FROM "{quoted}"').fetchone()[0]  # noqa: S608
        return counts
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore wrote: the manifest, each file's path, and each database's integrity check."""

    manifest: Manifest
    files: dict[str, Path]
    integrity: dict[str, str]


def _not_empty(target: Path) -> bool:
    return target.exists() and any(target.iterdir())


def restore_archive(
    archive: Path, target: Path, *, force: bool = False, records_file: Path | None = None
) -> Restored:
    """Check every member of `archive`, then write them into the state directory `target` (0700/0600);
    nothing is written when a check fails. An external records database goes to `records_file`
    (default: records.db in `target`)."""
    manifest, problems = read_archive(archive)
    if problems:
        raise BackupError(
            f"{archive}: refused, the archive does not match its manifest 封存檔與清單不符 拒絕還原:\n  "
            + "\n  ".join(problems)
        )
    if target.exists() and not target.is_dir():
        raise BackupError(f"{target} is not a directory 不是目錄")
    if _not_empty(target) and not force:
        raise BackupError(
            f"{target} is not empty; restore into an empty state directory, or give --force to replace "
            "the files the archive holds 目標目錄不是空的"
        )
    if records_file is not None and records_file.exists() and not force:
        raise BackupError(f"{records_file} exists; give --force to replace it 檔案已存在")
    destinations = {
        m.name: (records_file or target / "records.db") if m.name == EXTERNAL_RECORDS else target / m.name
        for m in manifest.members
    }
    prepare_state_dir(target)
    with _open_archive(archive) as tar:
        for info in tar:
            dst = destinations.get(info.name)
            fh = tar.extractfile(info) if dst is not None else None
            if dst is None or fh is None:
                continue
            if dst.parent.resolve().is_relative_to(target.resolve()):
                prepare_state_dir(dst.parent)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)  # the operator's folder: its mode is theirs
            for suffix in _SIDE_SUFFIXES:  # a stale WAL next to the restored file would be replayed into it
                dst.with_name(dst.name + suffix).unlink(missing_ok=True)
            tmp = dst.with_name(f".{dst.name}.restore")
            tmp.unlink(missing_ok=True)
            with create_private_file(tmp).open("wb") as out:
                shutil.copyfileobj(fh, out, _CHUNK)
            os.replace(tmp, dst)
    integrity = {
        m.name: integrity_check(destinations[m.name]) for m in manifest.members if m.kind == "sqlite"
    }
    return Restored(manifest, destinations, integrity)


def describe_members(members: Iterable[Member]) -> list[str]:
    """One line per member: name, kind, size."""
    return [f"{m.name}  {m.kind}  {m.size} B  sha256 {m.sha256[:16]}…" for m in members]


def manifest_fields(manifest: Manifest) -> dict[str, Any]:
    """The manifest's header fields (everything but the member list)."""
    body = asdict(manifest)
    body.pop("members")
    return body


__all__ = [
    "COMPRESSION",
    "EXTERNAL_RECORDS",
    "FORMAT",
    "MANIFEST",
    "BackupError",
    "Manifest",
    "Member",
    "Restored",
    "check_members",
    "compression_of",
    "copy_file",
    "copy_sqlite",
    "create_backup",
    "describe_members",
    "integrity_check",
    "is_sqlite",
    "manifest_fields",
    "read_archive",
    "restore_archive",
    "roomguard_version",
    "safe_member_name",
    "sha256_file",
    "state_files",
    "table_counts",
]
