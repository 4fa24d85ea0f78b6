"""What the embedded ``serve`` does on start: make sure suggestions exist so the first visit shows results."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from api.data import conferences as conference_data
from api.data import crud, prefixes
from api.domain import conferences
from api.domain.queue import QueueUnavailable, ping
from api.domain.scoring import load_likelihood
from api.errors import Unavailable

log = logging.getLogger(__name__)
QUEUE_RETRY_S = 5.0


def first_start(app: Any, echo: Callable[[str], None] = print) -> threading.Thread | None:
    """No usable model yet: train one in the background (then re-score). No score set yet: re-score in the
    background.

    With Redis down the service starts anyway (reads work; writes that need the queue answer 503): it says so,
    and a background thread submits the first-start job as soon as Redis answers. Returns that thread, if any."""
    try:
        _first_start(app, echo)
        return None
    except Unavailable as e:
        echo(
            f"Redis is down ({e}): the service starts and serves reads; jobs answer 503 until Redis is back. "
            "The first-start job is submitted as soon as Redis answers."
        )
    thread = threading.Thread(target=_when_the_queue_is_back, args=(app, echo), name="first-start", daemon=True)
    thread.start()
    return thread


def _when_the_queue_is_back(app: Any, echo: Callable[[str], None]) -> None:
    settings = app.extensions["twinning"].settings
    while True:
        time.sleep(QUEUE_RETRY_S)
        try:
            ping(settings.REDIS_URL, settings.REDIS_TIMEOUT_S)
            _first_start(app, echo)
            echo("Redis is back: the first-start job is queued.")
            return
        except (QueueUnavailable, Unavailable):
            continue
        except Exception:  # e.g. the database is down too: try again later
            log.exception("first-start job not submitted yet")


def _first_start(app: Any, echo: Callable[[str], None]) -> None:
    svc = app.extensions["twinning"]
    with Session(svc.engine) as session:
        path = svc.settings.model_path()
        # No model, or one this version cannot load (an artifact of an older release): train a new one.
        if svc.settings.TRAIN_ON_START and (
            not path.exists() or load_likelihood(path, svc.settings.COMPILED_TREES) is None
        ):
            job = svc.submit(session, kind="train")
            echo(
                f"Training the partnership-likelihood model on the real partnerships in the background (job {job.id}, "
                "a few minutes on 2 cores); until then suggestions use profiles and the gazetteer only, then every "
                "active city is re-scored with it."
            )
            return
        if crud.any_score_set(session):
            return
        job = svc.submit(session, kind="rescore", city_ids=None, scope="active")
        echo(
            f"Computing suggestions for {job.total} active cities in the background (job {job.id}); until it "
            "finishes, suggestions are computed live."
        )


def build_prefix_pages(
    engine: Engine, echo: Callable[[str], None] = print, *, force: bool = False
) -> threading.Thread | None:
    """Store the city search's prefix pages (:mod:`api.data.prefixes`) in the background when they are missing, or
    always with ``force`` (the start just seeded). ``serve`` seeds without them so that it serves sooner; until
    they are stored, every search runs its full query: the same answers, one- and two-letter queries slower."""
    if not force:
        try:
            with engine.connect() as conn:
                if not prefixes.missing(conn):
                    return None
        except Exception:  # e.g. a schema without the table (TWINNING_MIGRATE_ON_START=0): the search does without
            log.exception("could not check the search's prefix pages")
            return None

    def run() -> None:
        t0 = time.perf_counter()
        try:
            stored = prefixes.rebuild_concurrently(engine)
        except Exception:  # an optimisation: searches stay correct without it; the next start tries again
            log.exception("could not store the search's prefix pages")
            return
        log.info("city search: %d prefix pages stored in %.1fs", stored, time.perf_counter() - t0)

    echo("Storing the city search's prefix pages in the background (short searches run their full query until then).")
    thread = threading.Thread(target=run, name="prefix-pages", daemon=True)
    thread.start()
    return thread


def schedule_demo_conference(app: Any, echo: Callable[[str], None] = print) -> threading.Thread | None:
    """Embedded mode only: schedule the illustrative demo conference in the background when it has no meetings yet,
    so its grid, agendas and ``.ics`` files are there on the first visit."""
    svc = app.extensions["twinning"]
    if not svc.settings.embedded:
        return None
    with Session(svc.engine) as session:
        demo = next((c for c in conference_data.list_conferences(session) if c.illustrative), None)
        if demo is None or demo.id is None or conference_data.conference_meetings(session, conference_id=demo.id):
            return None
        conference_id = demo.id

    def run() -> None:
        try:
            with Session(svc.engine, expire_on_commit=False) as session:
                conferences.schedule(
                    session, None, svc.matchers, conference_id, time_limit=svc.settings.CONFERENCE_TIME_LIMIT
                )
        except Exception:  # the demo is a convenience: a failure is logged, the service goes on
            log.exception("could not schedule the demo conference %s", conference_id)

    echo(f"Scheduling the demo conference's one-to-one meetings in the background (conference {conference_id}).")
    thread = threading.Thread(target=run, name="demo-conference", daemon=True)
    thread.start()
    return thread


def demo_accounts(app: Any, echo: Callable[[str], None] = print) -> None:
    """Embedded mode only: create the demo accounts (one per role) and print how to log in as each."""
    svc = app.extensions["twinning"]
    if not svc.settings.embedded:
        return
    from api.domain.accounts import ensure_demo_accounts

    with Session(svc.engine) as session:
        accounts = ensure_demo_accounts(session)
    if not accounts:
        return
    echo("Demo accounts (embedded mode only) — log in to the console at /console/login:")
    for name, role, password in accounts:
        echo(f"  {role:<12} user {name!r:<14} password {password!r}")
    echo("  API tokens: `twinning users token NAME` prints one (send it as 'Authorization: Bearer <token>').")
