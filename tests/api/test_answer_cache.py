"""Whole stored-suggestions answers cached per process, validated by the data version (``api/data/version.py``):
an answer cached by one app instance is never served after another instance (or a worker, or a raw SQL write
through the app's engine) changed anything it depends on. Real PostgreSQL, and a SQLite file; no mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from api.data import crud, seeding, version
from api.data.models import ScoreSet
from api.domain.suggestions import suggestions_for
from api.schemas import SuggestionQuery
from tests.conftest import TEST_GAZETTEER, bearer, make_test_app

SUZHOU, MIAMI = 1886760, 4164138


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded SQLite file (migrated by the app's own migrations), shared by this module's SQLite cases."""
    path = tmp_path_factory.mktemp("answers") / "twinning.db"
    url = f"sqlite:///{path}"
    app = make_test_app(url, path.parent, MIGRATE_ON_START=True)
    engine = app.extensions["twinning"].engine
    seeding.load_all(engine, level=TEST_GAZETTEER)
    engine.dispose()
    yield url


@pytest.fixture(params=["postgres", "sqlite"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """One database for two app instances: the PostgreSQL test database (reset), or the SQLite file."""
    if request.param == "postgres":
        request.getfixturevalue("db_engine")
        return str(request.getfixturevalue("database_url"))
    return str(request.getfixturevalue("sqlite_file"))


def _suggestions(app: Any, city: int, k: int = 10) -> dict[str, Any]:
    """The answer as served, twice: the second is a cache hit (the service's, or the edge's before Flask), byte for
    byte the first."""
    client, cache, edge = app.test_client(), app.extensions["twinning"].suggestions, app.extensions["twinning_edge"]
    first = client.get(f"/api/v1/cities/{city}/suggestions?k={k}")
    assert first.status_code == 200, first.get_json()
    hits, checkouts = cache.hits + edge.responses.hits, []
    pool = app.extensions["twinning"].engine.pool

    def checkout(*_: Any) -> None:
        checkouts.append(1)

    event.listen(pool, "checkout", checkout)
    second = client.get(f"/api/v1/cities/{city}/suggestions?k={k}")
    event.remove(pool, "checkout", checkout)
    assert cache.hits + edge.responses.hits == hits + 1 and second.data == first.data
    assert second.mimetype == "application/json"
    assert checkouts == []  # a hit reads the version on its thread's own connection, and opens no session
    body = first.get_json()
    assert body["score_set"]["live"] is False
    return body


def _fresh(app: Any, city: int, k: int = 10) -> dict[str, Any]:
    """The same answer computed now, without any cache."""
    svc = app.extensions["twinning"]
    with Session(svc.engine) as session:
        c = crud.get_city(session, city_id=city)
        return suggestions_for(
            session, city=c, query=SuggestionQuery(k=k), matchers=svc.matchers, settings=svc.settings
        )


def _served(app: Any, city: int = SUZHOU) -> dict[str, Any]:
    body = _suggestions(app, city)
    assert body == _fresh(app, city)
    return body


@pytest.mark.parametrize("edge", [4096, 0], ids=["edge", "no-edge"])
def test_an_answer_cached_by_one_app_sees_every_change_made_through_another(
    shared_url: str, tmp_path: Path, edge: int
) -> None:
    editor = make_test_app(shared_url, tmp_path / "editor")
    reader = make_test_app(shared_url, tmp_path / "reader", EDGE_CACHE=edge)
    client, admin = editor.test_client(), bearer(editor, "admin")
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU, MIAMI]}, headers=admin).status_code == 202
    first = _served(reader)["data"]
    assert _suggestions(reader, MIAMI, 5)["count"] == 5  # per (city, k)

    # A rejected pair leaves the list at once.
    partner = first[0]["city"]["id"]
    mid = client.post("/api/v1/matches", json={"city_id": SUZHOU, "partner_id": partner}, headers=admin).get_json()
    r = client.post(f"/api/v1/matches/{mid['id']}/decisions", json={"action": "reject", "note": "no"}, headers=admin)
    assert r.status_code == 200, r.get_json()
    assert partner not in [s["city"]["id"] for s in _served(reader)["data"]]

    # A candidate city's edit, and its new profile.
    other = first[1]["city"]
    r = client.patch(f"/api/v1/cities/{other['id']}", json={"population": other["population"] + 1}, headers=admin)
    assert r.status_code == 200, r.get_json()
    now = {s["city"]["id"]: s["city"] for s in _served(reader)["data"]}
    assert now[other["id"]]["population"] == other["population"] + 1
    third = next(s["city"] for s in first[2:] if not s["city"]["has_profile"])
    profile = {"offers": {"education": 0.5}, "seeks": {"tourism": 0.5}}
    assert client.put(f"/api/v1/cities/{third['id']}/profile", json=profile, headers=admin).status_code == 200
    assert {s["city"]["id"]: s["city"] for s in _served(reader)["data"]}[third["id"]]["has_profile"] is True

    # A write outside the ORM, through the app's engine (the data version's listener sees every statement).
    with editor.extensions["twinning"].engine.begin() as conn:
        conn.execute(text("UPDATE city SET population = population + 5 WHERE id = :id"), {"id": other["id"]})
    now = {s["city"]["id"]: s["city"] for s in _served(reader)["data"]}
    assert now[other["id"]]["population"] == other["population"] + 6

    # A newer complete score set (the city's own profile edit re-scores it), then a plain re-score.
    before = _served(reader)["score_set"]["id"]
    own = {"offers": {"education": 0.9}, "seeks": {"economy_employment": 0.9}, "pref_countries": ["US"]}
    assert client.put(f"/api/v1/cities/{SUZHOU}/profile", json=own, headers=admin).status_code == 200
    after = _served(reader)["score_set"]["id"]
    assert after > before
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=admin).status_code == 202
    assert _served(reader)["score_set"]["id"] > after
    assert _suggestions(reader, MIAMI, 5) == _fresh(reader, MIAMI, 5)
    # with the edge cache, every repeated read was answered before Flask; without it, inside
    assert (reader.extensions["twinning_edge"].responses.hits > 0) == (edge > 0)


