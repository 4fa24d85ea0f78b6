"""The data version: one number, in the one-row table ``data_version``, that grows with every committed write that
can change what a reader derives from the data (suggestions above all), in the same transaction as the write. A
reader that keeps a derived answer in memory validates it with one cheap read of the number (:func:`current`).

How it is kept, in this one place: :func:`install` (called by :func:`api.data.db.make_engine`, so by the app, the
Celery workers and the command line alike) listens to every statement an engine's connections send. A statement
that writes — anything but a read, a transaction command or DDL — marks the connection's transaction, unless it
writes only tables no answer reads (:data:`IGNORED`: accounts, tokens, jobs, the audit trail, the conference
mode). When a marked transaction commits, the row is incremented through the DBAPI cursor just before
the ``COMMIT``: the write and the new number become visible together, and the row is locked only for the commit
itself (writers wait for each other no longer than that, and cannot deadlock on it). A rollback discards the mark.

Writes that do not go through SQLAlchemy's execution (``COPY`` through psycopg, the seed's ``executemany`` through
the driver) call :func:`mark_changed` on their connection. Schema changes (DDL) are not marked; a migration that
changes data does so with ``INSERT``/``UPDATE``/``DELETE``, which are. Writes made outside the app's engines (psql,
another program) must increment the row themselves: ``UPDATE data_version SET version = version + 1``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlmodel import Session

from api.data.models import DataVersion

_MARK = "twinning_data_changed"
BUMP_SQL = "UPDATE data_version SET version = version + 1 WHERE id = 1"
READ_SQL = "SELECT version FROM data_version WHERE id = 1"

# Tables whose rows no cached answer (suggestions, city search) reads: writing them does not change the version (the per-request
# ``last_used_at`` of an API token must not empty every cache).
IGNORED = frozenset(
    {
        "apitoken",
        "loginattempt",
        "user",
        "job",
        "jobchunk",
        "matchevent",
        "seedinfo",
        "conference",
        "conferenceslot",
        "delegation",
        "wish",
        "conferencemeeting",
        "alembic_version",
        "data_version",
    }
)

# First words of statements that change no rows: reads, transaction control, session settings, DDL.
_NO_WRITE = frozenset(
    {
        "SELECT",
        "PRAGMA",
        "SAVEPOINT",
        "RELEASE",
        "ROLLBACK",
        "BEGIN",
        "COMMIT",
        "SHOW",
        "SET",
        "RESET",
        "EXPLAIN",
        "VALUES",
        "CREATE",
        "DROP",
        "ALTER",
        "COMMENT",
        "ANALYZE",
        "VACUUM",
        "LOCK",
        "LISTEN",
        "NOTIFY",
        "DISCARD",
    }
)
_TARGET = re.compile(
    r'\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM|COPY)\s+(?:"?\w+"?\.)?"?(\w+)"?',
    re.IGNORECASE,
)
_FIRST_WORD = re.compile(r"\s*(\w+)")


def writes_data(statement: str) -> bool:
    """Whether ``statement`` may change rows that an answer reads (unknown kinds of statement count as writes)."""
    head = statement[:6].upper()
    if head == "SELECT":  # the hot path
        return False
    first = _FIRST_WORD.match(statement)
    if first is None:  # a comment first, or something else unforeseen: a write unless there is nothing
        return bool(statement.strip())
    word = first.group(1).upper()
    if word in _NO_WRITE:
        return False
    target = _TARGET.match(statement)
    if target is not None and word in ("INSERT", "REPLACE", "UPDATE", "DELETE", "COPY"):
        table = target.group(1).lower()
        return not (table in IGNORED or table.startswith("_bulk_"))
    return True  # TRUNCATE, WITH …, MERGE, CALL, DO, and anything unforeseen


def mark_changed(conn: Connection) -> None:
    """Mark ``conn``'s transaction as changing data (for writes that bypass SQLAlchemy's execution)."""
    conn.info[_MARK] = True


def _before_execute(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if writes_data(statement):
        conn.info[_MARK] = True


def _clear(conn: Connection) -> None:
    # A connection the database dropped is invalidated: its ``info`` is out of reach until the rollback that is
    # under way completes (reading it raises PendingRollbackError), and nothing of its transaction will commit.
    if conn.invalidated:
        return
    try:
        conn.info.pop(_MARK, None)
    except PendingRollbackError:
        return


def _commit(conn: Connection) -> None:
    if conn.info.pop(_MARK, False):
        dbapi_conn = conn.connection.dbapi_connection
        errors: type[Exception] = conn.dialect.dbapi.Error  # type: ignore[union-attr]
        try:
            cursor = dbapi_conn.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(BUMP_SQL)
            finally:
                cursor.close()
        except errors as e:
            # SQLAlchemy calls this listener outside its own error handling: the driver's error (the database went
            # away just before the COMMIT) is wrapped here as a statement's would be, so it answers 503, not 500
            gone = conn.dialect.is_disconnect(e, dbapi_conn, None)  # type: ignore[arg-type]
            raise DBAPIError.instance(BUMP_SQL, None, e, errors, connection_invalidated=gone) from e


def install(engine: Engine) -> None:
    """Keep the data version on ``engine`` (idempotent)."""
    if event.contains(engine, "commit", _commit):
        return
    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "begin", _clear)
    event.listen(engine, "rollback", _clear)
    event.listen(engine, "commit", _commit)


@cache
def _current_stmt() -> Any:
    table = DataVersion.__table__  # type: ignore[attr-defined]
    return sa_select(table.c.version).where(table.c.id == 1)


def current(db: Session | Connection) -> int | None:
    """The data version now, read in ``db``'s transaction (None when the database has no version row: then nothing
    may be cached)."""
    conn = db.connection() if isinstance(db, Session) else db
    value = conn.execute(_current_stmt()).scalar()
    return int(value) if value is not None else None


class VersionReader:
    """Reads the data version for a hot path on a DBAPI connection of each thread's own, kept open and detached from
    the engine's pool (not counted in it): no pool checkout, pre-ping or reset per read — a few microseconds on
    SQLite, one round trip on PostgreSQL (its connection in autocommit, so it never idles in a transaction).

    :meth:`read` opens the thread's connection on first use (an unreachable database raises SQLAlchemy's
    ``OperationalError``, as any query would: 503); a connection that fails later (the database restarted) is closed and the read is made through
    the session ``db()`` gives instead, whose errors are the usual ones. Disposing the engine closes them all."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._errors: type[Exception] = engine.dialect.dbapi.Error  # type: ignore[union-attr]
        self._conns: dict[int, Any] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()
        event.listen(engine, "engine_disposed", self._close_all)

    def read(self, db: Callable[[], Session]) -> int | None:
        if self._pid != os.getpid():  # a forked child: the parent's connections are not its own (never close them)
            with self._lock:
                self._conns, self._pid = {}, os.getpid()
        ident = threading.get_ident()
        conn = self._conns.get(ident)
        if conn is None:
            try:
                conn = self._engine.raw_connection()
            except self._errors as e:  # the pool hands the driver's error over unwrapped: wrap it as a query would
                raise DBAPIError.instance(None, None, e, self._errors) from e
            conn.detach()
            if self._engine.dialect.name == "postgresql":
                conn.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            with self._lock:
                self._conns[ident] = conn
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(READ_SQL)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._errors:
            with self._lock:
                self._conns.pop(ident, None)
            with contextlib.suppress(self._errors):
                conn.close()
            return current(db())
        return int(row[0]) if row is not None else None

    def _close_all(self, _engine: Engine) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            with contextlib.suppress(self._errors):
                conn.close()
