"""Stored first pages of the short searches that match many places (``s``: 30,000 cities of cities1000).

A name search ranks every city that has a key starting with the query (:func:`api.data.crud.search_cities`); for a
query of one or two letters that is tens of thousands of cities, grouped, counted and sorted on every request
(~100 ms). Such a query is a prefix of a few hundred at most: the table ``cityprefix`` keeps, for every folded
prefix of at most :data:`MAX_LEN` characters that :data:`MIN_MATCHES` cities or more match, the number of cities it
matches and the ids of the first :data:`TOP` in the search's own order (exact matches of a name, then names that
start with it, then later words that start with it; larger places first; then id). A search for such a prefix
without filters reads its page from there (one primary-key read); every other search, and every page past the
stored ones, runs the full query. The answers are the same (``tests/seed/test_towns.py`` compares every stored
prefix with the full query).

Kept up to date in this one place: :func:`rebuild` (the seed, after loading names; the migration that adds the
table) computes every row with pandas from the names read once (:func:`pages`);
:func:`api.data.crud.refresh_prefixes` recomputes the stored rows of a city's keys when a write changes its names
or its population (create or rename a city, change its population). A prefix that reaches :data:`MIN_MATCHES`
through such writes is not added until the next seed: it is answered by the full query, which is correct, only
slower. Writes made outside the app's functions (psql) must call :func:`rebuild` (``twinning seed`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, text
from sqlmodel import Session

from api.data import version
from api.data.text import fold

MAX_LEN = 5  # prefixes of 1..MAX_LEN characters
MIN_MATCHES = 300  # below this many cities the full query takes ~2 ms: not stored
TOP = 200  # ids kept per prefix: page 1 at any page size (at most 200), or the first 200 places at smaller sizes

_NAMES = text("SELECT key, kind, city_id FROM cityname")
_POPULATIONS = text("SELECT id, population FROM city")


def pages(conn: Any) -> dict[str, tuple[int, list[int]]]:
    """``{prefix: (cities it matches, the first TOP ids in the search's order)}`` for every folded prefix of at most
    :data:`MAX_LEN` characters that :data:`MIN_MATCHES` cities or more match, one length at a time, with NumPy over
    the names read once: the keys cut to the prefix length, grouped by one sort (window functions in SQL, the
    reference ``tests/seed/test_towns.py`` compares with, took ~4 s per length on SQLite over cities1000's ~970,000
    keys; a pandas version of this function ~6 s in all)."""
    rows = _rows(conn, _NAMES)
    if not rows:
        return {}
    keys = [r[0] for r in rows]
    n = len(keys)
    length = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    head = np.array(keys, dtype=f"U{MAX_LEN}")  # each key cut to MAX_LEN characters
    is_name = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n) < 2
    city = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
    del rows, keys
    ids, population = _populations(conn)
    if len(ids) == 0:
        return {}
    at = np.minimum(np.searchsorted(ids, city), len(ids) - 1)
    live = ids[at] == city  # every name's city exists (a foreign key); kept as the join of the SQL reference
    population = population[at]
    out: dict[str, tuple[int, list[int]]] = {}
    for size in range(1, MAX_LEN + 1):
        live &= length >= size
        rows_ = np.flatnonzero(live)
        if len(rows_) == 0:
            break
        prefix, code = np.unique(head[rows_].astype(f"U{size}"), return_inverse=True)
        # the city's best tier for the prefix: 0 a name equal to it, 1 a name that starts with it, 2 a later word
        tier = np.where(is_name[rows_], np.where(length[rows_] == size, 0, 1), 2)
        c = city[rows_]
        o = np.lexsort((tier, c, code))
        first = np.ones(len(o), bool)
        first[1:] = (code[o][1:] != code[o][:-1]) | (c[o][1:] != c[o][:-1])
        o = o[first]  # one row per (prefix, city), its lowest tier
        total = np.bincount(code[o], minlength=len(prefix))
        enough = total >= MIN_MATCHES
        if not enough.any():
            break
        o = o[enough[code[o]]]
        # per prefix in code order: tier, larger places first, then id
        o = o[np.lexsort((c[o], -population[rows_][o], tier[o], code[o]))]
        codes = code[o]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        for s, e in zip(starts.tolist(), np.r_[starts[1:], len(o)].tolist(), strict=True):
            text_ = str(prefix[codes[s]])
            if fold(text_) != text_:  # ends in a space, say: no query folds to it
                continue
            out[text_] = (int(total[codes[s]]), c[o[s : min(e, s + TOP)]].tolist())
        live[rows_] &= enough[code]  # a longer prefix matches a subset of the cities its own prefix matches
    return out


def _rows(conn: Any, statement: Any) -> list[Any]:
    """The rows of a plain ``SELECT``, fetched through the driver's cursor on the same connection (and
    transaction): a million rows through SQLAlchemy's result objects took ~5 s."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(statement))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _populations(conn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every city's id (sorted) and population."""
    rows = _rows(conn, _POPULATIONS)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    population = np.fromiter((r[1] or 0 for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(ids, kind="stable")
    return ids[order], population[order]


def rebuild(conn: Any) -> int:
    """Recompute the whole table from ``cityname`` and ``city`` on the connection ``conn`` (in its transaction);
    returns the number of prefixes stored. ~4 s for cities1000 on SQLite. Writers of cities and names wait until
    the transaction ends (:func:`_hold`): for the seed and the migration, which own the database. A running
    service uses :func:`rebuild_concurrently`."""
    _hold(conn)
    return _store(conn, pages(conn))


def rebuild_concurrently(engine: Engine) -> int:
    """:func:`rebuild` for a running service, without holding writers back for the computation: the pages are
    computed outside any write lock, then stored under it only if the data version shows no write since (else
    computed again under the lock, as :func:`rebuild` does). Returns the number of prefixes stored."""
    with engine.connect() as conn:
        before = version.current(conn)  # read before the names: a write after it changes the version
        computed = pages(conn)
    with engine.begin() as conn:
        _hold(conn)
        if before is None or version.current(conn) != before:
            computed = pages(conn)
        return _store(conn, computed)


def _hold(conn: Any) -> None:
    """Make the transaction the only writer of the search's tables until it ends, then empty ``cityprefix``.
    PostgreSQL: a SHARE lock on ``city`` and ``cityname`` (writers of either wait; a writer already under way
    commits first, and its rows are read). SQLite: the ``DELETE`` takes the database's write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE city, cityname IN SHARE MODE"))
    clear(conn)


def clear(conn: Any) -> None:
    """Delete every stored page (the search then runs its full query for every prefix)."""
    conn.execute(text("DELETE FROM cityprefix"))


def _store(conn: Any, rows: dict[str, tuple[int, list[int]]]) -> int:
    if rows:
        conn.execute(
            text("INSERT INTO cityprefix (prefix, total, city_ids) VALUES (:prefix, :total, :city_ids)"),
            [{"prefix": p, "total": t, "city_ids": ",".join(map(str, ids))} for p, (t, ids) in rows.items()],
        )
    return len(rows)


def missing(conn: Any) -> bool:
    """Whether no page is stored although enough names are there for one (a seed that left the pages to a later
    rebuild, or a start killed before they were stored)."""
    if conn.execute(text("SELECT 1 FROM cityprefix LIMIT 1")).first() is not None:
        return False
    enough = text(f"SELECT count(*) FROM (SELECT 1 FROM cityname LIMIT {MIN_MATCHES}) AS some_names")
    return int(conn.execute(enough).scalar_one()) >= MIN_MATCHES


def lookup(session: Session, *, needle: str) -> tuple[int, list[int]] | None:
    """The stored ``(total, first ids)`` of the folded query ``needle``, or None when it is not stored."""
    if not needle or len(needle) > MAX_LEN:
        return None
    row = session.connection().execute(_LOOKUP, {"prefix": needle}).first()
    if row is None:
        return None
    return int(row[0]), [int(i) for i in row[1].split(",")] if row[1] else []


_LOOKUP = text("SELECT total, city_ids FROM cityprefix WHERE prefix = :prefix")
_STORED = text("SELECT prefix FROM cityprefix WHERE prefix IN :prefixes").bindparams(
    bindparam("prefixes", expanding=True)
)


def prefixes_of(keys: Iterable[str]) -> set[str]:
    """Every prefix of at most :data:`MAX_LEN` characters of ``keys``."""
    return {key[:n] for key in keys for n in range(1, min(len(key), MAX_LEN) + 1)}


def stored_among(session: Session, *, prefixes: Iterable[str]) -> list[str]:
    """Those of ``prefixes`` that have a row (sorted)."""
    wanted = sorted(set(prefixes))
    out: list[str] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        out.extend(r[0] for r in session.connection().execute(_STORED, {"prefixes": chunk}))
    return sorted(out)


def store(session: Session, *, prefix: str, total: int, city_ids: list[int]) -> None:
    """Replace the row of ``prefix`` (which exists)."""
    session.connection().execute(
        text("UPDATE cityprefix SET total = :total, city_ids = :city_ids WHERE prefix = :prefix"),
        {"prefix": prefix, "total": total, "city_ids": ",".join(map(str, city_ids))},
    )
