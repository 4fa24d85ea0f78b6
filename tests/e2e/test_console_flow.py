"""The console in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright), against PostgreSQL.

An official of Suzhou logs in, edits the profile, sees the suggestions (chart and map) and proposes one; a
coordinator accepts it in the review queue; the partner city's official confirms; the partnership appears. An admin
starts a re-scoring job and watches its progress bar. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session
from werkzeug.serving import make_server

from api.domain.accounts import create_user
from tests.conftest import make_test_app

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
SUZHOU = 1886760
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (scripts/test.sh installs it)"),
]


@pytest.fixture
def server(db_engine: Engine, database_url: str, tmp_path: Any) -> Iterator[tuple[str, Any]]:
    """The app on a free localhost port, jobs in a background thread (so the progress bar really polls)."""
    app = make_test_app(database_url, tmp_path, JOBS_MODE="thread", RESCORE_CHUNK=1)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", app
    finally:
        srv.shutdown()
        thread.join(10)
        srv.server_close()
        _wait_for_jobs(db_engine)


def _wait_for_jobs(engine: Engine, timeout: float = 60) -> None:
    """Background jobs must finish before the next test resets the database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM job WHERE state IN ('queued', 'running')")).scalar():
                return
        time.sleep(0.2)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _user(app: Any, name: str, role: str, cities: tuple[int, ...] = ()) -> None:
    with Session(app.extensions["twinning"].engine) as s:
        create_user(s, name=name, role=role, cities=cities, password=f"{name}-pw", display_name=name.title())
        s.commit()


def _login(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(f"{name}-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def _logout(page: Any) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/console/login$"))


