"""The pages in headless Debian Chromium (Python Playwright, testkit/browser.py): the app on uvicorn over
a migrated records database with users of every role; log in through the form (and a wrong password
shows the error), each page passes axe-core with no serious or critical violation, and a screenshot of
each is kept as a test artifact ($ROOMGUARD_ARTIFACTS or tests/artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from api.app import create_app
from siteconfig.api_config import ApiConfig
from testkit.browser import axe_check, launch, login, screenshot, serious_violations, serve_app
from tests.api_support import FAST_HASHER, PASSWORD, fresh_engine, migrated_template, store_with_users

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("browser")
    engine = fresh_engine(migrated_template(folder), folder)
    store_with_users(engine)
    yield create_app(ApiConfig(), records_url=engine, state_dir=folder, hasher=FAST_HASHER)
    engine.dispose()


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = launch(playwright)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-TW")  # a fresh context: no cookies from another test
    p = context.new_page()
    yield p
    context.close()


def test_log_in_through_the_form_and_the_start_page_passes_axe(page: Page, base_url: str) -> None:
    login(page, base_url, "vera", PASSWORD)
    assert page.url == f"{base_url}/"
    assert "Vera" in page.inner_text("header")  # the status page names the user in its header
    axe_check(page, "start page 首頁")
    screenshot(page, "start-page")
    page.get_by_role("button", name="登出").click()  # zh-TW by default (English after ?lang=en)
    page.wait_for_url(f"{base_url}/login")


def test_a_wrong_password_shows_the_error_and_the_login_page_passes_axe(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    assert page.url.startswith(f"{base_url}/login")  # anonymous: sent to the login form
    axe_check(page, "login page 登入頁")
    screenshot(page, "login-page")
    login(page, base_url, "vera", "wrong-pass-1")
    alert = page.get_by_role("alert")
    assert "帳號或密碼錯誤" in alert.inner_text()
    axe_check(page, "login page with an error 登入錯誤")
    screenshot(page, "login-page-wrong-password")


def test_the_api_docs_render_from_the_box_alone_and_pass_axe(page: Page, base_url: str) -> None:
    # Every request the page makes stays on the box: an edge box may not reach a CDN (and CI cannot).
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base_url) else elsewhere.append(r.url))
    page.goto(f"{base_url}/api/v1/docs")
    page.locator(".opblock").first.wait_for(timeout=60_000)  # Swagger UI ran and read the OpenAPI
    assert page.locator(".opblock").count() > 40
    assert "roomguard" in page.locator(".info .title").inner_text()
    assert elsewhere == []
    axe_check(page, "API docs")
    screenshot(page, "api-docs")


def test_axe_finds_a_serious_violation_and_names_it(page: Page) -> None:
    """The check can fail: an image without alt text and a field without a label are named."""
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"><input id="q"></main></html>')
    with pytest.raises(AssertionError) as failure:
        axe_check(page, "bad page")
    text = str(failure.value)
    assert "image-alt" in text
    assert "label" in text


def test_screenshots_go_to_the_artifacts_directory(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMGUARD_ARTIFACTS", str(tmp_path / "art"))
    page.set_content('<html lang="en"><title>t</title><main><h1>x</h1></main></html>')
    path = screenshot(page, "one page/with odd name")
    assert path.parent == tmp_path / "art"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert serious_violations({"violations": [{"impact": "minor", "id": "x"}]}) == []
