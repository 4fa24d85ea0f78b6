"""What the commands share: building the app or a light database session, following a job, naming a city."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from api.config import ConfigError, Settings


def make_app(**overrides: Any) -> Any:
    """The Flask app (with its services in ``app.extensions["twinning"]``); config errors become usage errors.

    Its engine is disposed when the command ends."""
    from api.web.app import create_app

    try:
        app = create_app(overrides)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # no pooled connection outlives the command
        ctx.call_on_close(app.extensions["twinning"].engine.dispose)
    return app


@contextmanager
def data_session() -> Iterator[tuple[Settings, Any]]:
    """Settings and a database session without the web app, the matcher or Alembic (fast). The schema must exist:
    a database without it is a clear error pointing at `twinning db upgrade`."""
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlmodel import Session

    from api.data.db import make_engine

    try:
        settings = Settings.from_env()
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    engine = make_engine(settings.DATABASE_URL, settings.DB_TIMEOUT_S)
    try:
        with Session(engine) as session:
            yield settings, session
    except (OperationalError, ProgrammingError) as e:
        if "no such table" in str(e) or "does not exist" in str(e):
            raise click.ClickException(
                "the database has no Twinning schema yet: run `twinning db upgrade` (or start `twinning serve` once)"
            ) from e
        raise
    finally:
        engine.dispose()


def city_id(session: Any, text: str, param_hint: str = "--city") -> int:
    """A city's id from a name or a geonameid, or a usage error naming the parameter."""
    from api.data import crud
    from api.errors import NotFound

    try:
        return int(crud.find_city(session, text=text).id)
    except NotFound as e:
        raise click.BadParameter(str(e), param_hint=param_hint) from e


def follow_job(
    engine: Any,
    job_id: str,
    total: int,
    *,
    pickup_timeout: float,
    desc: str = "rescoring (workers)",
    redis_url: str | None = None,
) -> None:
    """Show a job's progress until it ends. Gives up, and marks the job failed, when no worker has picked it up
    within ``pickup_timeout`` seconds, saying what is missing: Redis (when it does not answer) or a worker."""
    from sqlmodel import Session
    from tqdm import tqdm

    from api.data import crud
    from api.domain import jobs

    bar = tqdm(total=total, unit="city", file=sys.stderr, desc=desc)
    t0 = time.monotonic()
    try:
        while True:
            with Session(engine) as session:
                job = crud.find_job(session, job_id=job_id)
                assert job is not None
                bar.update(max(0, job.done - bar.n))
                if job.state in {"succeeded", "failed"}:
                    break
                waiting = job.state == "queued"
            if waiting and time.monotonic() - t0 > pickup_timeout:
                message = (
                    f"no worker picked up job {job_id} within {pickup_timeout:g} s "
                    "(TWINNING_QUEUE_PICKUP_TIMEOUT): is a Celery worker running? "
                    "Start one with: celery -A workers.celery_app worker -Q twinning"
                )
                if redis_url:
                    from api.domain.queue import QueueUnavailable, ping

                    try:
                        ping(redis_url, 1.5)
                    except QueueUnavailable as e:
                        message = f"no worker picked up job {job_id} within {pickup_timeout:g} s: {e}; start Redis"
                jobs.fail(engine, job_id, message)
                raise click.ClickException(message)
            time.sleep(0.5)
    finally:
        bar.close()
    report_job(engine, job_id)


def report_job(engine: Any, job_id: str) -> None:
    """One line about a finished job; a failed job is an error (exit status 1)."""
    from sqlmodel import Session

    from api.data import crud

    with Session(engine) as session:
        job = crud.find_job(session, job_id=job_id)
        assert job is not None
        if job.state != "succeeded":
            raise click.ClickException(f"job {job_id} {job.state}: {job.error}")
        click.echo(f"job {job_id} succeeded: score set {job.score_set_id}, {job.total} cities")
