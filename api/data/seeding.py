"""Idempotent loader for the shipped seed data: countries, the gazetteer, real partnerships, demo profiles.

Every step is an upsert keyed by the natural key (country code, geonameid, city pair), so running it again changes
nothing and a second run takes about as long as the first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from api.data.text import fold
from seed.readers import (
    DEMO_PROFILES_FILE,
    read_cities,
    read_countries,
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


@dataclass
class SeedReport:
    countries: int
    cities: int
    partnerships: int
    profiles: int


def load_all(engine: Engine, *, demo: bool = True, progress: Callable[[str], None] | None = None) -> SeedReport:
    """Load everything shipped in ``seed/`` into the database behind ``engine``."""
    from api.data.models import City, Country, Partnership, utcnow

    say = progress or (lambda msg: log.info(msg))
    countries = read_countries()
    cities = read_cities()
    pairs = read_pairs()
    now = utcnow()
    with engine.begin() as conn:
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
        say(f"cities: {len(cities)}")
        city_rows = [
            {
                "id": int(r.geonameid),
                "geonameid": int(r.geonameid),
                "name": r.name,
                "search_name": fold(r.name),
                "country": r.country,
                "admin1": r.admin1,
                "latitude": float(r.latitude),
                "longitude": float(r.longitude),
                "population": int(r.population),
                "timezone": r.timezone,
                "is_custom": False,
                "updated_at": now,
            }
            for r in cities.itertuples()
        ]
        upsert(
            conn,
            City.__table__,  # type: ignore[attr-defined]
            city_rows,
            ["id"],
            ["name", "search_name", "country", "admin1", "latitude", "longitude", "population", "timezone"],
        )
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
        counts = (
            conn.execute(select(func.count()).select_from(Country)).scalar_one(),
            # gazetteer cities (custom places such as the demo conference's provinces are not counted)
            conn.execute(select(func.count()).select_from(City).where(col(City.is_custom).is_(False))).scalar_one(),
            conn.execute(select(func.count()).select_from(Partnership)).scalar_one(),
        )
    return SeedReport(counts[0], counts[1], counts[2], n_profiles)


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


def is_seeded(engine: Engine) -> bool:
    from api.data.models import City

    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(City)).scalar_one() > 0)
