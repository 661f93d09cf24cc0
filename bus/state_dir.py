"""The state directory and its files are private to the service user: 0700 and 0600, whatever the umask.

The outbox holds readings and error texts, the sequence files tell what was delivered, the status
snapshots name hosts; none of it is for other local users (a umask of 022 would make all of it 0644).
SQLite creates a database's `-wal` and `-shm` files with the database file's own mode (unix VFS,
`findCreateFileMode`), so creating the database file 0600 first is enough for those.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# Files SQLite keeps next to a database; an older version of roomguard may have left them 0644.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def prepare_state_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing and make it 0700 if we own it; return it."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _restrict(path, DIR_MODE)
    return path


def create_private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists, and tighten it (and SQLite's side files)."""
    if path.parent != path and not path.parent.exists():
        prepare_state_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        # O_EXCL: never truncate an existing file; the mode argument is masked by the umask, so fchmod.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
    _restrict(path, FILE_MODE)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            _restrict(side, FILE_MODE)
    return path


def _restrict(path: Path, mode: int) -> None:
    """chmod to `mode` if the mode is wider and the file is ours (a root-owned dir is left alone)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(st.st_mode) & ~mode and st.st_uid == os.geteuid():
        path.chmod(mode)
