"""Per-app services (settings, engine, matcher cache, queue): built once by the app factory (or a worker), never
at module level. The web layer keeps them in ``app.extensions`` (:mod:`api.web.context`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from api.config import Settings
from api.data.models import Job
from api.domain import jobs
from api.domain.queue import TASK_FOR_KIND, QueueUnavailable, make_celery, ping, send
from api.domain.scoring import MatcherService
from api.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    matchers: MatcherService
    celery: Any | None = None

    def submit(self, session: Session, *, kind: str, city_ids: list[int] | None = None, scope: str = "active") -> Job:
        """Create a job and hand it to the queue (or run it in-process). 503 if the queue is down.

        Kinds: ``rescore`` and ``rescore_city`` (a new score set) and ``train`` (fit the likelihood model, then
        re-score the active cities with it).
        """
        s = self.settings
        if s.JOBS_MODE == "celery":
            assert s.REDIS_URL and self.celery is not None
            try:
                ping(s.REDIS_URL, s.REDIS_TIMEOUT_S)
            except QueueUnavailable as e:
                raise Unavailable(f"the job queue is unavailable: {e}", service="redis") from e
        job = jobs.create_job(session, kind=kind, city_ids=None if kind == "train" else city_ids, scope=scope)
        session.commit()
        if s.JOBS_MODE == "celery":
            try:
                send(self.celery, TASK_FOR_KIND[kind], [job.id], s.REDIS_TIMEOUT_S)
            except QueueUnavailable as e:
                session.delete(job)  # nothing half-written: the job never reached the queue
                session.commit()
                raise Unavailable(f"the job queue is unavailable: {e}", service="redis") from e
        elif s.JOBS_MODE == "sync":
            jobs.run_inline(self.engine, s, self.matchers, job.id)
            session.refresh(job)
        else:
            jobs.run_in_thread(self.engine, s, self.matchers, job.id)
        return job


def build_services(settings: Settings, engine: Engine) -> Services:
    celery = make_celery(settings) if settings.JOBS_MODE == "celery" else None
    return Services(settings=settings, engine=engine, matchers=MatcherService(settings, engine), celery=celery)
