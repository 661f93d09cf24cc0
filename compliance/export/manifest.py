"""MANIFEST.sha256 in sha256sum's format, and its verification on a folder or on a zip of one."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

MANIFEST_NAME = "MANIFEST.sha256"
_CHUNK = 1 << 20
_LINE_RE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def sha256_of(fh: IO[bytes]) -> str:
    """Hex SHA-256 of a binary stream, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | Path, files: Iterable[str | Path] | None = None) -> Path:
    """Write folder/MANIFEST.sha256 over `files` (paths in the folder; default: every file in it)."""
    folder = Path(folder)
    names = sorted(_walk(folder)) if files is None else sorted({_relative(folder, f) for f in files})
    lines = []
    for name in names:
        with (folder / name).open("rb") as fh:
            lines.append(f"{sha256_of(fh)}  {name}\n")  # two spaces: sha256sum's text mode, as -c reads it
    path = folder / MANIFEST_NAME
    path.write_bytes("".join(lines).encode())
    return path


def verify_manifest(folder_or_zip: str | Path) -> list[str]:
    """Problems found against MANIFEST.sha256, each naming its file; an empty list means verified."""
    target = Path(folder_or_zip)
    if target.is_dir():
        return _verify_folder(target)
    if target.is_file() and zipfile.is_zipfile(target):
        return _verify_zip(target)
    return [f"{target}: neither a folder nor a zip file"]


def parse_manifest(text: str) -> tuple[dict[str, str], list[str]]:
    """Entries {path: sha256} of a manifest's text, and the problems of its malformed or unsafe lines."""
    entries: dict[str, str] = {}
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE_RE.fullmatch(line)
        if m is None:
            problems.append(f"{MANIFEST_NAME} line {n}: malformed: {line!r}")
            continue
        digest, name = m.groups()
        if not _safe(name):
            # Never read outside what is being verified, whatever the manifest says.
            problems.append(f"{name}: unsafe path in {MANIFEST_NAME} line {n}")
        elif name in entries:
            problems.append(f"{name}: listed twice in {MANIFEST_NAME} (line {n})")
        else:
            entries[name] = digest
    return entries, problems


def _compare(entries: dict[str, str], present: set[str], digest_of: dict[str, str]) -> list[str]:
    problems = []
    for name in sorted(entries):
        if name not in present:
            problems.append(f"{name}: missing (listed in {MANIFEST_NAME})")
        elif digest_of[name] != entries[name]:
            problems.append(f"{name}: changed (sha256 {digest_of[name]}, manifest says {entries[name]})")
    problems += [f"{name}: extra file, not in {MANIFEST_NAME}" for name in sorted(present - entries.keys())]
    return problems


def _verify_folder(folder: Path) -> list[str]:
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return [f"{MANIFEST_NAME}: missing in {folder}"]
    entries, problems = parse_manifest(manifest.read_text(encoding="utf-8"))
    present = set(_walk(folder))
    digests = {}
    for name in sorted(present & entries.keys()):
        with (folder / name).open("rb") as fh:
            digests[name] = sha256_of(fh)
    return problems + _compare(entries, present, digests)


def _verify_zip(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        names = [i.filename for i in members]
        problems = [f"{n}: in the zip more than once" for n, k in sorted(Counter(names).items()) if k > 1]
        # The manifest at the top of the zip, or in its one top folder if the pack was zipped with it.
        manifests = sorted((n for n in names if PurePosixPath(n).name == MANIFEST_NAME), key=len)
        if not manifests:
            return [*problems, f"{MANIFEST_NAME}: missing in {path.name}"]
        prefix = manifests[0][: -len(MANIFEST_NAME)]
        try:
            text = zf.read(manifests[0]).decode("utf-8")
        except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
            return [*problems, f"{manifests[0]}: unreadable ({exc})"]
        entries, bad = parse_manifest(text)
        problems += bad
        present = {n[len(prefix) :] for n in names if n.startswith(prefix)} - {MANIFEST_NAME}
        problems += [
            f"{n}: extra file outside {prefix}" for n in sorted(n for n in names if not n.startswith(prefix))
        ]
        digests = {}
        for name in sorted(present & entries.keys()):
            try:
                with zf.open(prefix + name) as fh:
                    digests[name] = sha256_of(fh)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged: bad CRC, header or stream
                digests[name] = f"unreadable ({exc})"
        return problems + _compare(entries, present, digests)


def _walk(folder: Path) -> Iterator[str]:
    """Relative POSIX paths of the regular files under folder, the manifest itself left out."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in files:
            rel = (Path(root) / f).relative_to(folder).as_posix()
            if rel != MANIFEST_NAME:
                yield rel


def _relative(folder: Path, file: str | Path) -> str:
    p = Path(file)
    try:
        rel = p.resolve().relative_to(folder.resolve()) if p.is_absolute() else p
    except ValueError:
        raise ValueError(f"{file}: not a file inside {folder}") from None
    name = rel.as_posix()
    if not _safe(name) or name == MANIFEST_NAME:
        raise ValueError(f"{file}: not a file inside {folder}")
    if not (folder / name).is_file():
        raise FileNotFoundError(f"{folder / name}: no such file to list in {MANIFEST_NAME}")
    return name


def _safe(name: str) -> bool:
    # sha256sum escapes names with a newline or backslash; we refuse them rather than escape.
    p = PurePosixPath(name)
    return not (
        p.is_absolute() or ".." in p.parts or "\\" in name or "\n" in name or "\r" in name or not name
    )