def test_an_excluded_partner_comes_back_when_its_cooldown_ends(
    db_engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """No write marks the end of a cooldown: the cached answer lapses by itself."""
    cooldown_s = 4.0
    app = make_test_app(database_url, tmp_path, MATCH_COOLDOWN_DAYS=cooldown_s / 86400)
    client, admin = app.test_client(), bearer(app, "admin")
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=admin).status_code == 202
    partner = _served(app)["data"][0]["city"]["id"]
    mid = client.post("/api/v1/matches", json={"city_id": SUZHOU, "partner_id": partner}, headers=admin).get_json()
    rejected = time.time()
    r = client.post(f"/api/v1/matches/{mid['id']}/decisions", json={"action": "reject", "note": "no"}, headers=admin)
    assert r.status_code == 200, r.get_json()
    assert partner not in [s["city"]["id"] for s in _suggestions(app, SUZHOU)["data"]]
    assert time.time() - rejected < cooldown_s, "the machine was too slow for this test's cooldown"
    with Session(db_engine) as session:
        at = version.current(session)
    time.sleep(max(0.0, rejected + cooldown_s + 0.5 - time.time()))
    assert partner in [s["city"]["id"] for s in _served(app)["data"]]
    with Session(db_engine) as session:
        assert version.current(session) == at  # nothing was written meanwhile


def _version(engine: Engine) -> int:
    with Session(engine) as session:
        value = version.current(session)
    assert value is not None
    return value


