"""Re-scoring jobs: create, run (a dispatcher that fans out chunks), record progress, publish the score set.

The same functions run in-process (embedded mode: a background thread, or inline) and inside Celery tasks
(:mod:`workers.tasks`). Every step is idempotent, so a chunk redelivered after a worker died is simply redone.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data.models import Job, ScoreSet, utcnow
from api.domain.scoring import MatcherService

log = logging.getLogger(__name__)

ChunkDispatcher = Callable[[str, int, list[int]], None]
# Database faults: a job run in-process retries after these pauses (seconds), then is marked failed, so a job is
# never left queued or running by an outage (about two minutes in all).
FAULT_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
DB_FAULTS: tuple[type[BaseException], ...] = (DBAPIError, PoolTimeout)
# A profile edit joins a queued re-scoring job made at most this long ago; an older queued job may be stuck
# behind a long run, so a new one is made instead.
COALESCE_WINDOW_S = 60.0
NIGHTLY_NAMESPACE = uuid.UUID("6f1c3c1e-2b0e-4a55-9d57-7c0f3d6b2a10")


def create_job(
    session: Session, *, kind: str, city_ids: Sequence[int] | None, scope: str = "active", job_id: str | None = None
) -> Job:
    if city_ids is None:
        ids = crud.all_city_ids(session) if scope == "all" else crud.active_city_ids(session)
    else:
        ids = sorted(set(int(i) for i in city_ids))
    job = Job(
        id=job_id or str(uuid.uuid4()),
        kind=kind,
        state="queued",
        total=len(ids),
        params={"city_ids": ids if city_ids is not None else None, "scope": scope if city_ids is None else "cities"},
    )
    session.add(job)
    session.flush()
    return job


def join_queued_city_job(session: Session, city_ids: Sequence[int], *, max_size: int) -> Job | None:
    """Add ``city_ids`` to a recent ``rescore_city`` job that no worker has started yet (so a burst of profile
    edits makes one job, not one each); None when there is none to join (the caller makes a new job).

    The job's row is locked while it is extended, and :func:`start` locks it before it fixes the job's cities, so
    a city is never added to a job that has already read its list. A job that is locked right now is skipped."""
    since = utcnow() - timedelta(seconds=COALESCE_WINDOW_S)
    job = crud.queued_job_to_join(session, kind="rescore_city", since=since)
    if job is None:
        return None
    ids = sorted({*(int(i) for i in job.params.get("city_ids") or ()), *(int(i) for i in city_ids)})
    if len(ids) > max_size:
        session.rollback()
        return None
    job.params = {**job.params, "city_ids": ids}
    job.total = len(ids)
    session.add(job)
    session.commit()
    return job


def job_city_ids(session: Session, job: Job) -> list[int]:
    ids = job.params.get("city_ids")
    if ids is not None:
        return [int(i) for i in ids]
    scope = job.params.get("scope", "active")
    return crud.all_city_ids(session) if scope == "all" else crud.active_city_ids(session)


def chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def start(
    engine: Engine,
    settings: Settings,
    matchers: MatcherService,
    job_id: str,
    dispatch: ChunkDispatcher,
    window: int | None = None,
) -> None:
    """The dispatcher: open (or reuse) the job's score set, fix the job's list of cities, then hand the first
    ``window`` unfinished chunks to ``dispatch`` (all of them when ``window`` is None: in-process runs).

    With a window, each finished chunk hands on the next one of its lane (:func:`successor`): at most ``window``
    chunks of a job wait in the queue, so a chunk requeued at the back after its worker died waits behind at most
    ``window - 1`` others, not behind the rest of the job."""
    with Session(engine, expire_on_commit=False) as session:
        built = matchers.get(session)  # before the job's row is locked: a rebuild can take seconds
        session.commit()
        # Locked until the commit below, so a profile edit cannot join the job after its cities are read here.
        job = crud.get_job(session, job_id=job_id, for_update=True)
        if job.state in {"succeeded", "failed"}:
            return
        ids = job_city_ids(session, job)
        if job.score_set_id is None:
            score_set = ScoreSet(
                status="running",
                scope=str(job.params.get("scope", "active")),
                model_version=built.model_version,
                k=settings.STORED_SUGGESTIONS,
                n_cities=len(ids),
                job_id=job.id,
            )
            session.add(score_set)
            session.flush()
            job.score_set_id = score_set.id
        if job.params.get("city_ids") is None:  # a scope's cities, fixed now: chunks must not shift under the lanes
            job.params = {**job.params, "city_ids": ids}
        job.state = "running"
        job.total = len(ids)
        job.started_at = job.started_at or utcnow()
        session.add(job)
        session.commit()
        finished = crud.done_chunks(session, job_id=job_id)
    parts = chunks(ids, settings.RESCORE_CHUNK)
    if not parts:
        finish(engine, job_id)
        return
    pending = [n for n in range(len(parts)) if n not in finished]
    for n in pending if window is None else pending[:window]:
        dispatch(job_id, n, parts[n])


def successor(engine: Engine, settings: Settings, job_id: str, chunk: int, window: int) -> tuple[int, list[int]] | None:
    """The chunk that finished chunk ``chunk`` hands on: the first unfinished one of its lane (``chunk + window``,
    ``chunk + 2 * window``, …), or None. Idempotent: a redelivered finished chunk hands on the same successor."""
    with Session(engine) as session:
        job = crud.find_job(session, job_id=job_id)
        if job is None or job.state in {"succeeded", "failed"}:
            return None
        parts = chunks(job_city_ids(session, job), settings.RESCORE_CHUNK)
        finished = crud.done_chunks(session, job_id=job_id)
    for n in range(chunk + window, len(parts), window):
        if n not in finished:
            return n, parts[n]
    return None


def run_chunk(engine: Engine, matchers: MatcherService, job_id: str, chunk: int, city_ids: list[int]) -> int:
    """Score one chunk of cities into the job's score set; returns how many cities the job has finished."""
    with Session(engine, expire_on_commit=False) as session:
        job = crud.get_job(session, job_id=job_id)
        if job.state in {"succeeded", "failed"} or job.score_set_id is None:
            return job.done
        built = matchers.get(session)
        table = built.table
        present = [i for i in city_ids if i in table.row_of_id]
        rows = np.array([table.row_of_id[i] for i in present], np.int64)
        k = int(crud.get_score_set(session, score_set_id=job.score_set_id).k)  # type: ignore[union-attr]
        records: list[dict[str, Any]] = []
        for city_id, suggestions in zip(present, built.matcher.suggest_many(rows, k), strict=True):
            for rank, s in enumerate(suggestions, start=1):
                records.append(
                    {
                        "score_set_id": job.score_set_id,
                        "city_id": city_id,
                        "rank": rank,
                        "candidate_id": s.city_id,
                        "score": s.score,
                        "components": s.components,
                        "sectors": [{"sector": f.sector, "score": f.score, "reason": f.reason} for f in s.sectors],
                        "distance_km": s.distance_km,
                    }
                )
        crud.replace_suggestions(session, score_set_id=job.score_set_id, city_ids=city_ids, rows=records)
        done = crud.record_chunk(session, job_id=job_id, chunk=chunk, size=len(city_ids))
        session.commit()
        # Count again after committing: of two last chunks committing at once, neither counts the other's row
        # inside its own transaction, but the later one's recount sees both, so the job is always finished.
        done = crud.record_chunk(session, job_id=job_id, chunk=chunk, size=len(city_ids))
        session.commit()
        total = job.total
    if done >= total:
        finish(engine, job_id)
    return done


