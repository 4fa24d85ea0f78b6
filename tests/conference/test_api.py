"""Conference mode over the JSON API: create, register, wishes, schedule, agenda, grid, unmet, changes, proposals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conference.helpers import (
    DALLAS,
    KUNSHAN,
    MIAMI,
    PHILADELPHIA,
    SUZHOU,
    TIANJIN,
    conference_body,
    setup_conference,
)
from tests.conftest import bearer


def test_create_register_wish_schedule_and_read_the_outputs(client: Any, app: Any) -> None:
    c = setup_conference(client, app)
    cid, ids, coord = c["id"], c["delegations"], c["coord"]
    s = c["summary"]
    assert s["must_total"] == 3 and s["must_met"] == 2  # Philadelphia and Tianjin never share a slot
    assert s["objective"] >= s["greedy_objective"] > 0
    assert s["bound"] is None or s["bound"] >= s["objective"] - 1e-6
    assert {"gap", "status", "solve_s", "vs_greedy_pct"} <= set(s)

    conf = client.get(f"/api/v1/conferences/{cid}", headers=coord).get_json()
    assert conf["delegations"] == 6 and conf["schedule"]["meetings"] == s["meetings"]

    agenda = client.get(f"/api/v1/conferences/{cid}/delegations/{ids[SUZHOU]}/agenda", headers=coord).get_json()
    partners = {m["partner"]["id"] for m in agenda["meetings"]}
    assert MIAMI in partners
    miami = next(m for m in agenda["meetings"] if m["partner"]["id"] == MIAMI)
    assert miami["interpreter"] == "zh" and miami["must"] is True  # Chinese and English: one interpreter
    assert [m["slot"] for m in agenda["meetings"]] == sorted(m["slot"] for m in agenda["meetings"])

    grid = client.get(f"/api/v1/conferences/{cid}/grid", headers=coord).get_json()
    assert grid["tables"] == 2 and len(grid["slots"]) == 3
    cells = [cell for slot in grid["slots"] for cell in slot["cells"] if cell]
    assert len(cells) == s["meetings"]
    for slot in grid["slots"]:  # nobody twice in one slot
        people = [d for cell in slot["cells"] if cell for d in (cell["a"]["id"], cell["b"]["id"])]
        assert len(people) == len(set(people))
    assert all({c["a"]["id"], c["b"]["id"]} != {MIAMI, KUNSHAN} for c in cells)  # no_thanks respected

    unmet = client.get(f"/api/v1/conferences/{cid}/unmet", headers=coord).get_json()
    assert unmet["count"] == 1
    (u,) = unmet["data"]
    assert {u["a"]["id"], u["b"]["id"]} == {PHILADELPHIA, TIANJIN} and u["reason"] == "no_common_slot"

    sched = client.get(f"/api/v1/conferences/{cid}/schedule", headers=coord).get_json()
    assert sched["count"] == s["meetings"] and sched["summary"]["status"] == s["status"]

    listed = client.get("/api/v1/conferences", headers=coord).get_json()
    assert cid in [x["id"] for x in listed["data"]]


def test_suggestions_for_wishes_have_reasons_and_sectors(client: Any, app: Any) -> None:
    c = setup_conference(client, app, schedule=False)
    cid, ids, coord = c["id"], c["delegations"], c["coord"]
    r = client.get(f"/api/v1/conferences/{cid}/delegations/{ids[TIANJIN]}/suggestions", headers=coord)
    assert r.status_code == 200
    rows = r.get_json()["data"]
    assert len(rows) == 5 and rows == sorted(rows, key=lambda x: -x["score"])
    assert all(x["sectors"] and x["sectors"][0]["reason"] for x in rows)
    assert all(x["components"] for x in rows)
    dallas = next(x for x in rows if x["city"]["id"] == DALLAS)
    assert dallas["partners"] is True and dallas["wish"] == "follow_up"


def test_roles(client: Any, app: Any) -> None:
    coord = bearer(app, "coordinator")
    li = bearer(app, "official", cities=(SUZHOU,))
    assert client.get("/api/v1/conferences").status_code == 401
    r = client.post("/api/v1/conferences", json=conference_body(), headers=li)
    assert r.status_code == 403 and r.get_json()["error"]["status"] == 403
    cid = client.post("/api/v1/conferences", json=conference_body(), headers=coord).get_json()["id"]
    url = f"/api/v1/conferences/{cid}/delegations"
    r = client.post(url, json={"city_id": MIAMI}, headers=li)
    assert r.status_code == 403 and r.get_json()["error"]["fields"][0]["field"] == "city_id"
    r = client.post(url, json={"city_id": SUZHOU}, headers=li)
    assert r.status_code == 201 and r.get_json()["languages"] == ["zh"]
    suzhou = r.get_json()["id"]
    miami = client.post(url, json={"city_id": MIAMI}, headers=coord).get_json()["id"]  # coordinators: any place
    # The official speaks for Suzhou only.
    body = {"wishes": [{"delegation_id": suzhou, "wish": "must_meet"}]}
    assert client.put(f"{url}/{miami}/wishes", json=body, headers=li).status_code == 403
    body = {"wishes": [{"delegation_id": miami, "wish": "must_meet"}]}
    assert client.put(f"{url}/{suzhou}/wishes", json=body, headers=li).status_code == 200
    assert client.post(f"{url}/{miami}/cancel", headers=li).status_code == 403
    # Organisers schedule and record lost slots.
    assert client.post(f"/api/v1/conferences/{cid}/schedule", json={"time_limit": 1}, headers=li).status_code == 403
    slot = client.get(f"/api/v1/conferences/{cid}", headers=li).get_json()["slots"][0]["id"]
    assert client.post(f"/api/v1/conferences/{cid}/slots/{slot}/lose", headers=li).status_code == 403


def test_validation_errors_are_4xx_json_naming_the_field(client: Any, app: Any) -> None:
    coord = bearer(app, "coordinator")

    def field_of(r: Any, status: int = 422) -> str:
        assert r.status_code == status, r.get_json()
        return r.get_json()["error"]["fields"][0]["field"]

    bad_slot = conference_body()
    bad_slot["slots"][1]["ends_at"] = "2026-11-10T09:00:00+08:00"
    assert field_of(client.post("/api/v1/conferences", json=bad_slot, headers=coord)) == "slots.1.ends_at"
    naive = conference_body()
    naive["slots"][0]["starts_at"] = "2026-11-10T09:00:00"
    assert field_of(client.post("/api/v1/conferences", json=naive, headers=coord)) == "slots.0.starts_at"
    body = conference_body(timezone="Mars/Olympus")
    assert field_of(client.post("/api/v1/conferences", json=body, headers=coord)) == "timezone"
    body = conference_body(ends_on="2026-11-01")
    assert field_of(client.post("/api/v1/conferences", json=body, headers=coord)) == "ends_on"
    body = conference_body(slots=[])
    assert field_of(client.post("/api/v1/conferences", json=body, headers=coord)) == "slots"
    body = conference_body()
    body["slots"][0]["interpreters"] = {"zh": -1}
    assert field_of(client.post("/api/v1/conferences", json=body, headers=coord)) == "slots.0.interpreters"

    cid = client.post("/api/v1/conferences", json=conference_body(), headers=coord).get_json()["id"]
    url = f"/api/v1/conferences/{cid}/delegations"
    assert field_of(client.post(url, json={"city_id": 42}, headers=coord)) == "city_id"
    assert field_of(client.post(url, json={"city_id": SUZHOU, "slot_ids": [999999]}, headers=coord)) == "slot_ids"
    assert field_of(client.post(url, json={"city_id": SUZHOU, "languages": ["Chinese!"]}, headers=coord)) == "languages"
    assert field_of(client.post(url, json={"city": SUZHOU}, headers=coord)) in {"city_id", "city"}
    suzhou = client.post(url, json={"city_id": SUZHOU}, headers=coord).get_json()["id"]
    assert field_of(client.post(url, json={"city_id": SUZHOU}, headers=coord), 409) == "city_id"
    miami = client.post(url, json={"city_id": MIAMI}, headers=coord).get_json()["id"]
    wishes = f"{url}/{suzhou}/wishes"
    r = client.put(wishes, json={"wishes": [{"delegation_id": 999999, "wish": "must_meet"}]}, headers=coord)
    assert field_of(r) == "wishes.0.delegation_id"
    r = client.put(wishes, json={"wishes": [{"delegation_id": miami, "wish": "maybe"}]}, headers=coord)
    assert field_of(r) == "wishes.0.wish"
    r = client.put(wishes, json={"wishes": [{"delegation_id": miami, "wish": "follow_up"}]}, headers=coord)
    assert field_of(r) == "wishes.0.wish"  # Suzhou and Miami are not partners yet
    r = client.post(f"/api/v1/conferences/{cid}/schedule", json={"time_limit": 0}, headers=coord)
    assert field_of(r) == "time_limit"
    assert client.get("/api/v1/conferences/999999", headers=coord).status_code == 404
    assert client.get(f"{url}/999999/agenda", headers=coord).status_code == 404
    r = client.post(f"/api/v1/conferences/{cid}/delegations", data="nope", headers=coord)
    assert 400 <= r.status_code < 500 and "error" in r.get_json()


def test_a_cancellation_keeps_every_unaffected_meeting(client: Any, app: Any) -> None:
    c = setup_conference(client, app)
    cid, ids, coord = c["id"], c["delegations"], c["coord"]
    before = client.get(f"/api/v1/conferences/{cid}/schedule", headers=coord).get_json()["data"]
    gone = ids[KUNSHAN]
    unaffected = {
        (m["id"], m["slot_id"], m["table"])
        for m in before
        if gone not in (m["a"]["delegation_id"], m["b"]["delegation_id"])
    }
    r = client.post(f"/api/v1/conferences/{cid}/delegations/{gone}/cancel", headers=coord)
    assert r.status_code == 200, r.get_json()
    info = r.get_json()["schedule"]
    assert info["kind"] == "reschedule" and info["kept"] >= len(unaffected)
    after = client.get(f"/api/v1/conferences/{cid}/schedule", headers=coord).get_json()["data"]
    assert unaffected <= {(m["id"], m["slot_id"], m["table"]) for m in after}
    assert all(gone not in (m["a"]["delegation_id"], m["b"]["delegation_id"]) for m in after)
    unmet = client.get(f"/api/v1/conferences/{cid}/unmet", headers=coord).get_json()["data"]
    assert {"cancelled", "no_common_slot"} == {u["reason"] for u in unmet}

    # A lost slot: its meetings go, the others stay where they are.
    lost = c["slots"][2]
    keep = {(m["id"], m["slot_id"], m["table"]) for m in after if m["slot_id"] != lost}
    r = client.post(f"/api/v1/conferences/{cid}/slots/{lost}/lose", headers=coord)
    assert r.status_code == 200
    final = client.get(f"/api/v1/conferences/{cid}/schedule", headers=coord).get_json()["data"]
    assert keep <= {(m["id"], m["slot_id"], m["table"]) for m in final}
    assert all(m["slot_id"] != lost for m in final)


def test_agenda_ics_has_one_event_per_meeting_with_the_right_times(client: Any, app: Any) -> None:
    from icalendar import Calendar

    c = setup_conference(client, app)
    cid, ids, coord = c["id"], c["delegations"], c["coord"]
    url = f"/api/v1/conferences/{cid}/delegations/{ids[SUZHOU]}/agenda"
    meetings = client.get(url, headers=coord).get_json()["meetings"]
    r = client.get(url + ".ics", headers=coord)
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    cal = Calendar.from_ical(r.data)
    events = list(cal.walk("VEVENT"))
    assert len(events) == len(meetings) >= 1
    for ev, m in zip(sorted(events, key=lambda e: e.decoded("dtstart")), meetings, strict=True):
        start, end = ev.decoded("dtstart"), ev.decoded("dtend")
        assert start == datetime.fromisoformat(m["starts_at"]).astimezone(UTC)
        assert end == datetime.fromisoformat(m["ends_at"]).astimezone(UTC)
        assert m["partner"]["name"] in str(ev["summary"])
    assert datetime.fromisoformat(meetings[0]["starts_at"]).hour in (9, 10, 11)  # shown in the conference's zone


def test_a_meeting_becomes_a_match_proposal(client: Any, app: Any) -> None:
    c = setup_conference(client, app)
    cid, ids, coord = c["id"], c["delegations"], c["coord"]
    li = bearer(app, "official", cities=(SUZHOU,))
    agenda = client.get(f"/api/v1/conferences/{cid}/delegations/{ids[SUZHOU]}/agenda", headers=li).get_json()
    meeting = next(m for m in agenda["meetings"] if m["partner"]["id"] == MIAMI)
    url = f"/api/v1/conferences/{cid}/meetings/{meeting['id']}/proposal"
    assert client.post(url, json={}, headers=coord).status_code == 403  # coordinators review, they do not propose
    r = client.post(url, json={"message": "Ports and universities", "sectors": ["education"]}, headers=li)
    assert r.status_code == 201, r.get_json()
    match_id = r.get_json()["match_id"]
    match = client.get(f"/api/v1/matches/{match_id}", headers=li).get_json()
    assert match["city"]["id"] == SUZHOU and match["partner"]["id"] == MIAMI and match["status"] == "proposed"
    assert client.post(url, json={}, headers=li).status_code == 409
    # The review workflow takes over; the meeting shows the match's status.
    r = client.post(f"/api/v1/matches/{match_id}/decisions", json={"action": "accept"}, headers=coord)
    assert r.status_code == 200
    agenda = client.get(f"/api/v1/conferences/{cid}/delegations/{ids[SUZHOU]}/agenda", headers=li).get_json()
    m = next(m for m in agenda["meetings"] if m["id"] == meeting["id"])
    assert m["match_id"] == match_id and m["match_status"] == "accepted"
    # A fresh schedule would drop that link: refused (changes go through cancellations instead).
    r = client.post(f"/api/v1/conferences/{cid}/schedule", json={"time_limit": 1}, headers=coord)
    assert r.status_code == 409