def test_the_version_grows_with_writes_that_change_answers_only(app: Any, db_engine: Engine) -> None:
    v = _version(db_engine)
    headers = bearer(app, "admin")  # an account and its token are part of no answer
    r = app.test_client().get(f"/api/v1/cities/{SUZHOU}", headers=headers)  # using the token writes last_used_at
    assert r.status_code == 200
    assert _version(db_engine) == v

    with Session(db_engine) as session:  # rolled back: no change
        session.execute(text("UPDATE city SET population = population + 1 WHERE id = :id"), {"id": SUZHOU})
        session.rollback()
    assert _version(db_engine) == v
    with Session(db_engine) as session:  # an ORM change, committed
        city = crud.get_city(session, city_id=SUZHOU)
        city.population += 1
        session.add(city)
        session.commit()
    assert _version(db_engine) == v + 1
    with Session(db_engine) as session:  # a score set and COPY rows (psycopg's COPY goes past SQLAlchemy)
        head = ScoreSet(status="complete", k=1)
        session.add(head)
        session.commit()
        assert _version(db_engine) == v + 2
        session.execute(text("SELECT 1"))  # a new transaction, with no write through SQLAlchemy
        row = {"score_set_id": head.id, "city_id": SUZHOU, "rank": 1, "candidate_id": MIAMI, "score": 0.5}
        crud._copy_suggestions(session, [{**row, "components": {}, "sectors": [], "distance_km": 1.0}])
        session.commit()
    assert _version(db_engine) == v + 3
    with db_engine.begin() as conn:  # the seed's driver path (COPY into a temporary table, then INSERT … SELECT)
        cols = ["code", "name", "continent", "languages"]
        row = conn.execute(text(f"SELECT {', '.join(cols)} FROM country WHERE code = 'DE'")).one()
        seeding.bulk_upsert(conn, "country", cols, [tuple(row)], ["code"], ["name"])  # the same row again
    assert _version(db_engine) == v + 4


def test_statements_that_write_answers_are_told_apart() -> None:
    writes = [
        "INSERT INTO city (id, name) VALUES (1, 'x')",
        'UPDATE "match" SET status = %(status)s',
        "DELETE FROM suggestion WHERE score_set_id = ?",
        "  insert or replace into profile (city_id) values (?)",
        "COPY suggestion (score_set_id) FROM STDIN",
        "TRUNCATE matchevent, match",
        "WITH x AS (DELETE FROM profile RETURNING 1) SELECT * FROM x",
        "MERGE INTO city USING t ON true WHEN MATCHED THEN DELETE",
        "UPDATE public.scoreset SET status = 'complete'",
        "/* a comment first */ UPDATE city SET population = 1",
    ]
    reads = [
        "SELECT version FROM data_version WHERE id = 1",
        "select 1",
        'UPDATE "user" SET name = ?',
        "UPDATE apitoken SET last_used_at = ?",
        "INSERT INTO loginattempt (key, at) VALUES (?, ?)",
        "INSERT INTO job (id) VALUES (?)",
        "COPY _bulk_city (id) FROM STDIN",
        "CREATE TEMPORARY TABLE _bulk_city (LIKE city)",
        "SAVEPOINT sa_savepoint_1",
        "UPDATE data_version SET version = version + 1 WHERE id = 1",
        "",
    ]
    assert [s for s in writes if not version.writes_data(s)] == []
    assert [s for s in reads if version.writes_data(s)] == []