def finish(engine: Engine, job_id: str) -> None:
    """Publish the score set (readers switch to it atomically) and mark the job succeeded; idempotent."""
    with Session(engine) as session:
        job = crud.get_job(session, job_id=job_id)
        crud.publish_job(session, job_id=job_id, score_set_id=job.score_set_id)
        session.commit()
    log.info("job %s succeeded", job_id)


def fail(engine: Engine, job_id: str, error: str) -> None:
    """Mark the job (and its score set) failed."""
    with Session(engine) as session:
        job = crud.find_job(session, job_id=job_id)
        if job is None:
            return
        job.state = "failed"
        job.error = error[:2000]
        job.finished_at = utcnow()
        if job.score_set_id is not None:
            crud.fail_score_set(session, score_set_id=job.score_set_id)
        session.add(job)
        session.commit()


def fail_eventually(engine: Engine, job_id: str, error: str, backoff: Sequence[float] = FAULT_BACKOFF_S) -> bool:
    """:func:`fail`, retried through a database outage; False if the database never came back."""
    for pause in (*backoff, None):
        try:
            fail(engine, job_id, error)
            return True
        except DB_FAULTS:
            if pause is None:
                log.error("job %s could not be marked failed: the database stayed unavailable", job_id)
                return False
            time.sleep(pause)
    return False


def run_inline(
    engine: Engine,
    settings: Settings,
    matchers: MatcherService,
    job_id: str,
    backoff: Sequence[float] = (),
) -> None:
    """Run a whole job in this process (embedded mode); a ``train`` job re-scores the active cities after.

    A database fault retries the job (every step is idempotent) after each pause in ``backoff``; when none is
    left, or on any other error, the job is marked failed — also through an outage (:func:`fail_eventually`)."""
    running = [job_id]  # the job at work: a train job's re-scoring job once the model is trained
    for attempt, pause in enumerate((*backoff, None)):
        try:
            _run_inline(engine, settings, matchers, running)
            return
        except DB_FAULTS as e:
            if pause is None:
                log.exception("job %s failed: the database is unavailable", running[-1])
                fail_eventually(engine, running[-1], f"the database was unavailable: {type(e).__name__}", backoff)
                return
            log.warning("job %s: database unavailable (attempt %d), retrying in %gs", job_id, attempt + 1, pause)
            time.sleep(pause)
        except Exception as e:  # the job records its failure; the caller's request is not affected
            log.exception("job %s failed", running[-1])
            fail_eventually(engine, running[-1], f"{type(e).__name__}: {e}", backoff)
            return


