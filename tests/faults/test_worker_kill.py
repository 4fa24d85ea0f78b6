"""Real Celery workers killed mid-batch: the whole worker (SIGKILL, then a new worker) and one pool process
(prefork; the chunk is requeued at the back of the queue). Either way the job completes within a minute, with no
duplicate or missing rows. The visibility timeout is short here (8 s) to keep the test bounded; production's 45 s
works the same way, only later."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.conftest import REDIS_URL, make_test_app
from tests.workers.test_celery_worker import assert_complete, city_ids, start_worker, stop, wait_job

ENV = {"TWINNING_RESCORE_CHUNK": "20", "TWINNING_VISIBILITY_TIMEOUT": "8", "TWINNING_RESCORE_WINDOW": "3"}


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_a_killed_worker_is_replaced_and_the_job_completes_within_a_minute(
    db_engine: Any,
    database_url: str,
    tmp_path: Path,
    clean_redis: None,
    admin_headers_for: Any,
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    client = app.test_client()
    ids = city_ids(db_engine, 400)
    first = start_worker(database_url, tmp_path, pool="solo", name="killed", **ENV)
    r = client.post("/api/v1/jobs/rescore", json={"city_ids": ids}, headers=admin_headers_for(app))
    job_id = r.get_json()["id"]
    try:
        wait_job(client, job_id, timeout=120, until=lambda j: j["done"] > 0)
    finally:
        stop(first, signal.SIGKILL)
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["state"] == "running"
    second = start_worker(database_url, tmp_path, pool="solo", name="replacement", **ENV)
    t0 = time.monotonic()
    try:
        job = wait_job(client, job_id, timeout=60)
    finally:
        stop(second)
    assert time.monotonic() - t0 < 60
    assert_complete(db_engine, job, 400)


def test_a_killed_pool_process_does_not_starve_its_chunk(
    db_engine: Any,
    database_url: str,
    tmp_path: Path,
    clean_redis: None,
    admin_headers_for: Any,
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    client = app.test_client()
    ids = city_ids(db_engine, 400)
    worker = start_worker(database_url, tmp_path, pool="prefork", name="pool", **ENV)
    try:
        r = client.post("/api/v1/jobs/rescore", json={"city_ids": ids}, headers=admin_headers_for(app))
        job_id = r.get_json()["id"]
        wait_job(client, job_id, timeout=120, until=lambda j: j["done"] > 0)
        children = child_pids(worker.pid)
        assert children
        t0 = time.monotonic()
        os.kill(children[0], signal.SIGKILL)  # the pool replaces it; its chunk is requeued (reject_on_worker_lost)
        job = wait_job(client, job_id, timeout=60)
        assert time.monotonic() - t0 < 60
    finally:
        stop(worker)
    assert_complete(db_engine, job, 400)
