"""Per-app services (settings, engine, matcher cache, queue): built once by the app factory (or a worker), never
at module level. The web layer keeps them in ``app.extensions`` (:mod:`api.web.context`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data.models import City, Job, Profile
from api.data.version import VersionReader
from api.domain import jobs
from api.domain.queue import TASK_FOR_KIND, QueueUnavailable, make_celery, ping, send
from api.domain.scoring import MatcherService
from api.domain.search import SearchService
from api.domain.suggestions import SuggestionService
from api.errors import Unavailable
from api.schemas import ProfileIn

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    matchers: MatcherService
    suggestions: SuggestionService
    search: SearchService
    versions: VersionReader  # the data version's reader that both answer caches (and the web edge cache) share
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
        if kind == "rescore_city" and city_ids and s.JOBS_MODE == "celery":
            joined = jobs.join_queued_city_job(session, city_ids, max_size=s.RESCORE_CHUNK)
            if joined is not None:  # its message is already in the queue; it will score these cities too
                return joined
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

    def save_profile(self, session: Session, *, city: City, data: ProfileIn) -> tuple[Profile, str | None]:
        """Save a city's profile and have the city re-scored: returns the profile and the re-scoring job's id
        (None when the queue is down: the profile is saved and the next batch run re-scores the city). Every
        process's matcher sees the edit on its next use (:class:`~api.domain.scoring.MatcherService`)."""
        assert city.id is not None
        profile = crud.put_profile(session, city=city, data=data)
        try:
            return profile, self.submit(session, kind="rescore_city", city_ids=[city.id]).id
        except Unavailable:
            log.warning("city %s: profile saved, re-scoring deferred (the queue is unavailable)", city.id)
            return profile, None


def build_services(settings: Settings, engine: Engine) -> Services:
    celery = make_celery(settings) if settings.JOBS_MODE == "celery" else None
    matchers = MatcherService(settings, engine)
    versions = VersionReader(engine)  # one per engine: each thread's own connection serves both caches
    return Services(
        settings=settings,
        engine=engine,
        matchers=matchers,
        suggestions=SuggestionService(settings, matchers, engine, versions=versions),
        search=SearchService(versions, settings.SEARCH_CACHE),
        versions=versions,
        celery=celery,
    )
