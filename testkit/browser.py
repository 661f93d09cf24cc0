"""Browser tests of the web pages: the app served by uvicorn on a free loopback port (a background
thread), Debian's Chromium driven by Python Playwright (`executable_path`: no browser download), a login
through the form, an axe-core accessibility check and screenshots kept as test artifacts.

Screenshots go to $ROOMGUARD_ARTIFACTS, else tests/artifacts/ (git-ignored); each saved path is printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from axe_playwright_python.sync_playwright import Axe
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright

from api.serving import bind, uvicorn_config

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("ROOMGUARD_CHROMIUM", "/usr/bin/chromium"))
# axe-core impact levels that fail a page (minor and moderate ones are reported, not failed).
FAILING_IMPACTS = frozenset({"serious", "critical"})
START_LIMIT_S = 30.0


def artifacts_dir() -> Path:
    """Where screenshots go: $ROOMGUARD_ARTIFACTS, else tests/artifacts/ of the checkout."""
    folder = Path(os.environ.get("ROOMGUARD_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_args() -> list[str]:
    """Chromium's flags: its sandbox cannot run as root (a CI container), so root goes without it."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


def launch(playwright: Playwright) -> Browser:
    """Headless Debian Chromium (no Playwright browser download)."""
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} not found: apt-get install chromium (scripts/bootstrap.sh)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args())


class _ThreadServer(uvicorn.Server):
    """uvicorn in a thread: no signal handlers (only the main thread may install them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def serve_app(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of `host` in a background thread; yields its base URL."""
    sock = bind(host, 0)
    port = sock.getsockname()[1]
    settings = app.state.ctx.settings
    server = _ThreadServer(uvicorn_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_LIMIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port} in {START_LIMIT_S:g} s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def login(page: Page, base_url: str, user: str, password: str, next: str = "/") -> None:
    """Log in through the login form, as a person does (fills the fields, presses the button)."""
    page.goto(f"{base_url}/login?next={next}")
    page.get_by_label(re.compile("User name")).fill(user)
    page.get_by_label(re.compile("Password")).fill(password)
    page.get_by_role("button", name=re.compile("Log in")).click()
    page.wait_for_load_state()


SCREENSHOT_TIMEOUT_MS = 120_000


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in the artifacts directory; prints where it is."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    path = artifacts_dir() / f"{safe}.png"
    # Generous: a loaded 2-core box (the suite runs beside the pipeline's processes) took over 30 s.
    page.screenshot(path=str(path), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
    print(f"screenshot 截圖: {path}")
    return path


def serious_violations(results: dict[str, Any]) -> list[str]:
    """One readable line per serious or critical axe violation: rule, impact, help, where, how to fix."""
    lines = []
    for v in results.get("violations", []):
        if v.get("impact") not in FAILING_IMPACTS:
            continue
        targets = [" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])][:5]
        rule = f"{v.get('impact')}: {v.get('id')} — {v.get('help')} ({v.get('helpUrl')})"
        lines.append(f"{rule}; at {', '.join(targets)}")
    return lines


def axe_check(page: Page, name: str | None = None) -> dict[str, Any]:
    """Run axe-core on the page; fail (AssertionError) listing every serious or critical violation."""
    results: dict[str, Any] = Axe().run(page).response
    bad = serious_violations(results)
    where = name or page.url
    assert not bad, f"accessibility 無障礙 violations on {where}:\n" + "\n".join(bad)
    return results
