"""A small conference for the tests: six delegations, three slots, two tables, Chinese–English interpreters."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer

SUZHOU, MIAMI, KUNSHAN, PHILADELPHIA, TIANJIN, DALLAS = 1886760, 4164138, 1785623, 4560349, 1792947, 4684888
CITIES = (SUZHOU, MIAMI, KUNSHAN, PHILADELPHIA, TIANJIN, DALLAS)


def conference_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Test conference",
        "place": "Kunshan",
        "starts_on": "2026-11-10",
        "ends_on": "2026-11-10",
        "timezone": "Asia/Shanghai",
        "slots": [
            {
                "starts_at": f"2026-11-10T{h:02d}:00:00+08:00",
                "ends_at": f"2026-11-10T{h:02d}:30:00+08:00",
                "tables": 2,
                "interpreters": {"zh": 2},
            }
            for h in (9, 10, 11)
        ],
    }
    body.update(changes)
    return body


def setup_conference(client: Any, app: Any, *, schedule: bool = True) -> dict[str, Any]:
    """Create it as a coordinator, register the six delegations, state wishes, and schedule (1 s)."""
    coord = bearer(app, "coordinator")
    r = client.post("/api/v1/conferences", json=conference_body(), headers=coord)
    assert r.status_code == 201, r.get_json()
    conf = r.get_json()
    cid, slots = conf["id"], [s["id"] for s in conf["slots"]]
    ids: dict[int, int] = {}
    for city in CITIES:
        body: dict[str, Any] = {"city_id": city, "delegates": [{"name": f"Delegate of {city}", "title": "Mayor"}]}
        if city == PHILADELPHIA:
            body["slot_ids"] = [slots[0]]
        if city == TIANJIN:
            body["slot_ids"] = slots[1:]
        r = client.post(f"/api/v1/conferences/{cid}/delegations", json=body, headers=coord)
        assert r.status_code == 201, r.get_json()
        ids[city] = r.get_json()["id"]
    wishes = {
        SUZHOU: {MIAMI: "must_meet", KUNSHAN: "would_like"},
        MIAMI: {SUZHOU: "must_meet", KUNSHAN: "no_thanks"},
        KUNSHAN: {PHILADELPHIA: "must_meet"},
        PHILADELPHIA: {KUNSHAN: "must_meet", TIANJIN: "must_meet"},
        TIANJIN: {PHILADELPHIA: "must_meet", DALLAS: "follow_up"},
        DALLAS: {TIANJIN: "would_like"},
    }
    for city, ws in wishes.items():
        body = {"wishes": [{"delegation_id": ids[o], "wish": w} for o, w in ws.items()]}
        r = client.put(f"/api/v1/conferences/{cid}/delegations/{ids[city]}/wishes", json=body, headers=coord)
        assert r.status_code == 200, r.get_json()
    out = {"id": cid, "slots": slots, "delegations": ids, "coord": coord}
    if schedule:
        r = client.post(f"/api/v1/conferences/{cid}/schedule", json={"time_limit": 1}, headers=coord)
        assert r.status_code == 200, r.get_json()
        out["summary"] = r.get_json()
    return out