def _run_inline(engine: Engine, settings: Settings, matchers: MatcherService, running: list[str]) -> None:
    job_id = running[0]
    with Session(engine) as session:
        job = crud.get_job(session, job_id=job_id)
        kind, state, follow = job.kind, job.state, (job.result or {}).get("rescore_job")
    if kind == "train":
        if follow is None:  # a retry after the model was trained goes straight to its re-scoring job
            if state == "failed":
                return
            from api.domain.training import run_train_job

            run_train_job(engine, settings, job_id)
            follow = rescore_after_training(engine, matchers, job_id)
        job_id = str(follow)
        running.append(job_id)

    def dispatch(j: str, n: int, ids: list[int]) -> None:
        run_chunk(engine, matchers, j, n, ids)

    start(engine, settings, matchers, job_id, dispatch)


def rescore_after_training(engine: Engine, matchers: MatcherService, train_job_id: str) -> str:
    """After a model is trained: drop the cached matcher and create the job that re-scores the active cities
    with it, linked from the train job. Returns the new job's id (the caller runs or queues it)."""
    matchers.invalidate()
    with Session(engine) as session:
        follow = create_job(session, kind="rescore", city_ids=None, scope="active")
        session.commit()
        link_followup(session, train_job_id, follow.id)
        return follow.id


def nightly_job(engine: Engine, day: date) -> tuple[str, bool]:
    """The nightly re-scoring job of ``day``: created once, whatever the number of deliveries of the beat task.

    Returns ``(job_id, dispatch)``: dispatch is False when the day's job already exists and has left ``queued``.
    """
    job_id = str(uuid.uuid5(NIGHTLY_NAMESPACE, f"nightly:{day.isoformat()}"))
    with Session(engine) as session:
        existing = crud.find_job(session, job_id=job_id)
        if existing is not None:
            return job_id, existing.state == "queued"
        create_job(session, kind="rescore", city_ids=None, scope="active", job_id=job_id)
        try:
            session.commit()
        except IntegrityError:  # a concurrent delivery created it first
            session.rollback()
            return job_id, False
    return job_id, True


@contextmanager
def lease(engine: Engine, job_id: str, owner: str, seconds: float) -> Iterator[bool]:
    """Hold the job's lease while the block runs (yields False, holding nothing, when another owner's lease is
    live). A thread renews it every third of ``seconds``, so a job that outlives the queue's visibility timeout is
    not run twice: a duplicate delivery finds the lease live and waits; if the holder died, the lease lapses
    within ``seconds`` and the duplicate takes over."""
    with Session(engine) as session:
        held = crud.claim_lease(session, job_id=job_id, owner=owner, now=time.time(), seconds=seconds)
    if not held:
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                with Session(engine) as s:
                    crud.claim_lease(s, job_id=job_id, owner=owner, now=time.time(), seconds=seconds)
            except Exception:  # a database blip: the next renewal tries again
                log.warning("job %s: could not renew its lease", job_id, exc_info=True)

    thread = threading.Thread(target=renew, name=f"lease-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(timeout=5)


def train_then_rescore(engine: Engine, settings: Settings, matchers: MatcherService, job_id: str) -> str | None:
    """A train job, redone safely: fit and save the model unless done, then return the re-scoring job that applies
    it (made once, linked from the train job), or None when the train job failed."""
    from api.domain.training import run_train_job

    with Session(engine) as session:
        job = crud.get_job(session, job_id=job_id)
        state, follow = job.state, (job.result or {}).get("rescore_job")
    if follow is not None:
        return str(follow)
    if state == "failed":
        return None
    run_train_job(engine, settings, job_id)
    return rescore_after_training(engine, matchers, job_id)


def link_followup(session: Session, train_job_id: str, rescore_job_id: str) -> None:
    """Record on a train job which re-scoring job applies the new model."""
    job = crud.get_job(session, job_id=train_job_id)
    job.result = {**(job.result or {}), "rescore_job": rescore_job_id}
    session.add(job)
    session.commit()


def run_in_thread(engine: Engine, settings: Settings, matchers: MatcherService, job_id: str) -> threading.Thread:
    thread = threading.Thread(
        target=run_inline,
        args=(engine, settings, matchers, job_id, FAULT_BACKOFF_S),
        name=f"job-{job_id[:8]}",
        daemon=True,
    )
    thread.start()
    return thread