def _shot(page: Any, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def test_propose_accept_confirm_in_the_browser(server: tuple[str, Any], browser: Any) -> None:
    base, app = server
    _user(app, "li", "official", (SUZHOU,))
    _user(app, "coord", "coordinator")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)

    # 1. The official logs in and lands on the city's suggestions.
    page.goto(f"{base}/console/")
    page.wait_for_url(re.compile(r".*/console/login.*"))
    _shot(page, "01-login", full=False)
    page.get_by_label("User name").fill("li")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert "Wrong user name or password" in page.locator("#login-error").inner_text()
    page.get_by_label("Password").fill("li-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(rf".*/console/cities/{SUZHOU}/suggestions$"))

    # 2. … edits the profile (offers and seeks weights, preferences).
    page.get_by_role("link", name="Profile", exact=True).click()
    page.get_by_label("education: offers", exact=True).fill("0.9")
    page.get_by_label("tourism: seeks").fill("0.7")
    page.get_by_label("Countries sought").fill("US")
    page.get_by_label("Contact person").fill("Ms Li")
    _shot(page, "02-profile")
    page.get_by_role("button", name="Save profile").click()
    assert "Profile saved" in page.locator(".flash").first.inner_text()
    assert page.get_by_label("tourism: seeks").input_value() == "0.7"

    # 3. … sees the suggestions: a score-breakdown chart per suggestion, sectors with reasons, the map.
    page.get_by_role("link", name="Suggestions", exact=True).click()
    cards = page.locator("li.suggestion")
    assert cards.count() >= 5
    assert page.locator("svg.map .marker").count() == cards.count()
    assert cards.first.locator(".bar-row").count() >= 3
    _shot(page, "03-suggestions")
    page.locator("section[aria-labelledby=map-title]").screenshot(path=str(SHOTS / "03b-map.png"))
    first = cards.first
    partner_id = int((first.get_attribute("id") or "s-0")[2:])
    partner_name = first.locator("h2").inner_text().split("\n")[0].split(". ", 1)[1].split("  ")[0]
    _user(app, "partner", "official", (partner_id,))

    # … and proposes the first one.
    first.locator("summary").click()
    first.get_by_label(re.compile("Message to the coordinators")).fill("Let us work on education and tourism.")
    first.get_by_role("button", name="Send proposal").click()
    page.wait_for_url(re.compile(r".*/console/matches/\d+$"))
    match_url = page.url
    assert page.locator("#match-status").inner_text() == "Proposed"
    _shot(page, "04-match-proposed")
    _logout(page)

    # 4. A coordinator accepts it in the review queue (htmx swaps the row in place).
    _login(page, base, "coord")
    page.wait_for_url(re.compile(r".*/console/matches\?queue=1$"))
    row = page.locator("table.matches tbody tr").first
    assert partner_name.split(" ")[0] in row.inner_text()
    _shot(page, "05-review-queue")
    row.get_by_label(re.compile("Note for match")).fill("Good fit; both want education exchanges.")
    row.get_by_role("button", name="Accept").click()
    page.locator("table.matches .s-accepted").wait_for()
    _logout(page)

    # 5. The partner city's official confirms.
    _login(page, base, "partner")
    page.wait_for_url(re.compile(rf".*/console/cities/{partner_id}/suggestions$"))
    page.get_by_role("link", name=re.compile("Suzhou .*proposes a partnership")).click()
    page.wait_for_url(match_url)
    assert "Accepted" in page.locator("#match-status").inner_text()
    page.get_by_label(re.compile("^Note")).fill("We are delighted.")
    page.get_by_role("button", name="Confirm partnership").click()
    page.wait_for_url(match_url)
    assert page.locator("#match-status").inner_text() == "Confirmed — partnership"
    history = page.locator("ol.history li")
    assert history.count() == 3
    assert "coord" in history.nth(1).inner_text() and "Good fit" in history.nth(1).inner_text()
    _shot(page, "06-match-confirmed")

    # 6. The partnership appears.
    page.get_by_role("link", name=re.compile(r"partnership #\d+")).click()
    body = page.locator("body").inner_text()
    assert f'"id": {partner_id}' in body or f'"id":{partner_id}' in body
    _logout_via_console(page, base)

    # The coordinator scoped elsewhere or another official cannot see the Suzhou profile editor.
    page.goto(f"{base}/console/cities/{SUZHOU}/profile")
    assert page.locator("h1").inner_text() == "Not allowed"


def _logout_via_console(page: Any, base: str) -> None:
    page.goto(f"{base}/console/matches")
    page.wait_for_load_state()


def test_job_progress_bar_and_phone_layout(server: tuple[str, Any], browser: Any) -> None:
    base, app = server
    _user(app, "boss", "admin")
    _user(app, "li", "official", (SUZHOU,))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    _login(page, base, "boss")
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_label("Cities", exact=True).select_option("active")
    page.get_by_label(re.compile("Or only these cities")).fill("Suzhou, Miami, Kunshan, Xiamen, Tianjin, Beijing")
    page.get_by_role("button", name="Re-score now").click()
    page.wait_for_url(re.compile(r".*/console/jobs/[0-9a-f-]+$"))
    bar = page.locator("#job-bar")
    assert bar.count() == 1
    _shot(page, "07-job-progress", full=False)
    page.locator("#job-progress", has_text="Succeeded").wait_for(timeout=90_000)  # htmx polls until done
    assert page.locator("#job-bar").get_attribute("value") == "1.0"
    _shot(page, "08-job-done", full=False)
    _logout(page)

    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.set_default_timeout(30_000)
    _login(phone, base, "li")
    phone.wait_for_url(re.compile(r".*/suggestions$"))
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    _shot(phone, "09-phone-suggestions", full=False)
    # Keyboard: the skip link is the first stop and moves focus to the content.
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent") == "Skip to content"


def test_login_is_rate_limited(server: tuple[str, Any], browser: Any) -> None:
    base, app = server
    _user(app, "li", "official", (SUZHOU,))
    page = browser.new_page()
    page.set_default_timeout(20_000)
    for _ in range(app.extensions["twinning"].settings.LOGIN_MAX_FAILURES):
        page.goto(f"{base}/console/login")
        page.get_by_label("User name").fill("li")
        page.get_by_label("Password").fill("nope")
        page.get_by_role("button", name="Log in").click()
        assert "Wrong user name" in page.locator("#login-error").inner_text()
    page.get_by_label("Password").fill("li-pw")  # even the right password is refused now
    page.get_by_role("button", name="Log in").click()
    assert "Too many failed attempts" in page.locator("#login-error").inner_text()
