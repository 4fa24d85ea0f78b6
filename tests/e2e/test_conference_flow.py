"""Conference mode in a real headless Chromium (Debian's chromium via playwright), against PostgreSQL.

A coordinator has created a small conference; an official of Suzhou registers the city's delegation, marks Miami
"must meet", the coordinator schedules the meetings, and the official reads the agenda (printable, with an .ics
link) and turns the Miami meeting into a match proposal. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conference.helpers import CITIES, MIAMI, SUZHOU, conference_body
from tests.conftest import bearer
from tests.e2e.test_console_flow import CHROMIUM, _login, _logout, _shot, _user, browser, server  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (scripts/test.sh installs it)"),
]


def test_register_wish_schedule_agenda_in_the_browser(server: tuple[str, Any], browser: Any) -> None:  # noqa: F811
    base, app = server
    api = app.test_client()
    coord = bearer(app, "coordinator", name="api-coord")
    cid = api.post("/api/v1/conferences", json=conference_body(name="Browser conference"), headers=coord).get_json()[
        "id"
    ]
    others = {}
    for city in CITIES:
        if city != SUZHOU:
            r = api.post(f"/api/v1/conferences/{cid}/delegations", json={"city_id": city}, headers=coord)
            others[city] = r.get_json()["id"]
    _user(app, "li", "official", (SUZHOU,))
    _user(app, "coord", "coordinator")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)

    # 1. The official registers Suzhou's delegation.
    _login(page, base, "li")
    page.get_by_role("link", name="Conferences", exact=True).click()
    page.get_by_role("link", name="Browser conference").click()
    page.get_by_label("Place").select_option(str(SUZHOU))
    page.get_by_label("Head of delegation").fill("Ms Li")
    page.get_by_label("Title").fill("Vice Mayor")
    page.get_by_role("button", name="Register delegation").click()
    page.wait_for_url(re.compile(r".*/delegations/\d+/wishes$"))
    suzhou = int(page.url.split("/delegations/")[1].split("/")[0])

    # 2. … sees the other delegations with reasons and sectors, and marks Miami "must meet".
    cards = page.locator("li.suggestion")
    assert cards.count() == 5
    assert cards.first.locator("ul.sectors li").count() >= 1
    page.get_by_label("Wish about Miami").select_option("must_meet")
    _shot(page, "c1-wishes")
    page.get_by_role("button", name="Save wishes").click()
    assert "Wishes saved" in page.locator(".flash").first.inner_text()
    assert page.get_by_label("Wish about Miami").input_value() == "must_meet"
    body = {"wishes": [{"delegation_id": suzhou, "wish": "must_meet"}]}
    assert (
        api.put(f"/api/v1/conferences/{cid}/delegations/{others[MIAMI]}/wishes", json=body, headers=coord).status_code
        == 200
    )
    _logout(page)

    # 3. The coordinator schedules the meetings (1 s time limit).
    _login(page, base, "coord")
    page.goto(f"{base}/console/conferences/{cid}")
    page.get_by_label("Time limit (seconds)").fill("1")
    page.get_by_role("button", name="Schedule the meetings").click()
    page.wait_for_url(re.compile(rf".*/console/conferences/{cid}$"))
    assert "mutual must-meet wishes met" in page.locator("#schedule-summary").inner_text()
    _shot(page, "c2-scheduled")
    page.get_by_role("link", name="Grid of slots × tables").click()
    assert page.locator("table.grid tbody tr").count() == 3
    _shot(page, "c3-grid")
    _logout(page)

    # 4. The official reads the agenda: Miami, must meet, with an interpreter; the .ics link; a proposal.
    _login(page, base, "li")
    page.goto(f"{base}/console/conferences/{cid}/delegations/{suzhou}/agenda")
    row = page.locator("table.agenda-table tbody tr", has_text="Miami")
    assert "must meet" in row.inner_text() and "zh" in row.inner_text()
    assert page.get_by_role("link", name="Add to calendar (.ics)").get_attribute("href", timeout=5_000)
    _shot(page, "c4-agenda")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()  # the printable agenda hides the navigation
    page.emulate_media(media="screen")
    row.get_by_role("button", name=re.compile("Propose partnership")).click()
    page.wait_for_url(re.compile(r".*/console/matches/\d+$"))
    assert page.locator("#match-status").inner_text() == "Proposed"
    page.goto(f"{base}/console/conferences/{cid}/delegations/{suzhou}/agenda")
    assert "Proposed" in page.locator("table.agenda-table tbody tr", has_text="Miami").inner_text()
