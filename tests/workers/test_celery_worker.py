"""Real Celery worker processes on real Redis and PostgreSQL: a whole rescore_all, and a worker killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.conftest import REDIS_URL, make_test_app

ROOT = Path(__file__).resolve().parents[2]


def start_worker(database_url: str, tmp_path: Path, *, pool: str, name: str, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "TWINNING_MODEL_PATH": str(tmp_path / "no-model.joblib"),
        "SECRET_KEY": "test-secret",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "twinning",
            "-P",
            pool,
            "-c",
            "2",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.close()  # type: ignore[attr-defined]


def wait_job(client: Any, job_id: str, timeout: float, until: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = client.get(f"/api/v1/jobs/{job_id}").get_json()
        if (until or (lambda j: j["state"] in {"succeeded", "failed"}))(seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"job did not get there in {timeout}s: {seen}")


def city_ids(db_engine: Any, n: int) -> list[int]:
    with db_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT city_a_id FROM partnership GROUP BY city_a_id ORDER BY city_a_id LIMIT :n"), {"n": n}
        )
        return [r[0] for r in rows]


def assert_complete(db_engine: Any, job: dict[str, Any], n: int) -> None:
    """The job succeeded with every city scored once: no missing city, no duplicate (city, rank) row."""
    assert job["state"] == "succeeded" and job["done"] == job["total"] == n, job
    with db_engine.connect() as conn:
        cities = conn.execute(
            text("SELECT count(DISTINCT city_id) FROM suggestion WHERE score_set_id = :i"), {"i": job["score_set_id"]}
        ).scalar_one()
        dupes = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT city_id, rank FROM suggestion WHERE score_set_id = :i "
                "GROUP BY city_id, rank HAVING count(*) > 1) d"
            ),
            {"i": job["score_set_id"]},
        ).scalar_one()
    assert cities == n and dupes == 0


def test_worker_runs_a_whole_rescore_all(
    db_engine: Any, database_url: str, tmp_path: Path, clean_redis: None, admin_headers_for: Any
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    client = app.test_client()
    ids = city_ids(db_engine, 240)
    worker = start_worker(database_url, tmp_path, pool="prefork", name="w1", TWINNING_RESCORE_CHUNK="40")
    try:
        r = client.post("/api/v1/jobs/rescore", json={"city_ids": ids}, headers=admin_headers_for(app))
        assert r.status_code == 202, r.get_json()
        job = wait_job(client, r.get_json()["id"], timeout=180)
    finally:
        stop(worker)
    assert job["state"] == "succeeded", (job, (tmp_path / "w1.log").read_text()[-3000:])
    assert job["done"] == job["total"] == 240 and job["progress"] == 1.0
    with db_engine.connect() as conn:
        assert (
            conn.execute(text("SELECT status FROM scoreset WHERE id = :i"), {"i": job["score_set_id"]}).scalar_one()
            == "complete"
        )
        n = conn.execute(
            text("SELECT count(DISTINCT city_id) FROM suggestion WHERE score_set_id = :i"), {"i": job["score_set_id"]}
        ).scalar_one()
        chunks = conn.execute(text("SELECT count(*) FROM jobchunk WHERE job_id = :j"), {"j": job["id"]}).scalar_one()
    assert n == 240 and chunks == 6
    s = client.get(f"/api/v1/cities/{ids[0]}/suggestions?k=10").get_json()
    assert s["score_set"]["id"] == job["score_set_id"] and s["count"] == 10


def test_no_job_lost_when_a_worker_dies(
    db_engine: Any, database_url: str, tmp_path: Path, clean_redis: None, admin_headers_for: Any
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    client = app.test_client()
    ids = city_ids(db_engine, 600)
    env = {"TWINNING_RESCORE_CHUNK": "30", "TWINNING_VISIBILITY_TIMEOUT": "4"}
    first = start_worker(database_url, tmp_path, pool="solo", name="dies", **env)
    r = client.post("/api/v1/jobs/rescore", json={"city_ids": ids}, headers=admin_headers_for(app))
    assert r.status_code == 202
    job_id = r.get_json()["id"]
    try:
        mid = wait_job(client, job_id, timeout=120, until=lambda j: j["done"] > 0)
        assert mid["state"] == "running" and mid["done"] < mid["total"], mid
    finally:
        stop(first, signal.SIGKILL)  # no warm shutdown: the task in hand is never acknowledged
    partial = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert partial["state"] == "running" and partial["done"] < partial["total"]
    readers = client.get(f"/api/v1/cities/{ids[0]}/suggestions").get_json()["score_set"]
    assert readers["live"] is True  # the half-written set is invisible to readers
    second = start_worker(database_url, tmp_path, pool="solo", name="rescues", **env)
    try:
        job = wait_job(client, job_id, timeout=240)
    finally:
        stop(second)
    assert job["state"] == "succeeded", (job, (tmp_path / "rescues.log").read_text()[-3000:])
    assert_complete(db_engine, job, 600)
