"""Profile edits at scale: another process's matcher takes the edit in place (no rebuild), and a burst of edits
queues one re-scoring job, not one each. Real PostgreSQL and Redis; no worker runs, so queued jobs stay queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from api.data.models import Job
from api.domain import jobs
from tests.conftest import REDIS_URL, bearer, make_test_app

SUZHOU, MIAMI, KUNSHAN = 1886760, 4164138, 1785623
PROFILE = {
    "offers": {"education": 0.9, "tourism": 0.4},
    "seeks": {"climate_environment": 1.0, "economy_employment": 0.6},
    "pref_countries": ["US"],
}


def live(client: Any, city: int) -> list[tuple[int, float]]:
    r = client.get(f"/api/v1/cities/{city}/suggestions?k=10&min_population=1")  # a filter: computed live
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["score_set"]["live"] is True
    return [(s["city"]["id"], s["score"]) for s in body["data"]]


def test_another_process_takes_a_profile_edit_in_place(db_engine: Any, database_url: str, tmp_path: Path) -> None:
    editor = make_test_app(database_url, tmp_path / "a")
    reader = make_test_app(database_url, tmp_path / "b")
    before = live(reader.test_client(), KUNSHAN)
    matchers = reader.extensions["twinning"].matchers
    assert (matchers.builds, matchers.profile_updates) == (1, 0)

    edit = {**PROFILE, "pref_countries": ["DE"]}  # Kunshan's demo profile seeks US partners; now German ones
    r = editor.test_client().put(f"/api/v1/cities/{KUNSHAN}/profile", json=edit, headers=bearer(editor, "admin"))
    assert r.status_code == 200, r.get_json()

    after = live(reader.test_client(), KUNSHAN)
    assert (matchers.builds, matchers.profile_updates) == (1, 1)  # updated in place, not rebuilt
    assert after != before  # the new preference shows
    fresh = make_test_app(database_url, tmp_path / "c")  # a process that builds the matcher from scratch
    assert live(fresh.test_client(), KUNSHAN) == after
    live(reader.test_client(), KUNSHAN)
    assert (matchers.builds, matchers.profile_updates) == (1, 1)  # nothing changed since: the cache holds

    # A new city is a change of the gazetteer: the other process rebuilds and can score it.
    town = {"name": "Neustadt-Test", "country": "DE", "latitude": 50.1, "longitude": 8.6, "population": 4000}
    r = editor.test_client().post("/api/v1/cities", json=town, headers=bearer(editor, "admin"))
    assert r.status_code == 201, r.get_json()
    assert len(live(reader.test_client(), r.get_json()["id"])) == 10
    assert matchers.builds == 2


def test_a_burst_of_profile_edits_queues_one_job(
    db_engine: Any, database_url: str, tmp_path: Path, clean_redis: None
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    client, admin = app.test_client(), bearer(app, "admin")
    ids = [client.put(f"/api/v1/cities/{c}/profile", json=PROFILE, headers=admin) for c in (KUNSHAN, SUZHOU, MIAMI)]
    assert [r.status_code for r in ids] == [200, 200, 200]
    job_ids = {r.get_json()["rescore_job"] for r in ids}
    assert len(job_ids) == 1
    with Session(db_engine) as session:
        job = session.get(Job, job_ids.pop())
        assert job is not None and job.state == "queued"
        assert job.params["city_ids"] == sorted([KUNSHAN, SUZHOU, MIAMI]) and job.total == 3
        job.state = "running"  # a worker has started it: it has read its cities, so it takes no more
        session.add(job)
        session.commit()
        started = job.id
    r = client.put(f"/api/v1/cities/{KUNSHAN}/profile", json=PROFILE, headers=admin)
    assert r.get_json()["rescore_job"] not in (None, started)


def test_start_fixes_the_cities_of_a_job_that_edits_joined(db_engine: Any, database_url: str, tmp_path: Path) -> None:
    """A job joined while queued is run with every joined city (the dispatcher reads the list under the lock)."""
    app = make_test_app(database_url, tmp_path)
    svc = app.extensions["twinning"]
    with Session(db_engine) as session:
        job = jobs.create_job(session, kind="rescore_city", city_ids=[KUNSHAN])
        session.commit()
        joined = jobs.join_queued_city_job(session, [SUZHOU], max_size=10)
        assert joined is not None and joined.id == job.id
        assert jobs.join_queued_city_job(session, list(range(1, 20)), max_size=10) is None  # too big to join
        job_id = job.id
    dispatched: list[list[int]] = []
    jobs.start(db_engine, svc.settings, svc.matchers, job_id, lambda _j, _n, ids: dispatched.append(ids))
    assert sorted(i for part in dispatched for i in part) == sorted([KUNSHAN, SUZHOU])
    with Session(db_engine) as session:
        assert jobs.join_queued_city_job(session, [MIAMI], max_size=10) is None  # running now: not joined