# ---------------------------------------------------------------- city search answers
def _search(app: Any, q: str, **params: Any) -> tuple[dict[str, Any], str]:
    """The search's answer as served, and whether it came from the cache (``hit``/``miss``)."""
    headers = {"Accept-Language": params.pop("lang")} if "lang" in params else {}
    r = app.test_client().get("/api/v1/cities", query_string={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json(), r.headers["X-Twinning-Cache"]


def _search_fresh(app: Any, q: str, script: str | None = None, **params: Any) -> dict[str, Any]:
    from api.domain.search import city_list
    from api.schemas import CityQuery

    with Session(app.extensions["twinning"].engine) as session:
        return city_list(session, query=CityQuery(q=q, **params), script=script)


def test_a_cached_search_answer_opens_no_session_and_is_keyed_by_the_folded_query(
    shared_url: str, tmp_path: Path
) -> None:
    app = make_test_app(shared_url, tmp_path, EDGE_CACHE=0)  # the service's cache alone (the edge's: below)
    first, how = _search(app, "Köln", per_page=5)
    assert how == "miss" and first == _search_fresh(app, "Köln", per_page=5)
    checkouts: list[int] = []
    pool = app.extensions["twinning"].engine.pool

    def checkout(*_: Any) -> None:
        checkouts.append(1)

    event.listen(pool, "checkout", checkout)
    again, how = _search(app, "KOLN", per_page=5)  # the same fold: the same answer
    event.remove(pool, "checkout", checkout)
    assert how == "hit" and again == first and checkouts == []
    # Anything else the answer depends on is another answer: the page, its size, the filters, the script.
    assert _search(app, "koln", per_page=6)[1] == "miss"
    assert _search(app, "koln", per_page=5, page=2)[1] == "miss"
    assert _search(app, "koln", per_page=5, country="DE")[1] == "miss"
    hani, how = _search(app, "suzhou", per_page=3, lang="zh-CN")
    assert how == "miss" and hani == _search_fresh(app, "suzhou", "Hani", per_page=3)
    latin, how = _search(app, "suzhou", per_page=3)
    assert how == "miss" and latin == _search_fresh(app, "suzhou", per_page=3) and latin != hani
    assert _search(app, "suzhou", per_page=3, lang="zh-CN") == (hani, "hit")
    assert app.extensions["twinning"].search.hits == 2


def test_a_cached_search_answer_sees_every_change_made_through_another_app(shared_url: str, tmp_path: Path) -> None:
    editor = make_test_app(shared_url, tmp_path / "editor")
    reader = make_test_app(shared_url, tmp_path / "reader")
    client, admin = editor.test_client(), bearer(editor, "admin")
    for q in ("s", "su", "suzhou"):  # stored prefix pages, and a full query
        assert _search(reader, q, per_page=10)[1] == "miss"
        assert _search(reader, q, per_page=10)[1] == "hit"
    # A new city that ranks first for all three.
    body = {"name": "Suzhouville", "country": "CN", "latitude": 31.0, "longitude": 120.0, "population": 99_000_000}
    r = client.post("/api/v1/cities", json=body, headers=admin)
    assert r.status_code == 201, r.get_json()
    made = r.get_json()["id"]
    for q in ("s", "su", "suzhou"):
        now, how = _search(reader, q, per_page=10)
        assert how == "miss" and now == _search_fresh(reader, q, per_page=10), q
        assert made in [c["id"] for c in now["data"]], q  # first for "s"; after exact matches ("Su", "Suzhou")
    assert _search(reader, "s", per_page=10)[0]["data"][0]["id"] == made
    # Its population (it leaves the top) and its profile (has_profile).
    assert client.patch(f"/api/v1/cities/{made}", json={"population": 0}, headers=admin).status_code == 200
    assert made not in [c["id"] for c in _search(reader, "s", per_page=10)[0]["data"]]
    profile = {"offers": {"education": 0.5}, "seeks": {"tourism": 0.5}}
    assert client.put(f"/api/v1/cities/{SUZHOU}/profile", json=profile, headers=admin).status_code == 200
    now, how = _search(reader, "suzhou", per_page=10)
    assert how == "miss" and now == _search_fresh(reader, "suzhou", per_page=10)
    assert next(c for c in now["data"] if c["id"] == SUZHOU)["has_profile"] is True


def test_the_search_cache_can_be_turned_off(shared_url: str, tmp_path: Path) -> None:
    app = make_test_app(shared_url, tmp_path, SEARCH_CACHE=0)
    assert [_search(app, "koln")[1] for _ in range(3)] == ["miss"] * 3
    assert app.extensions["twinning"].search.hits == 0


# ---------------------------------------------------------------- whole responses at the edge (api/web/edge_cache.py)
def _flask_calls(app: Any) -> list[str]:
    """The paths of the requests that reached Flask's request handling."""
    calls: list[str] = []

    @app.before_request
    def _count() -> None:
        from flask import request

        calls.append(request.path)

    return calls


def test_a_repeated_anonymous_search_is_answered_before_flask_with_the_same_response(
    shared_url: str, tmp_path: Path
) -> None:
    app = make_test_app(shared_url, tmp_path)
    calls = _flask_calls(app)
    client = app.test_client()
    url = "/api/v1/cities?q=suzhou&per_page=3"
    first = client.get(url, headers={"Accept-Language": "zh-CN"})
    assert first.status_code == 200 and first.headers["X-Twinning-Cache"] == "miss" and len(calls) == 1
    again = client.get(url, headers={"Accept-Language": "zh-CN"})
    assert len(calls) == 1, "a repeated search reached Flask"
    assert again.status_code == 200 and again.headers["X-Twinning-Cache"] == "hit"
    assert again.data == first.data and again.get_json() == _search_fresh(app, "suzhou", "Hani", per_page=3)
    # the same headers as Flask sent (security headers included), but for the cache's own
    assert {k: v for k, v in again.headers.items() if k != "X-Twinning-Cache"} == {
        k: v for k, v in first.headers.items() if k != "X-Twinning-Cache"
    }
    assert again.headers["Content-Security-Policy"] and again.headers["X-Content-Type-Options"] == "nosniff"
    # Another language, another query string or another path is another response: through Flask.
    latin = client.get(url)
    assert latin.headers["X-Twinning-Cache"] == "miss" and latin.data != first.data and len(calls) == 2
    assert client.get(url + "&page=1").status_code == 200 and len(calls) == 3


def test_the_edge_serves_no_request_that_flask_would_refuse_or_answer_otherwise(
    shared_url: str, tmp_path: Path
) -> None:
    from api.config import MAX_HEADER_BYTES

    app = make_test_app(shared_url, tmp_path)
    calls = _flask_calls(app)
    client = app.test_client()
    url = "/api/v1/cities?q=koln&per_page=2"
    assert client.get(url).status_code == 200 and client.get(url).headers["X-Twinning-Cache"] == "hit"
    assert len(calls) == 1
    # Flask's own answers (the edge would have sent the 200): a bad token is refused on reads too, headers too
    # large are refused; a HEAD goes through Flask
    assert client.get(url, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get(url, headers={"X-Pad": "x" * MAX_HEADER_BYTES}).status_code == 431
    assert client.head(url).status_code == 200 and len(calls) == 2
    # an error is never kept: the same bad request reaches Flask each time
    for _ in range(2):
        assert client.get("/api/v1/cities?q=koln&per_page=0").status_code == 422
    assert len(calls) == 4


def test_a_response_at_the_edge_sees_every_change_made_through_another_app(shared_url: str, tmp_path: Path) -> None:
    editor = make_test_app(shared_url, tmp_path / "editor")
    reader = make_test_app(shared_url, tmp_path / "reader")
    calls = _flask_calls(reader)
    client, admin = editor.test_client(), bearer(editor, "admin")
    url = "/api/v1/cities?q=suzhou&per_page=10"
    assert reader.test_client().get(url).headers["X-Twinning-Cache"] == "miss"
    assert reader.test_client().get(url).headers["X-Twinning-Cache"] == "hit" and len(calls) == 1
    body = {"name": "Suzhou", "country": "US", "latitude": 40.0, "longitude": -75.0, "population": 99_000_000}
    r = client.post("/api/v1/cities", json=body, headers=admin)
    assert r.status_code == 201, r.get_json()
    now = reader.test_client().get(url)
    assert now.headers["X-Twinning-Cache"] == "miss" and len(calls) == 2
    assert now.get_json()["data"][0]["id"] == r.get_json()["id"]  # the new exact match, the largest


def test_the_edge_cache_can_be_turned_off(shared_url: str, tmp_path: Path) -> None:
    app = make_test_app(shared_url, tmp_path, EDGE_CACHE=0)
    calls = _flask_calls(app)
    got = [app.test_client().get("/api/v1/cities?q=koln").headers["X-Twinning-Cache"] for _ in range(3)]
    assert got == ["miss", "hit", "hit"] and len(calls) == 3  # the service's cache answers, inside Flask
