"""The match workflow through the API: lifecycle, validation, scoping, idempotency, concurrency, expiry, audit."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import bearer, make_test_app

SUZHOU, MIAMI, KUNSHAN, XIAMEN = 1886760, 4164138, 1785623, 1790645


@pytest.fixture
def who(app: Any) -> dict[str, dict[str, str]]:
    return {
        "anonymous": {},
        "suzhou": bearer(app, "official", cities=(SUZHOU,)),
        "miami": bearer(app, "official", cities=(MIAMI,)),
        "kunshan": bearer(app, "official", cities=(KUNSHAN,)),
        "coord": bearer(app, "coordinator", name="coord"),
        "coord2": bearer(app, "coordinator", name="coord2"),
        "coord_de": bearer(app, "coordinator", countries=("DE",)),
        "admin": bearer(app, "admin"),
    }


def propose(client: Any, headers: dict[str, str], a: int = SUZHOU, b: int = MIAMI, **extra: Any) -> Any:
    body = {"city_id": a, "partner_id": b, "message": "Ports and universities", "sectors": ["education"], **extra}
    return client.post("/api/v1/matches", json=body, headers=headers)


def decide(client: Any, headers: dict[str, str], match_id: int, action: str, note: str = "", **extra: Any) -> Any:
    body = {"action": action, "note": note, **extra}
    return client.post(f"/api/v1/matches/{match_id}/decisions", json=body, headers=headers)


def test_whole_lifecycle_to_partnership(client: Any, who: dict[str, dict[str, str]]) -> None:
    r = propose(client, who["suzhou"])
    assert r.status_code == 201, r.get_json()
    m = r.get_json()
    assert r.headers["Location"].endswith(f"/api/v1/matches/{m['id']}")
    assert m["status"] == "proposed" and m["proposed_by"] == "test-official-1886760" and m["version"] == 1
    assert m["allowed_actions"] == ["withdraw"] and m["expires_at"]
    mid = m["id"]

    # The coordinator's queue shows it; a coordinator scoped to Germany does not see it.
    queue = client.get("/api/v1/matches?queue=true", headers=who["coord"]).get_json()
    assert [x["id"] for x in queue["data"]] == [mid]
    assert client.get("/api/v1/matches?queue=true", headers=who["coord_de"]).get_json()["count"] == 0
    assert client.get(f"/api/v1/matches/{mid}", headers=who["coord_de"]).status_code == 403
    assert client.get(f"/api/v1/matches/{mid}", headers=who["kunshan"]).status_code == 403
    assert client.get("/api/v1/matches", headers=who["anonymous"]).status_code == 401

    # Officials cannot review; the partner cannot confirm before a coordinator accepts.
    assert decide(client, who["suzhou"], mid, "accept").status_code == 403
    r = decide(client, who["miami"], mid, "confirm")
    assert r.status_code == 409 and r.get_json()["error"]["current"] == {"id": mid, "status": "proposed", "version": 1}

    r = decide(client, who["coord"], mid, "review", "looking at it")
    assert r.status_code == 200 and r.get_json()["status"] == "under_review"
    assert decide(client, who["coord"], mid, "reject").status_code == 422  # a rejection says why
    r = decide(client, who["coord"], mid, "accept", "Strong fit in education", expected_version=2)
    m = r.get_json()
    assert r.status_code == 200 and m["status"] == "accepted" and m["reviewer"] == "coord"
    assert m["decision_note"] == "Strong fit in education"

    # No accepting or rejecting an accepted match; the proposer cannot confirm for the partner.
    assert decide(client, who["coord2"], mid, "reject", "no").status_code == 409
    assert decide(client, who["suzhou"], mid, "confirm").status_code == 403
    assert client.get(f"/api/v1/matches/{mid}", headers=who["miami"]).get_json()["allowed_actions"] == [
        "confirm",
        "decline",
    ]
    r = decide(client, who["miami"], mid, "confirm", "Delighted")
    m = r.get_json()
    assert r.status_code == 200 and m["status"] == "confirmed" and m["partnership_id"]
    # Repeating the same decision is harmless.
    again = decide(client, who["miami"], mid, "confirm", "Delighted")
    assert again.status_code == 200 and again.get_json()["version"] == m["version"]

    hist = m["history"]
    assert [(h["actor"], h["from_status"], h["to_status"]) for h in hist] == [
        ("test-official-1886760", None, "proposed"),
        ("coord", "proposed", "under_review"),
        ("coord", "under_review", "accepted"),
        ("test-official-4164138", "accepted", "confirmed"),
    ]
    assert hist[2]["note"] == "Strong fit in education" and all(h["at"] for h in hist)

    parts = client.get(f"/api/v1/partnerships?city={SUZHOU}&per_page=200").get_json()["data"]
    mine = [p for p in parts if MIAMI in (p["city_a"]["id"], p["city_b"]["id"])]
    assert len(mine) == 1 and mine[0]["status"] == "active" and mine[0]["sectors"] == ["education"]
    assert mine[0]["source"] == "match"
    # The pair is now partners: no new proposal, and Miami leaves Suzhou's suggestions.
    assert propose(client, who["suzhou"]).status_code == 409
    sugg = client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=30").get_json()["data"]
    assert MIAMI not in [s["city"]["id"] for s in sugg]


def test_list_filters_and_scoping(client: Any, who: dict[str, dict[str, str]]) -> None:
    a = propose(client, who["suzhou"]).get_json()["id"]
    b = propose(client, who["kunshan"], KUNSHAN, XIAMEN).get_json()["id"]
    decide(client, who["coord"], b, "reject", "too close to each other")

    def ids(headers: dict[str, str], qs: str = "") -> list[int]:
        r = client.get(f"/api/v1/matches{qs}", headers=headers)
        assert r.status_code == 200, r.get_json()
        return sorted(x["id"] for x in r.get_json()["data"])

    assert ids(who["admin"]) == sorted([a, b])
    assert ids(who["suzhou"]) == [a] and ids(who["miami"]) == [a] and ids(who["kunshan"]) == [b]
    assert ids(who["admin"], "?status=rejected") == [b]
    assert ids(who["admin"], "?status=proposed,rejected") == sorted([a, b])
    assert ids(who["admin"], f"?city={XIAMEN}") == [b]
    assert ids(who["admin"], "?country=US") == [a]
    assert ids(who["coord"], "?queue=true") == [a]
    assert client.get("/api/v1/matches?status=bogus", headers=who["admin"]).status_code == 422
    m = client.get(f"/api/v1/matches/{b}", headers=who["kunshan"]).get_json()
    assert m["status"] == "rejected" and m["reason"] == "too close to each other"


def test_proposal_validation(client: Any, who: dict[str, dict[str, str]]) -> None:
    assert propose(client, who["suzhou"], SUZHOU, SUZHOU).status_code == 422
    r = propose(client, who["suzhou"], SUZHOU, 42)  # an unknown city in the body: invalid input naming the field
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "partner_id"
    assert propose(client, who["suzhou"], sectors=["not_a_sector"]).status_code == 422
    assert propose(client, who["miami"]).status_code == 403  # Miami's official cannot propose for Suzhou
    assert propose(client, who["suzhou"], SUZHOU, 2846939).status_code == 409  # Riesa: already partners
    assert propose(client, who["suzhou"]).status_code == 201
    r = propose(client, who["miami"], MIAMI, SUZHOU)  # the same pair the other way round
    assert r.status_code == 409 and "open match" in r.get_json()["error"]["message"]
    assert decide(client, who["coord"], 999999, "accept").status_code == 404
    r = client.post("/api/v1/matches/1/decisions", json={"action": "approve"}, headers=who["coord"])
    assert r.status_code == 422
    # No endpoint edits or deletes a match or its history.
    assert client.delete("/api/v1/matches/1", headers=who["admin"]).status_code == 405
    assert client.put("/api/v1/matches/1", json={}, headers=who["admin"]).status_code == 405


def test_withdraw_and_decline(client: Any, who: dict[str, dict[str, str]]) -> None:
    a = propose(client, who["suzhou"]).get_json()["id"]
    assert decide(client, who["miami"], a, "withdraw").status_code == 403
    assert decide(client, who["suzhou"], a, "withdraw", "changed our mind").get_json()["status"] == "withdrawn"
    b = propose(client, who["suzhou"]).get_json()["id"]  # a withdrawn pair may be proposed again
    decide(client, who["coord"], b, "accept", "ok")
    assert decide(client, who["miami"], b, "decline").status_code == 422
    r = decide(client, who["miami"], b, "decline", "we already have a partner in Jiangsu")
    assert r.get_json()["status"] == "declined" and r.get_json()["partnership_id"] is None
    r = propose(client, who["suzhou"])
    assert r.status_code == 409 and "rejected or declined" in r.get_json()["error"]["message"]


def test_rejected_pair_is_not_suggested_again(app: Any, client: Any, who: dict[str, dict[str, str]]) -> None:
    before = [s["city"]["id"] for s in client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()["data"]]
    target = before[0]
    mid = propose(client, who["suzhou"], SUZHOU, target).get_json()["id"]
    decide(client, who["coord"], mid, "reject", "not a priority this year")
    after = [s["city"]["id"] for s in client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()["data"]]
    assert target not in after and len(after) == 10
    # The other side does not get it suggested either; with no cooldown it comes back.
    rev = client.get(f"/api/v1/cities/{target}/suggestions?k=50").get_json()["data"]
    assert SUZHOU not in [s["city"]["id"] for s in rev]
    app.extensions["twinning"].settings.MATCH_COOLDOWN_DAYS = 0
    back = [s["city"]["id"] for s in client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()["data"]]
    assert target in back


def test_expiry_records_the_reason(app: Any, client: Any, who: dict[str, dict[str, str]]) -> None:
    engine = app.extensions["twinning"].engine
    a = propose(client, who["suzhou"]).get_json()["id"]
    b = propose(client, who["kunshan"], KUNSHAN, XIAMEN).get_json()["id"]
    decide(client, who["coord"], b, "accept", "fine")
    with engine.begin() as conn:
        conn.execute(text("UPDATE match SET expires_at = now() - interval '1 day'"))
    m = client.get(f"/api/v1/matches/{a}", headers=who["suzhou"]).get_json()  # checked on read
    assert m["status"] == "expired" and "no coordinator decided within 30 days" in m["reason"]
    assert m["history"][-1]["actor"] == "system" and m["history"][-1]["from_status"] == "proposed"
    # The command line (and the Celery beat task) expire the rest.
    from sqlmodel import Session

    from api.domain.workflow import expire_due

    with Session(engine) as s:
        assert expire_due(s, app.extensions["twinning"].settings) == [b]
        assert expire_due(s, app.extensions["twinning"].settings) == []
    m = client.get(f"/api/v1/matches/{b}", headers=who["kunshan"]).get_json()
    assert m["status"] == "expired" and "did not confirm" in m["reason"]
    r = decide(client, who["admin"], b, "confirm")
    assert r.status_code == 409 and r.get_json()["error"]["current"]["status"] == "expired"


def test_audit_trail_is_append_only(app: Any, client: Any, who: dict[str, dict[str, str]]) -> None:
    mid = propose(client, who["suzhou"]).get_json()["id"]
    engine = app.extensions["twinning"].engine
    for sql in ("UPDATE matchevent SET note = 'forged'", "DELETE FROM matchevent"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    hist = client.get(f"/api/v1/matches/{mid}", headers=who["suzhou"]).get_json()["history"]
    assert len(hist) == 1 and hist[0]["note"] == "Ports and universities"


def test_two_coordinators_decide_at_once_exactly_one_wins(
    app: Any, database_url: str, tmp_path: Any, who: dict[str, dict[str, str]]
) -> None:
    """Two app instances (two connection pools) decide the same match at the same moment, on PostgreSQL.

    A third connection holds the row lock while both requests read the match and reach their UPDATE, so both
    decide from the same version; when the lock is released exactly one UPDATE matches and the other gets 409.
    """
    client = app.test_client()
    mid = propose(client, who["suzhou"]).get_json()["id"]
    apps = [make_test_app(database_url, tmp_path), make_test_app(database_url, tmp_path)]
    results: dict[str, Any] = {}

    def run(i: int, headers: dict[str, str], action: str, note: str) -> None:
        r = decide(apps[i].test_client(), headers, mid, action, note)
        results[action] = (r.status_code, r.get_json())

    engine = app.extensions["twinning"].engine
    with engine.connect() as locker:
        tx = locker.begin()
        locker.execute(text("SELECT id FROM match WHERE id = :id FOR UPDATE"), {"id": mid})
        threads = [
            threading.Thread(target=run, args=(0, who["coord"], "accept", "yes")),
            threading.Thread(target=run, args=(1, who["coord2"], "reject", "no")),
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)  # both requests are now waiting for the row lock
        tx.commit()
        for t in threads:
            t.join(30)
    codes = sorted(code for code, _ in results.values())
    assert codes == [200, 409], results
    winner = next(a for a, (code, _) in results.items() if code == 200)
    loser = next(body for code, body in results.values() if code == 409)
    final = client.get(f"/api/v1/matches/{mid}", headers=who["admin"]).get_json()
    assert final["status"] == {"accept": "accepted", "reject": "rejected"}[winner]
    assert loser["error"]["current"] == {"id": mid, "status": final["status"], "version": 2}
    assert len(final["history"]) == 2  # one proposal, one decision


def test_same_decision_at_once_by_two_coordinators(
    app: Any, database_url: str, tmp_path: Any, who: dict[str, dict[str, str]]
) -> None:
    """Many concurrent accepts (no lock choreography): one 200, the rest 409, one audit event."""
    client = app.test_client()
    mid = propose(client, who["suzhou"]).get_json()["id"]
    heads = [who["coord"], who["coord2"], who["admin"], bearer(app, "coordinator", name="coord3")]
    apps = [make_test_app(database_url, tmp_path) for _ in heads]
    barrier = threading.Barrier(len(heads))
    codes: list[int] = []

    def run(i: int) -> None:
        c = apps[i].test_client()
        barrier.wait()
        codes.append(decide(c, heads[i], mid, "accept", "ok").status_code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(heads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200] + [409] * (len(heads) - 1)
    assert len(client.get(f"/api/v1/matches/{mid}", headers=who["admin"]).get_json()["history"]) == 2


def test_cli_users_create_token_revoke(
    app: Any, client: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from api.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.setenv("TWINNING_MIGRATE_ON_START", "0")
    monkeypatch.setenv("TWINNING_MODEL_PATH", str(tmp_path / "none.joblib"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["users", "create", "--name", "li", "--role", "official", "--city", "Suzhou"])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("tw_")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).get_json()["cities"] == [SUZHOU]
    r = runner.invoke(main, ["users", "create", "--name", "co", "--role", "coordinator", "--country", "CN"])
    co = {"Authorization": f"Bearer {r.output.strip().splitlines()[-1]}"}
    mid = propose(client, headers).get_json()["id"]
    assert decide(client, co, mid, "accept", "ok").status_code == 200
    second = runner.invoke(main, ["users", "token", "li"]).output.strip()
    assert second.startswith("tw_") and second != token
    assert runner.invoke(main, ["users", "revoke", "li"]).exit_code == 0
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    r = runner.invoke(main, ["users", "create", "--name", "x", "--role", "official"])
    assert r.exit_code != 0 and "needs at least one city" in r.output
    assert runner.invoke(main, ["matches", "expire"]).output.startswith("expired 0")
