"""The status page, its forms, the record form, an access review and the door display in headless
Debian Chromium (testkit/browser.py) over the example site with a fixed live snapshot: what a person
sees and clicks, every page checked by axe-core (no serious or critical violation) and screenshotted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright

from api.app import create_app
from api.live_model import StaticLive
from siteconfig.api_config import ApiConfig
from siteconfig.config import load_site
from testkit.browser import axe_check, launch, login, screenshot, serve_app
from testkit.example_site import example_site
from tests.api_support import ADMIN_CLI, FAST_HASHER, PASSWORD, T0, Clock, fresh_engine, migrated_template
from tests.api_support import store_with_users as users
from tests.test_api_pages import NOW, Env, fire_alert, roster, snapshot, start

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@dataclass
class Served:
    url: str
    alert: int
    review: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("pages")
    site = load_site(example_site(folder / "site.yaml")[0])
    engine = fresh_engine(migrated_template(folder), folder)
    users(engine).add_user("ivan", PASSWORD, ["approver"], ADMIN_CLI, T0, display_name="Ivan")
    # No reload while a test clicks (the page's own refresh is checked in test_api_pages).
    settings = ApiConfig(page_refresh_s=3600)
    app: FastAPI = create_app(
        settings, records_url=engine, state_dir=folder, site=site, clock=Clock(NOW), hasher=FAST_HASHER,
        live=StaticLive(snapshot()),
    )  # fmt: skip
    env = Env(TestClient(app), engine, Clock(NOW), site, app)
    roster(env)
    alert = fire_alert(env)
    review = start(env)
    with serve_app(app) as url:
        yield Served(url, alert, review)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-TW")
    p = context.new_page()
    yield p
    context.close()


def test_the_operator_sees_the_readings_and_acknowledges_the_alert(page: Page, served: Served) -> None:
    login(page, served.url, "otto", PASSWORD)
    row = page.locator("#device-th-a01")
    assert "23.5" in row.inner_text()
    assert "正常" in row.inner_text()
    assert "資料過時" in page.locator("#device-th-a06").inner_text()
    axe_check(page, "status page 狀態頁")
    screenshot(page, "pages-status")
    alert = page.locator(f"#alert-{served.alert}")
    alert.get_by_label("備註").fill("已通知空調廠商")
    alert.get_by_role("button", name="確認").click()
    page.wait_for_url(re.compile(r"msg=flash\.acked"))
    assert "已確認告警" in page.get_by_role("status").first.inner_text()
    assert "otto" in page.locator(f"#alert-{served.alert}").inner_text()
    axe_check(page, "status page after an ack 確認後")
    page.goto(f"{served.url}/?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    axe_check(page, "status page in English")
    screenshot(page, "pages-status-en")


def test_the_operator_records_a_generator_test(page: Page, served: Served) -> None:
    login(page, served.url, "otto", PASSWORD, next="/records/new/generator_test")
    axe_check(page, "generator test form 發電機測試表單")
    page.locator("#f-device").fill("gen-1")
    page.locator("#f-started_at").fill("2026-12-01T10:00")
    page.locator("#f-on_load_minutes").fill("42")
    page.locator("#f-trigger").select_option("test_mode")
    page.locator("#f-counts").select_option("true")
    screenshot(page, "pages-record-form")
    page.get_by_role("button", name="儲存").click()
    page.wait_for_url(re.compile(r"msg=flash\.recorded"))
    assert "已儲存紀錄" in page.get_by_role("status").first.inner_text()
    page.goto(f"{served.url}/")
    assert "42.0 min" in page.locator("#h-tests").locator("xpath=..").inner_text()


def test_the_review_is_refused_to_the_implementer_and_signed_by_the_approver(
    page: Page, served: Served
) -> None:
    login(page, served.url, "ivan", PASSWORD, next=f"/access/reviews/{served.review}")
    axe_check(page, "access review 權限覆核")
    for grant in ("G1", "G2"):  # decide every line: keep (the first choice)
        page.locator(f"#line-{grant}").get_by_role("button", name="送出決定").click()
        page.wait_for_url(re.compile(rf"msg=flash\.decided#line-{grant}"))
    assert page.locator("tbody").get_by_text("未覆核").count() == 0
    page.get_by_role("button", name="簽核").click()
    page.wait_for_load_state()
    refusal = page.get_by_role("alert").inner_text()
    assert "職責分離" in refusal
    axe_check(page, "review refused 覆核被拒")
    screenshot(page, "pages-review-refused")
    page.get_by_role("button", name="登出").click()
    login(page, served.url, "april", PASSWORD, next=f"/access/reviews/{served.review}")
    page.get_by_role("button", name="簽核").click()
    page.wait_for_url(re.compile(r"msg=flash\.signed"))
    assert "覆核已簽核" in page.get_by_role("status").first.inner_text()
    axe_check(page, "review signed off 已簽核")


def test_the_door_display_shows_the_duty_operator_without_a_login(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/door/mr1")
    main = page.inner_text("main")
    assert "王小明" in main
    assert "0912-345-678" in main
    axe_check(page, "door display 門口看板")
    screenshot(page, "pages-door")
    page.get_by_role("link", name="English").click()
    assert "On duty now" in page.inner_text("main")
    axe_check(page, "door display in English")


def test_a_room_that_does_not_exist_is_a_404_page(page: Page, served: Served) -> None:
    response = page.goto(f"{served.url}/door/nope")
    assert response is not None
    assert response.status == 404
    axe_check(page, "404 page")


def test_the_auditor_browses_and_verifies_the_audit_log(page: Page, served: Served) -> None:
    login(page, served.url, "audrey", PASSWORD, next="/audit")
    assert page.get_by_role("link", name="稽核軌跡").count() == 1  # in the menu for the auditor
    rows = page.locator("tbody tr")
    assert rows.count() >= 3  # the logins, the roster, the review's start at least
    page.get_by_role("button", name="驗證雜湊鏈").click()
    assert "雜湊鏈完整" in page.get_by_role("status").first.inner_text()
    axe_check(page, "audit log 稽核軌跡")
    screenshot(page, "pages-audit")
    page.get_by_label("動作開頭為").fill("login")
    page.get_by_role("button", name="篩選").click()
    assert all(a.startswith("login") for a in page.locator("tbody tr td:nth-child(5)").all_inner_texts())


def test_the_alert_history_page_passes_axe(page: Page, served: Served) -> None:
    login(page, served.url, "vera", PASSWORD, next="/alerts/history")
    assert page.locator("tbody tr").count() >= 2  # the fixture's alerts fired
    axe_check(page, "alert history 告警歷程")
    screenshot(page, "pages-alert-history")
    page.locator("tbody tr").first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/alerts/history\?alert=\d+"))
    axe_check(page, "one alert's history 單一告警歷程")
