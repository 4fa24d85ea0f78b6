"""Idempotent loader for the shipped seed data: countries, the gazetteer and its names, real partnerships, demo
profiles.

Every step is an upsert keyed by the natural key (country code, geonameid, (city, name key), city pair), so running
it again changes nothing. The gazetteer and its names go through the drivers' bulk paths (SQLite ``executemany``,
PostgreSQL ``COPY``): 170,391 cities and about 1.1 million name keys load in seconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from api.data import prefixes, version
from api.data.text import fold, name_entries
from seed.readers import (
    DEFAULT_GAZETTEER,
    DEMO_PROFILES_FILE,
    GAZETTEER_LEVELS,
    Gazetteer,
    partnerships_file,
    read_countries,
    read_gazetteer,
    read_pairs,
)

log = logging.getLogger(__name__)


def upsert(
    conn: Any, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str], update: Iterable[str] = ()
) -> None:
    """Insert rows, updating ``update`` columns (or doing nothing) where ``keys`` already exist."""
    if not rows:
        return
    dialect = conn.dialect.name
    ins: Any
    if dialect == "postgresql":
        ins = postgresql.insert(table)
    elif dialect == "sqlite":
        ins = sqlite.insert(table)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    update = list(update)
    stmt = (
        ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in update})
        if update
        else ins.on_conflict_do_nothing(index_elements=list(keys))
    )
    chunk = 2000 if dialect == "postgresql" else 5000
    for start in range(0, len(rows), chunk):
        conn.execute(stmt, list(rows[start : start + chunk]))


def bulk_upsert(
    conn: Any,
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    keys: Sequence[str],
    update: Sequence[str] = (),
    *,
    chunk: int = 100_000,
) -> None:
    """Insert many rows (tuples in ``columns`` order) through the driver's fastest path; where ``keys`` exist,
    update the ``update`` columns that differ (or do nothing). A second run with the same rows changes nothing.

    SQLite: ``executemany`` of one prepared ``INSERT … ON CONFLICT`` (no per-row SQLAlchemy work). PostgreSQL:
    ``COPY`` into a temporary table, then one ``INSERT … SELECT … ON CONFLICT``.
    """
    dialect = conn.dialect.name
    cols = ", ".join(columns)
    differs = " IS DISTINCT FROM " if dialect == "postgresql" else " IS NOT "
    on_conflict = (
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in update)
        + " WHERE "
        + " OR ".join(f"{table}.{c}{differs}excluded.{c}" for c in update)
        if update
        else f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    batches = _batches(rows, chunk)
    if table not in version.IGNORED:
        version.mark_changed(conn)  # the driver's paths below go past SQLAlchemy's execution
    if dialect == "sqlite":
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in columns)}) {on_conflict}"
        cursor = conn.connection.driver_connection.cursor()  # in the connection's transaction
        for batch in batches:
            cursor.executemany(sql, batch)
        cursor.close()
        return
    if dialect != "postgresql":  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    tmp = f"_bulk_{table}"
    conn.exec_driver_sql(f'CREATE TEMPORARY TABLE {tmp} (LIKE "{table}" INCLUDING DEFAULTS) ON COMMIT DROP')
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
        for batch in batches:
            for row in batch:
                copy.write_row(row)
    conn.exec_driver_sql(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM {tmp} {on_conflict}')
    conn.exec_driver_sql(f"DROP TABLE {tmp}")


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


NAME_COLUMNS = ("city_id", "key", "name", "kind", "script")
CITY_COLUMNS = (
    "id",
    "geonameid",
    "name",
    "search_name",
    "country",
    "admin1",
    "latitude",
    "longitude",
    "population",
    "timezone",
    "is_custom",
    "updated_at",
)
CITY_INDEXES = {"ix_city_name": "name", "ix_city_country": "country", "ix_city_updated_at": "updated_at"}
CITY_UPDATE = ("name", "search_name", "country", "admin1", "latitude", "longitude", "population", "timezone")


def gazetteer_name_rows(names: pd.DataFrame) -> Iterator[tuple[int, str, str, int, str]]:
    """The ``cityname`` rows of a gazetteer's names frame (grouped by city, the main name first)."""
    ids = names["geonameid"].tolist()
    texts = names["name"].tolist()
    main = names["is_main"].tolist()
    start, n = 0, len(ids)
    for i in range(1, n + 1):
        if i == n or ids[i] != ids[start]:
            if main[start]:
                yield from name_entries(ids[start], texts[start + 1 : i], main=texts[start])
            else:
                yield from name_entries(ids[start], texts[start:i])
            start = i


