"""Deterministic zip files of a folder: sorted names, fixed times and modes, deflated."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from compliance.export.manifest import MANIFEST_NAME, verify_manifest

# The zip epoch: the manifest, not the member times, says what the files are; fixed times, same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class ZipVerifyError(RuntimeError):
    """The zip just written does not verify against the folder's manifest."""


def write_zip(zip_path: str | Path, folder: str | Path) -> Path:
    """Zip every file under folder (paths relative to it); if it has a manifest, the zip must verify."""
    zip_path, folder = Path(zip_path), Path(folder)
    if zip_path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{zip_path}: the zip cannot go inside the folder it packs ({folder})")
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, wherever it runs, so the attributes below mean the same
            info.external_attr = 0o644 << 16
            big = (folder / name).stat().st_size >= zipfile.ZIP64_LIMIT  # zip64 fields only where needed
            with (folder / name).open("rb") as src, zf.open(info, "w", force_zip64=big) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    # Catches a file changed after its manifest was written, before anyone is handed the zip.
    if (folder / MANIFEST_NAME).is_file():
        problems = verify_manifest(zip_path)
        if problems:
            raise ZipVerifyError(f"{zip_path} does not verify: " + "; ".join(problems))
    return zip_path
