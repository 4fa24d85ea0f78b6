"""Engine, sessions and migrations."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

from api.data import version

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, timeout: float = 2.0) -> Engine:
    """An engine for ``url`` that keeps the data version (:mod:`api.data.version`); SQLite gets foreign keys, WAL
    and a busy timeout so threads can share it.

    PostgreSQL connections give up after ``timeout`` seconds (connect, and waiting for a pooled connection), so a
    database outage answers 503 quickly instead of hanging a request; libpq's smallest connect timeout is 2 s."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        version.install(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=timeout,
        connect_args={"connect_timeout": max(2, math.ceil(timeout))},
    )
    version.install(engine)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success, rolls back on error and always closes (for workers and the CLI)."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(session: Session) -> None:
    """A round trip to the database (raises when it is down)."""
    session.execute(text("SELECT 1"))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
