"""PostgreSQL or Redis unreachable: 503 JSON with Retry-After within 2 s (never 500), automatic recovery, and jobs
that are never left ``queued``. The outage is made with a loopback proxy in front of the real services, cut and
restored by the test (the throwaway-cluster test in test_postgres_restart.py stops a real server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy.engine import make_url
from sqlmodel import Session

from api.cli.tcp_proxy import Proxy
from api.data import crud
from api.data.db import make_engine
from api.domain import bootstrap, jobs
from tests.conftest import REDIS_URL, bearer, make_test_app

SUZHOU, MIAMI = 1886760, 4164138


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[tuple[Proxy, str]]:
    url = make_url(database_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


@pytest.fixture
def redis_proxy() -> Iterator[tuple[Proxy, str]]:
    url = make_url(REDIS_URL.replace("redis://", "postgresql://"))  # only to read host, port and database
    proxy = Proxy((url.host or "127.0.0.1", url.port or 6379))
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield proxy, f"redis://127.0.0.1:{proxy.port}/{url.database or 0}"
    proxy.close()
    client.flushdb()
    client.close()


def assert_503(r: Any, service: str) -> None:
    assert r.status_code == 503, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json and r.get_json()["error"]["service"] == service
    assert int(r.headers["Retry-After"]) > 0


def test_database_outage_answers_503_quickly_and_recovers(
    db_engine: Any, tmp_path: Any, pg_proxy: tuple[Proxy, str]
) -> None:
    proxy, url = pg_proxy
    app = make_test_app(url, tmp_path)
    client = app.test_client()
    h = bearer(app, "admin")
    assert client.get("/api/v1/cities?q=suzhou").status_code == 200
    proxy.cut()
    requests = [
        lambda: client.get("/api/v1/cities?q=suzhou"),
        lambda: client.get(f"/api/v1/cities/{SUZHOU}"),
        lambda: client.get(f"/api/v1/cities/{SUZHOU}/suggestions"),
        lambda: client.get("/api/v1/partnerships"),
        lambda: client.get("/api/v1/me", headers=h),
        lambda: client.patch(f"/api/v1/cities/{SUZHOU}", json={"population": 5}, headers=h),
        lambda: client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=h),
    ]
    for request in requests:
        t0 = time.monotonic()
        r = request()
        assert time.monotonic() - t0 < 2.5
        assert_503(r, "database")
    assert client.get("/healthz").status_code == 503
    r = client.get("/console/login")
    assert r.status_code in (200, 503)  # the login page needs no database
    proxy.restore()
    assert client.get("/api/v1/cities?q=suzhou").status_code == 200  # pre-ping replaces the dead connections
    assert client.get("/api/v1/me", headers=h).status_code == 200


def test_a_connection_lost_during_a_request_does_not_break_its_teardown(
    db_engine: Any, tmp_path: Any, pg_proxy: tuple[Proxy, str]
) -> None:
    """The database goes away after a request used its session: closing the session (a rollback on a dead
    connection) must not raise, or gunicorn answers a bare 500 (found by ``twinning bench load --fault db``)."""
    from sqlalchemy import text

    from api.web.context import close_db, db

    proxy, url = pg_proxy
    app = make_test_app(url, tmp_path)
    with app.app_context():
        assert db().execute(text("SELECT 1")).scalar_one() == 1
        proxy.cut()
        close_db()  # does not raise
    proxy.restore()
    assert app.test_client().get("/api/v1/cities?q=suzhou").status_code == 200


def test_an_in_process_job_outlives_a_database_outage(db_engine: Any, tmp_path: Any, pg_proxy: tuple[Proxy, str]):
    proxy, url = pg_proxy
    app = make_test_app(url, tmp_path, JOBS_MODE="thread")
    svc = app.extensions["twinning"]
    with Session(db_engine) as session:
        job = jobs.create_job(session, kind="rescore", city_ids=[SUZHOU, MIAMI])
        session.commit()
        job_id = job.id
    proxy.cut()
    threading.Timer(1.5, proxy.restore).start()
    jobs.run_inline(svc.engine, svc.settings, svc.matchers, job_id, backoff=(0.5,) * 10)
    with Session(db_engine) as session:
        assert crud.get_job(session, job_id=job_id).state == "succeeded"


def test_a_job_is_marked_failed_not_left_queued_when_the_database_stays_down(
    db_engine: Any, tmp_path: Any, pg_proxy: tuple[Proxy, str]
) -> None:
    """Retries exhausted while the database is down: the job is marked failed once it is back."""
    proxy, url = pg_proxy
    engine = make_engine(url)
    app = make_test_app(url, tmp_path, JOBS_MODE="thread")
    svc = app.extensions["twinning"]
    with Session(db_engine) as session:
        job_id = jobs.create_job(session, kind="rescore", city_ids=[SUZHOU]).id
        session.commit()
    proxy.cut()
    threading.Timer(2.0, proxy.restore).start()  # back after the run's retries, during the failure's retries
    try:
        jobs.run_inline(engine, svc.settings, svc.matchers, job_id, backoff=(0.3, 0.3))
        t0 = time.monotonic()
        with Session(db_engine) as session:
            job = crud.get_job(session, job_id=job_id)
        if job.state == "queued":  # the run gave up before the proxy came back; its failure is recorded after
            assert jobs.fail_eventually(engine, job_id, "x", backoff=(0.5,) * 8) and time.monotonic() - t0 < 5
        with Session(db_engine) as session:
            assert crud.get_job(session, job_id=job_id).state in {"failed", "succeeded"}
    finally:
        engine.dispose()


def test_redis_outage_answers_503_and_serve_starts_anyway(
    db_engine: Any, database_url: str, tmp_path: Any, redis_proxy: tuple[Proxy, str], monkeypatch: Any
) -> None:
    proxy, url = redis_proxy
    proxy.cut()
    app = make_test_app(
        database_url, tmp_path, JOBS_MODE="celery", REDIS_URL=url, TRAIN_ON_START=True, REDIS_TIMEOUT_S=0.5
    )
    client = app.test_client()
    h = bearer(app, "admin")
    r = client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=h)
    assert_503(r, "redis")
    with Session(db_engine) as session:
        assert crud.recent_jobs(session, limit=5) == []  # nothing half-written
    assert client.get(f"/api/v1/cities/{SUZHOU}/suggestions").status_code == 200  # reads are served
    r = client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"description": "still saved"}, headers=h)
    assert r.status_code == 200 and r.get_json()["rescore_job"] is None

    said: list[str] = []
    monkeypatch.setattr(bootstrap, "QUEUE_RETRY_S", 0.2)
    thread = bootstrap.first_start(app, echo=said.append)  # does not raise
    assert thread is not None and "Redis is down" in said[0]
    proxy.restore()
    thread.join(timeout=10)
    assert not thread.is_alive() and "Redis is back" in said[-1]
    with Session(db_engine) as session:
        assert [j.kind for j in crud.recent_jobs(session, limit=5)] == ["train"]


def test_a_connection_lost_just_before_the_commit_answers_503_and_stores_nothing(
    db_engine: Any, tmp_path: Any, database_url: str
) -> None:
    """The database drops the connection after the write and before its ``COMMIT``, where the data version is bumped
    through the driver (found by ``twinning bench load --fault db``: that error reached Flask unwrapped, a 500).
    The backend is really terminated, from another connection, at that moment."""
    import psycopg
    from sqlalchemy import event, text

    from api.data import version

    app = make_test_app(database_url, tmp_path)
    client = app.test_client()
    h = bearer(app, "admin")
    engine = app.extensions["twinning"].engine
    with engine.connect() as conn:
        before = conn.execute(text("SELECT population FROM city WHERE id = :id"), {"id": SUZHOU}).scalar_one()
    admin = make_url(database_url)
    killed: list[int] = []

    def terminate(conn: Any) -> None:  # runs before the data version's listener: the bump meets a dead connection
        if killed or not conn.info.get(version._MARK):  # once, and only a commit that bumps the version
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with psycopg.connect(
            host=admin.host, port=admin.port, user=admin.username, dbname=admin.database, autocommit=True
        ) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        killed.append(pid)

    event.remove(engine, "commit", version._commit)  # the data version's listener goes back in after this one
    event.listen(engine, "commit", terminate)
    event.listen(engine, "commit", version._commit)
    try:
        r = client.patch(f"/api/v1/cities/{SUZHOU}", json={"population": before + 1}, headers=h)
    finally:
        event.remove(engine, "commit", terminate)
    assert killed, "the request committed nothing"
    assert_503(r, "database")
    with engine.connect() as conn:  # the write did not commit
        assert conn.execute(text("SELECT population FROM city WHERE id = :id"), {"id": SUZHOU}).scalar_one() == before
    assert client.patch(f"/api/v1/cities/{SUZHOU}", json={"population": before}, headers=h).status_code == 200
