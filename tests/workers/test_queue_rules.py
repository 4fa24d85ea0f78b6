"""Queue rules without a worker: the CLI gives up on an unclaimed job, the nightly job is made once per day."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from api.cli import main
from api.data.models import Job
from api.domain import jobs
from tests.conftest import REDIS_URL, set_cli_env


def test_rescore_queue_gives_up_without_a_worker(
    db_engine: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_redis: None
) -> None:
    set_cli_env(monkeypatch, database_url, tmp_path, REDIS_URL=REDIS_URL, TWINNING_QUEUE_PICKUP_TIMEOUT="1.5")
    r = CliRunner().invoke(main, ["rescore", "--city", "Suzhou", "--queue"])
    assert r.exit_code == 1, r.output
    assert "no worker picked up job" in r.output and "celery -A workers.celery_app worker" in r.output
    with Session(db_engine) as session:
        (job,) = session.exec(select(Job)).all()
        assert job.state == "failed" and "no worker" in (job.error or "")


def test_rescore_queue_without_redis_is_a_clear_error(
    db_engine: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1.
    set_cli_env(monkeypatch, database_url, tmp_path, REDIS_URL="redis://127.0.0.1:1/0", TWINNING_REDIS_TIMEOUT="0.5")
    r = CliRunner().invoke(main, ["rescore", "--city", "Suzhou", "--queue"])
    assert r.exit_code == 1 and "queue is unavailable" in r.output, r.output
    with Session(db_engine) as session:
        assert len(session.exec(select(Job)).all()) == 0  # nothing half-written


def test_nightly_job_is_created_once_per_day(db_engine: Any) -> None:
    first, dispatch = jobs.nightly_job(db_engine, date(2026, 11, 28))
    again, dispatch_again = jobs.nightly_job(db_engine, date(2026, 11, 28))
    assert dispatch and first == again
    assert dispatch_again  # still queued: a redelivery before dispatch may dispatch it (chunks are idempotent)
    with Session(db_engine) as session:
        job = session.get(Job, first)
        assert job is not None
        job.state = "running"
        session.add(job)
        session.commit()
    assert jobs.nightly_job(db_engine, date(2026, 11, 28)) == (first, False)
    other, _ = jobs.nightly_job(db_engine, date(2026, 11, 29))
    assert other != first
    with Session(db_engine) as session:
        assert len(session.exec(select(Job)).all()) == 2
