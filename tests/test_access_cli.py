"""`roomguard access` end to end through the real command: the demo dataset in, every flag out, the
quarterly review decided and signed off (and refused for the administrator), the export verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.access.demo import write_demo_dataset
from compliance.access.flags import FLAG_CODES
from compliance.access.review import Quarter
from compliance.export import verify_manifest
from testkit.example_site import SECRETS, example_site

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Taipei")


def roomguard(*args: str, state: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "roomguard", *args, "--state-dir", str(state)],
        cwd=ROOT,
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The example site, a state dir with the demo dataset imported, and the dataset's folder."""
    base = tmp_path_factory.mktemp("access")
    site, _ = example_site(base / "site.yaml")
    state, data = base / "state", base / "data"
    write_demo_dataset(data, datetime.now(UTC), TZ)
    for kind in ("holders", "grants", "badges"):
        roomguard("access", str(site), "import", kind, str(data / f"{kind}.csv"), state=state)
    return site, state, data


def test_importing_the_same_files_again_changes_nothing(room: tuple[Path, Path, Path]) -> None:
    site, state, data = room
    out = roomguard("access", str(site), "import", "holders", str(data / "holders.csv"), state=state)
    assert "0 created, 0 updated" in out.stdout
    out = roomguard("access", str(site), "import", "grants", str(data / "grants.csv"), state=state)
    assert "0 created, 0 updated" in out.stdout
    out = roomguard("access", str(site), "import", "badges", str(data / "badges.csv"), state=state)
    assert ", 0 new" in out.stdout


def test_a_bad_row_imports_nothing_and_names_row_and_field(
    room: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    site, state, data = room
    lines = (data / "grants.csv").read_text(encoding="utf-8-sig").splitlines()
    lines[3] = lines[3].replace("24x7", "weekdays")
    bad = tmp_path / "grants.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    out = roomguard("access", str(site), "import", "grants", str(bad), state=state, check=False)
    assert out.returncode != 0
    assert "nothing imported" in out.stderr
    assert "row 4" in out.stderr
    assert "schedule" in out.stderr
    assert "weekdays" in out.stderr


def test_the_demo_dataset_shows_every_flag(room: tuple[Path, Path, Path]) -> None:
    site, state, _ = room
    flags = json.loads(roomguard("access", str(site), "flags", "--json", state=state).stdout)
    assert {f["code"] for f in flags} == set(FLAG_CODES)
    leaver = [f for f in flags if f["code"] == "LEAVER_ACTIVE"]
    assert [f["person_id"] for f in leaver] == ["E028"]
    one = json.loads(
        roomguard("access", str(site), "flags", "--person", "V001", "--json", state=state).stdout
    )
    assert {f["code"] for f in one} == {"UNESCORTED_VENDOR"} or "UNESCORTED_VENDOR" in {
        f["code"] for f in one
    }
    assert {f["person_id"] for f in one} == {"V001"}


def test_review_sign_off_separation_of_duties_read_only_and_export(
    room: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    site, state, _ = room
    quarter = Quarter.parse(f"{datetime.now(TZ).year}Q{(datetime.now(TZ).month - 1) // 3 + 1}", TZ).label
    out = roomguard("access", str(site), "review", "start", quarter, "--by", "機房管理人", state=state)
    review_id = out.stdout.split(":")[0]
    shown = json.loads(
        roomguard("access", str(site), "review", "show", review_id, "--json", state=state).stdout
    )
    grants = [ln["grant"]["grant_id"] for ln in shown["lines"]]
    flagged = {ln["holder"]["name"] for ln in shown["lines"] if ln["flags"]}
    assert len(grants) >= 30
    roomguard(
        "access",
        str(site),
        "review",
        "decide",
        review_id,
        "--unflagged",
        "--decision",
        "keep",
        "--by",
        "資訊主管",
        state=state,
    )
    # What is left: the flagged grants only.
    left = roomguard("access", str(site), "review", "show", review_id, "--undecided", state=state).stdout
    flagged_ids = {ln["grant"]["grant_id"] for ln in shown["lines"] if ln["flags"]}
    assert f"decided {len(grants) - len(flagged_ids)}/{len(grants)}" in left
    assert {line.split()[1] for line in left.splitlines()[2:]} == flagged_ids
    # The leaver's grant, chosen by its flag.
    out = roomguard(
        "access",
        str(site),
        "review",
        "decide",
        review_id,
        "--flag",
        "LEAVER_ACTIVE",
        "--decision",
        "revoke",
        "--reason",
        "已離職 left",
        "--by",
        "資訊主管",
        state=state,
    )
    assert out.stdout.strip().endswith("revoke for 1 grant(s)")
    wrong = roomguard(
        "access", str(site), "review", "decide", review_id, "--flag", "LEAVER", "--decision", "keep",
        "--by", "x", state=state, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "valid flags are DORMANT_90D" in wrong.stdout + wrong.stderr
    rest = [
        ln["grant"]["grant_id"]
        for ln in shown["lines"]
        if ln["flags"] and ln["grant"]["grant_id"] != "G-E028"
    ]
    roomguard(
        "access",
        str(site),
        "review",
        "decide",
        review_id,
        *rest,
        "--decision",
        "change",
        "--reason",
        "限期改善 fix within 14 days",
        "--by",
        "資訊主管",
        state=state,
    )
    # The access administrator who set the grants in the panel may not sign the review off.
    out = roomguard(
        "access",
        str(site),
        "review",
        "sign-off",
        review_id,
        "--by",
        "門禁管理員 吳",
        state=state,
        check=False,
    )
    assert out.returncode == 3
    assert "separation of duties" in out.stderr
    roomguard("access", str(site), "review", "sign-off", review_id, "--by", "資訊主管", state=state)
    out = roomguard(
        "access",
        str(site),
        "review",
        "decide",
        review_id,
        grants[0],
        "--decision",
        "revoke",
        "--reason",
        "x",
        "--by",
        "資訊主管",
        state=state,
        check=False,
    )
    assert out.returncode == 3
    assert "read-only" in out.stderr
    audit = roomguard("audit", str(site), "verify", state=state)
    assert "audit log intact" in audit.stdout

    folder = tmp_path / "export"
    files = [
        Path(p)
        for p in roomguard(
            "access", str(site), "review", "export", review_id, "--out", str(folder), state=state
        ).stdout.split()
    ]
    assert verify_manifest(folder) == []
    assert all(not (p.stat().st_mode & 0o222) for p in files)  # signed: the files are read-only
    again = roomguard(
        "access", str(site), "review", "export", review_id, "--out", str(folder), state=state, check=False
    )
    assert again.returncode == 3
    assert "already holds an export" in again.stderr
    xlsx = next(p for p in files if p.suffix == ".xlsx")
    from openpyxl import load_workbook

    assert [ws.title[:1] for ws in load_workbook(xlsx).worksheets] == ["A", "B", "C", "D", "E", "F"]
    pdf = next(p for p in files if p.suffix == ".pdf")
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True)
    flat = "".join(text.stdout.decode().split())
    for name in flagged:
        assert name in flat, name
    assert "權限明細" in flat or "例外與改善" in flat
