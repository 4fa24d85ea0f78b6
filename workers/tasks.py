"""Thin, named, idempotent Celery tasks; the work itself lives in :mod:`api.domain.jobs`.

Tasks take ids and re-read everything from the database. ``acks_late`` with ``reject_on_worker_lost`` means a
task whose worker dies is delivered again; every step is idempotent (chunks replace their own rows), so redoing
it is safe. Task names come from :mod:`api.domain.queue`, the one module that names them.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from api.config import Settings
from api.data.db import make_engine
from api.domain import jobs, queue
from api.domain.scoring import MatcherService

log = logging.getLogger(__name__)


class _Context:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.engine = make_engine(self.settings.DATABASE_URL, self.settings.DB_TIMEOUT_S)
        self.matchers = MatcherService(self.settings, self.engine)


@lru_cache(maxsize=1)
def context() -> _Context:
    """One engine and matcher cache per worker process."""
    return _Context()


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each pool process scores with ``TWINNING_WORKER_THREADS`` BLAS/OpenMP threads (default 1: one process per
    core) and builds its matcher in the background as it starts (seconds at 170k places, more on a busy machine),
    so that the build is not charged to its first task's time limit."""
    from threadpoolctl import threadpool_limits

    ctx = context()
    threadpool_limits(limits=ctx.settings.WORKER_THREADS)
    ctx.matchers.warm()


class JobTask(Task):
    """A task whose first argument is a job id: when it fails for good (retries exhausted, or an error that is not
    retried), the job is marked failed — through a database outage too — so it is never left queued or running."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if args and isinstance(args[0], str):
            jobs.fail_eventually(context().engine, args[0], f"{type(exc).__name__}: {exc}")


COMMON: dict[str, Any] = {
    "base": JobTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    # Database hiccups are transient, and so is a task cut by its soft time limit while the matcher was still being
    # built (the build goes on in its own thread; the retry finds it done); everything else fails the job.
    "autoretry_for": (OperationalError, SoftTimeLimitExceeded),
    "retry_backoff": 2,  # 2, 4, 8, 16, 32, 60, 60, … s: about 8 minutes in all, no jitter (an outage is outlived)
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "max_retries": 10,
}


# Every task but training ends (hard time limit) before the queue's visibility timeout (45 s by default) would
# deliver it again while it still runs; training holds a lease on its job instead (see train_model).
LIMITS = {"soft_time_limit": 30, "time_limit": 40}


@shared_task(name=queue.RESCORE_ALL, **LIMITS, **COMMON)
def rescore_all(job_id: str) -> None:
    """Dispatcher: opens the job's score set and puts the first RESCORE_WINDOW chunks in the queue; each finished
    chunk then dispatches the next of its lane, so a requeued chunk is never starved behind the whole job."""
    ctx = context()
    try:
        jobs.start(
            ctx.engine,
            ctx.settings,
            ctx.matchers,
            job_id,
            lambda j, n, ids: rescore_chunk.delay(j, n, ids),
            window=ctx.settings.RESCORE_WINDOW,
        )
    except (OperationalError, SoftTimeLimitExceeded):
        raise
    except Exception as e:
        log.exception("rescore_all %s failed", job_id)
        jobs.fail(ctx.engine, job_id, f"{type(e).__name__}: {e}")


@shared_task(name=queue.RESCORE_CITY, **LIMITS, **COMMON)
def rescore_city(job_id: str) -> None:
    """Re-score the cities of a small job (e.g. after a profile edit); same path as a batch."""
    rescore_all(job_id)


@shared_task(name=queue.RESCORE_CHUNK, **LIMITS, **COMMON)
def rescore_chunk(job_id: str, chunk: int, city_ids: list[int]) -> int:
    """Score one chunk (idempotent: its rows are replaced), then dispatch the next unfinished chunk of its lane."""
    ctx = context()
    try:
        done = jobs.run_chunk(ctx.engine, ctx.matchers, job_id, chunk, city_ids)
        following = jobs.successor(ctx.engine, ctx.settings, job_id, chunk, ctx.settings.RESCORE_WINDOW)
    except (OperationalError, SoftTimeLimitExceeded):
        raise
    except Exception as e:
        log.exception("rescore_chunk %s/%s failed", job_id, chunk)
        jobs.fail(ctx.engine, job_id, f"{type(e).__name__}: {e}")
        raise
    if following is not None:
        rescore_chunk.delay(job_id, *following)
    return done


@shared_task(name=queue.TRAIN_MODEL, bind=True, soft_time_limit=1800, time_limit=1900, **COMMON)
def train_model(self: Task, job_id: str) -> str | None:
    """Fit the partnership-likelihood model on the current network, save it, then re-score the active cities.

    Training outlasts the visibility timeout, so the message comes back while it runs: this execution holds a
    lease on the job (renewed while it trains); a duplicate finds it live and looks again in TRAIN_LEASE_S
    seconds, taking over only if the holder died (its lease lapsed)."""
    ctx = context()
    owner = f"{self.request.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with jobs.lease(ctx.engine, job_id, owner, ctx.settings.TRAIN_LEASE_S) as held:
        if not held:
            raise self.retry(countdown=ctx.settings.TRAIN_LEASE_S, max_retries=None)
        try:
            follow_id = jobs.train_then_rescore(ctx.engine, ctx.settings, ctx.matchers, job_id)
        except OperationalError:
            raise
        except Exception as e:
            log.exception("train_model %s failed", job_id)
            jobs.fail(ctx.engine, job_id, f"{type(e).__name__}: {e}")
            return None
    if follow_id is not None:
        rescore_all.delay(follow_id)  # idempotent: a running job only re-dispatches its window
    return follow_id


@shared_task(name=queue.NIGHTLY_RESCORE, **LIMITS, **COMMON)
def nightly_rescore() -> str:
    """Beat's nightly job: a new score set for every active city, one job per day however often it is delivered."""
    ctx = context()
    job_id, dispatch = jobs.nightly_job(ctx.engine, datetime.now(UTC).date())
    if dispatch:
        rescore_all.delay(job_id)
    return job_id


@shared_task(name=queue.EXPIRE_MATCHES, **LIMITS, **COMMON)
def expire_matches() -> list[int]:
    """Beat's hourly job: expire proposals and accepted matches that waited too long (idempotent)."""
    from sqlmodel import Session

    from api.domain.workflow import expire_due

    ctx = context()
    with Session(ctx.engine) as session:
        return expire_due(session, ctx.settings)