def load_names(conn: Any, rows: Iterable[tuple[int, str, str, int, str]]) -> None:
    """Insert search names (existing (city, key) rows are kept). Into an empty table the search index is built
    after the load (one sort instead of a million B-tree inserts)."""
    fresh = conn.exec_driver_sql("SELECT 1 FROM cityname LIMIT 1").first() is None
    if fresh:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_cityname_key")
    bulk_upsert(conn, "cityname", NAME_COLUMNS, rows, ["city_id", "key"])
    if fresh:
        conn.exec_driver_sql("CREATE INDEX ix_cityname_key ON cityname (key, kind, city_id)")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE cityname")
        else:
            conn.exec_driver_sql("ANALYZE")


def index_names_of_existing_cities(conn: Any) -> None:
    """Index the names of every city already in the database (the migration that adds ``cityname`` runs it)."""
    cities = conn.execute(text("SELECT id, name FROM city ORDER BY id")).all()
    load_names(conn, (row for city_id, name in cities for row in name_entries(int(city_id), [], main=name)))


@dataclass
class SeedReport:
    countries: int
    cities: int
    partnerships: int
    profiles: int
    names: int = 0
    level: str = DEFAULT_GAZETTEER


def load_all(
    engine: Engine,
    *,
    demo: bool = True,
    progress: Callable[[str], None] | None = None,
    level: str | None = None,
    gazetteer: Gazetteer | None = None,
    prefix_pages: bool = True,
) -> SeedReport:
    """Load everything shipped in ``seed/`` into the database behind ``engine``: countries, the gazetteer at
    ``level`` (default: ``TWINNING_GAZETTEER``) with every name of every city, the partnerships that go with the
    level (those whose two places are loaded), the demo profiles and conference. A whole level is recorded
    (:func:`seeded_level`).

    ``gazetteer`` replaces the level's data by a given one (tests load a slice through this same code; a slice is
    not recorded as a level). ``prefix_pages=False`` leaves the search's stored prefix pages out (emptied, not
    rebuilt): the caller builds them later with :func:`api.data.prefixes.rebuild_concurrently` (``twinning serve``
    does, in the background, so that a first start serves ~4 s sooner; the search runs its full query meanwhile)."""
    whole_level = gazetteer is None
    from api.data.models import City, CityName, Country, Partnership, utcnow

    say = progress or (lambda msg: log.info(msg))
    if gazetteer is None:
        if level is None:
            from api.config import Settings

            level = Settings.from_env().GAZETTEER
        t0 = time.perf_counter()
        gazetteer = read_gazetteer(level)
        say(f"read gazetteer {level} in {time.perf_counter() - t0:.1f}s")
    level = gazetteer.level
    countries = read_countries()
    cities = gazetteer.cities
    pairs = read_pairs(partnerships_file(level))
    loaded = set(cities["geonameid"].tolist())
    pairs = pairs[pairs.geonameid_a.isin(loaded) & pairs.geonameid_b.isin(loaded)]
    now = utcnow()
    with engine.begin() as conn:
        # SQLite gets the timestamp as SQLAlchemy writes it (the raw driver path skips SQLAlchemy's types)
        stamp: Any = now.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else now
        say(f"countries: {len(countries)}")
        upsert(
            conn,
            Country.__table__,  # type: ignore[attr-defined]
            [
                {"code": r.code, "name": r.name, "continent": r.continent, "languages": r.languages}
                for r in countries.itertuples()
            ],
            ["code"],
            ["name", "continent", "languages"],
        )
        t0 = time.perf_counter()
        # Into an empty table, the secondary indexes are built after the load (a sort, not 170k B-tree inserts).
        fresh = conn.exec_driver_sql("SELECT 1 FROM city LIMIT 1").first() is None
        if fresh:
            for index in CITY_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        bulk_upsert(
            conn,
            "city",
            CITY_COLUMNS,
            (
                (gid, gid, name, fold(name), country, admin1, lat, lon, pop, tz, False, stamp)
                for gid, name, country, admin1, lat, lon, pop, tz in zip(
                    cities["geonameid"].tolist(),
                    cities["name"].tolist(),
                    cities["country"].tolist(),
                    cities["admin1"].tolist(),
                    cities["latitude"].tolist(),
                    cities["longitude"].tolist(),
                    cities["population"].tolist(),
                    cities["timezone"].tolist(),
                    strict=True,
                )
            ),
            ["id"],
            CITY_UPDATE,
        )
        if fresh:
            for index, column in CITY_INDEXES.items():
                conn.exec_driver_sql(f"CREATE INDEX {index} ON city ({column})")
        say(f"cities: {len(cities)} ({level}) in {time.perf_counter() - t0:.1f}s")
        if gazetteer.names is not None:
            t0 = time.perf_counter()
            load_names(conn, gazetteer_name_rows(gazetteer.names))
            say(f"names: {len(gazetteer.names)} names indexed in {time.perf_counter() - t0:.1f}s")
        say(f"partnerships: {len(pairs)}")
        a = pairs[["geonameid_a", "geonameid_b"]].min(axis=1).astype(int)
        b = pairs[["geonameid_a", "geonameid_b"]].max(axis=1).astype(int)
        upsert(
            conn,
            Partnership.__table__,  # type: ignore[attr-defined]
            [
                {
                    "city_a_id": int(x),
                    "city_b_id": int(y),
                    "status": "active",
                    "sectors": [],
                    "source": "wikidata",
                    "created_at": now,
                }
                for x, y in zip(a, b, strict=True)
            ],
            ["city_a_id", "city_b_id"],
        )
        n_profiles = load_demo_profiles(conn, now) if demo else 0
        if demo:
            from api.data.conference_seed import load_demo_conference

            load_demo_conference(conn)
        if prefix_pages:
            t0 = time.perf_counter()
            stored = prefixes.rebuild(conn)  # after every write to the cities and their names above
            say(f"prefix pages: {stored} in {time.perf_counter() - t0:.1f}s")
        else:  # stale pages would answer wrongly; none make the search run its full query
            prefixes.clear(conn)
            say("prefix pages: left to a later rebuild")
        if whole_level:
            _record_level(conn, level)
        counts = (
            conn.execute(select(func.count()).select_from(Country)).scalar_one(),
            # gazetteer cities (custom places such as the demo conference's provinces are not counted)
            conn.execute(select(func.count()).select_from(City).where(col(City.is_custom).is_(False))).scalar_one(),
            conn.execute(select(func.count()).select_from(Partnership)).scalar_one(),
            conn.execute(select(func.count()).select_from(CityName)).scalar_one(),
        )
    return SeedReport(counts[0], counts[1], counts[2], n_profiles, counts[3], level)


