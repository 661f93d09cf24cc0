"""`roomguard users …` and `roomguard api …` through the real command: users added, refused, listed,
disabled; API tokens printed once and revoked; every change in the audit log, whose chain verifies;
the served app answers over HTTPS with the site's certificate. The hidden, twice-asked password prompt
goes through typer's CliRunner (a subprocess has no terminal to hide input on)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.store import ApiStore
from records.db import make_engine, session_factory
from roomguard import app as roomguard_app
from siteconfig.api_config import LoginThrottle
from testkit.example_site import SECRETS, example_site, free_port
from testkit.services import TestPki

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return example_site(tmp_path / "site.yaml")[0]


def _password_file(tmp_path: Path, name: str, password: str) -> str:
    f = tmp_path / name
    f.write_text(password + "\n")
    return str(f)


def _store(state: Path) -> ApiStore:
    return ApiStore(session_factory(make_engine(state / "records.db")))


def test_users_are_added_refused_listed_disabled_and_audited(site: Path, tmp_path: Path) -> None:
    state, s = tmp_path / "state", str(site)
    good = _password_file(tmp_path, "pw", "機房-2026a")
    out = roomguard(
        "users", s, "add", "chen", "--role", "approver", "--role", "viewer",
        "--display-name", "陳經理", "--password-file", good, "--by", "it-admin", state=state,
    )  # fmt: skip
    assert "added 已新增 chen (approver, viewer)" in out.stdout
    weak = roomguard(
        "users", s, "add", "lin", "--role", "viewer", "--password-file",
        _password_file(tmp_path, "weak", "abcdefgh"), state=state, check=False,
    )  # fmt: skip
    assert weak.returncode == 3
    assert "must mix 2 of letters, digits, symbols" in weak.stderr
    role = roomguard(
        "users", s, "add", "lin", "--role", "root", "--password-file", good, state=state, check=False
    )
    assert role.returncode == 3
    assert "valid: viewer, operator, approver, auditor, admin" in role.stderr
    roomguard("users", s, "disable", "chen", state=state)
    listed = json.loads(roomguard("users", s, "list", "--json", state=state).stdout)
    assert [(u["username"], u["display_name"], u["roles"], u["disabled"]) for u in listed] == [
        ("chen", "陳經理", ["approver", "viewer"], True)
    ]
    roomguard("users", s, "enable", "chen", state=state)
    roomguard(
        "users",
        s,
        "passwd",
        "chen",
        "--password-file",
        _password_file(tmp_path, "pw2", "n3w+pass"),
        state=state,
    )
    assert "chen" in roomguard("users", s, state=state).stdout  # bare `users SITE` lists
    verified = roomguard("audit", s, "verify", state=state)
    assert verified.returncode == 0
    shown = roomguard("audit", s, "show", state=state).stdout
    for action in ("user.add", "user.disable", "user.enable", "user.passwd"):
        assert action in shown, shown
    assert "it-admin" in shown
    assert "n3w+pass" not in shown
    assert "機房-2026a" not in shown


def test_a_token_is_printed_once_works_and_is_revoked(site: Path, tmp_path: Path) -> None:
    state, s = tmp_path / "state", str(site)
    roomguard(
        "users", s, "add", "audrey", "--role", "auditor", "--password-file",
        _password_file(tmp_path, "pw", "audit0r-pass"), state=state,
    )  # fmt: skip
    out = roomguard("users", s, "token", "create", "evidence-sync", "--user", "audrey", state=state)
    token = out.stdout.strip()
    assert token.startswith("rgt_")
    assert "shown once" in out.stderr
    now = datetime.now(UTC)
    user = _store(state).resolve_token(token, now)
    assert user is not None
    assert user.username == "audrey"
    listed = roomguard("users", s, "token", "list", state=state).stdout
    assert "evidence-sync" in listed
    assert "active" in listed
    assert token not in listed
    roomguard("users", s, "token", "revoke", "evidence-sync", state=state)
    assert _store(state).resolve_token(token, now) is None
    again = roomguard("users", s, "token", "revoke", "evidence-sync", state=state, check=False)
    assert again.returncode == 3
    assert "already revoked" in again.stderr


def test_the_password_is_asked_twice_with_hidden_input(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = ["users", str(site), "add", "wu", "--role", "operator", "--state-dir", str(state)]
    runner = CliRunner()
    mismatch = runner.invoke(roomguard_app, argv, input="abc123x\nabc123y\n", env=SECRETS)
    assert mismatch.exit_code != 0
    assert "abc123x" not in mismatch.output  # hidden
    assert _store(state).get_user("wu") is None
    ok = runner.invoke(roomguard_app, argv, input="abc123x\nabc123x\n", env=SECRETS)
    assert ok.exit_code == 0, ok.output
    assert "abc123x" not in ok.output
    result = _store(state).login(
        "wu", "abc123x", "test", datetime.now(UTC), LoginThrottle(), timedelta(hours=1)
    )
    assert result.outcome == "ok"


@pytest.fixture
def served(site: Path, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, Path]]:
    """`roomguard api SITE` serving HTTPS with a throw-away CA's certificate for 127.0.0.1."""
    pki = TestPki(tmp_path / "pki")
    text = site.read_text() + f"api:\n  tls_cert: {pki.server_cert}\n  tls_key: {pki.server_key}\n"
    site.write_text(text)
    state, port = tmp_path / "state", free_port()
    roomguard(
        "users", str(site), "add", "vera", "--role", "viewer", "--password-file",
        _password_file(tmp_path, "pw", "view3r-pass"), state=state,
    )  # fmt: skip
    log = tmp_path / "api.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roomguard",
                "api",
                str(site),
                "--port",
                str(port),
                "--state-dir",
                str(state),
            ],
            cwd=ROOT,
            env={**os.environ, **SECRETS},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", context=context, timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, f"roomguard api exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"roomguard api not up in 60 s: {log.read_text()[-2000:]}"
                time.sleep(0.3)
        yield base, context, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_served_api_answers_over_https_and_logs_in(served: tuple[str, ssl.SSLContext, Path]) -> None:
    base, context, log = served
    with urllib.request.urlopen(f"{base}/healthz", context=context, timeout=10) as response:
        assert json.load(response) == {"status": "ok", "database": "ok"}
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    body = json.dumps({"username": "vera", "password": "view3r-pass"}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        assert json.load(response)["user"]["username"] == "vera"
        assert "HttpOnly" in response.headers["Set-Cookie"]
    with pytest.raises(urllib.error.URLError):  # a client that does not trust the CA is refused
        urllib.request.urlopen(f"{base}/healthz", context=ssl.create_default_context(), timeout=10)
    assert "view3r-pass" not in log.read_text()