def load_demo_profiles(conn: Any, now: Any = None) -> int:
    """Insert the illustrative demo profiles; a profile a user has saved is never overwritten."""
    from api.data.models import Profile, utcnow

    doc = json.loads(DEMO_PROFILES_FILE.read_text(encoding="utf-8"))
    existing = {row[0] for row in conn.execute(select(Profile.__table__.c.city_id))}  # type: ignore[attr-defined]
    rows = [
        {
            "city_id": p["geonameid"],
            "offers": p["offers"],
            "seeks": p["seeks"],
            "description": p["description"],
            "pref_countries": p["pref_countries"],
            "pref_languages": [],
            "seeking_partners": p["seeking_partners"],
            "contact_name": p["contact_name"],
            "contact_email": p["contact_email"],
            "illustrative": True,
            "updated_at": now or utcnow(),
        }
        for p in doc["profiles"]
        if p["geonameid"] not in existing
    ]
    log.info("demo profiles: %d new (illustrative)", len(rows))
    upsert(conn, Profile.__table__, rows, ["city_id"])  # type: ignore[attr-defined]
    return len(rows)


def _covers(loaded: str | None, level: str) -> bool:
    """Whether GeoNames level ``loaded`` holds every place of ``level`` (the levels nest: cities15000 ⊂ cities5000
    ⊂ cities1000 ⊂ cities500)."""
    return loaded in GAZETTEER_LEVELS and GAZETTEER_LEVELS[loaded] <= GAZETTEER_LEVELS[level]


def _record_level(conn: Any, level: str) -> None:
    from api.data.models import SeedInfo

    table = SeedInfo.__table__  # type: ignore[attr-defined]
    before = conn.execute(select(table.c.value).where(table.c.key == "gazetteer")).scalar_one_or_none()
    if not _covers(before, level):
        upsert(conn, table, [{"key": "gazetteer", "value": level}], ["key"], ["value"])


def seeded_level(engine: Engine) -> str | None:
    """The largest gazetteer level loaded whole into the database (None: none recorded, e.g. an empty database or
    one seeded before the level was recorded)."""
    with engine.connect() as conn:
        value = conn.execute(text("SELECT value FROM seedinfo WHERE key = 'gazetteer'")).scalar_one_or_none()
    return str(value) if value is not None else None


def is_seeded(engine: Engine, level: str | None = None) -> bool:
    """Whether the database holds cities, and with ``level``, every place of that gazetteer level."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM city LIMIT 1")).first() is None:
            return False
    return level is None or _covers(seeded_level(engine), level)
