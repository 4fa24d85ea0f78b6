"""The cities1000 level and its alternate names, on a slice (China, Germany, France) loaded through the same
loader as the full seed, on SQLite and on PostgreSQL (a database of its own, so the session's cities15000 database
keeps its counts)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from api.data import crud, prefixes
from api.data.db import make_engine, migrate
from api.data.seeding import load_all
from api.data.text import fold, name_keys, script_for_languages, script_of
from api.domain.bootstrap import build_prefix_pages
from api.errors import NotFound
from api.schemas import CityCreate, CityUpdate
from seed.readers import TOWNS_PARTNERSHIPS_FILE, Gazetteer, read_gazetteer, read_pairs
from tests.conftest import TEST_DB, _admin_user

SUZHOU, COLOGNE, MUNICH, YDES = 1886760, 2886242, 2867714, 2967252
SLICE = ("CN", "DE", "FR")


@pytest.fixture(scope="module")
def towns() -> Gazetteer:
    return read_gazetteer("cities1000", countries=SLICE)


def _postgres_url() -> str:
    user = _admin_user()
    name = f"{TEST_DB}_towns_slice"
    with psycopg.connect(host="127.0.0.1", port=5432, user=user, dbname="test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def towns_engine(request: Any, towns: Gazetteer, tmp_path_factory: Any) -> Iterator[Engine]:
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('towns') / 'towns.db'}"
    url = sqlite_url if request.param == "sqlite" else _postgres_url()
    engine = make_engine(url)
    migrate(engine)
    load_all(engine, gazetteer=towns, demo=False)
    yield engine
    engine.dispose()


def search(engine: Engine, q: str, **kw: Any) -> crud.CitySearch:
    with Session(engine) as session:
        return crud.search_cities(session, q=q, **kw)


def first(engine: Engine, q: str) -> int:
    return search(engine, q, per_page=1).cities[0].id


@pytest.mark.parametrize(
    "query, expected",
    [
        ("苏州", SUZHOU),
        ("蘇州", SUZHOU),
        ("Soochow", SUZHOU),
        ("Koln", COLOGNE),
        ("Köln", COLOGNE),
        ("KÖLN", COLOGNE),
        ("Cologne", COLOGNE),
        ("Koeln", COLOGNE),
        ("Muenchen", MUNICH),
        ("Munchen", MUNICH),
        ("München", MUNICH),
        ("Munich", MUNICH),
        ("Ydes", YDES),  # a French town of 1,980 people
        ("vouneuil sur vienne", 2967627),  # 1,971 people; hyphens fold to spaces
    ],
)
def test_any_name_finds_the_place_first(towns_engine: Engine, query: str, expected: int) -> None:
    assert first(towns_engine, query) == expected


def test_exact_before_prefix_before_word_then_population(towns_engine: Engine) -> None:
    for q in ("Koln", "Saint", "Neustadt", "Berg", "suzhou", "Vienne"):
        found = search(towns_engine, q, per_page=200)
        needle = fold(q)
        with Session(towns_engine) as session:
            keys = {
                (c, k)
                for c, k in session.execute(
                    text("SELECT city_id, key FROM cityname WHERE kind < 2 AND key >= :lo AND key < :hi"),
                    {"lo": needle, "hi": needle + crud.KEY_END},
                )
            }
        tiers = []
        for city in found.cities:
            exact = (city.id, needle) in keys
            prefix = any(c == city.id for c, _ in keys)
            tiers.append((0 if exact else 1 if prefix else 2, -city.population))
        assert tiers == sorted(tiers), q
        assert found.count >= len(found.cities)


def _both(session: Session, q: str, **kw: Any) -> tuple[Any, Any]:
    """The search's answer as served (stored first pages where they hold it) and from the full query."""
    fast = crud.search_cities(session, q=q, **kw)
    full = crud.search_cities(session, q=q, stored_prefixes=False, **kw)
    return (
        ([c.id for c in fast.cities], fast.count, fast.matched, fast.in_script),
        ([c.id for c in full.cities], full.count, full.matched, full.in_script),
    )


def _stored(session: Session) -> list[str]:
    return [r[0] for r in session.execute(text("SELECT prefix FROM cityprefix ORDER BY prefix"))]


PAGES = [{"per_page": 200}, {"per_page": 10}, {"per_page": 7, "page": 3}, {"per_page": 100, "page": 2}]


def test_stored_prefix_pages_answer_as_the_full_query(towns_engine: Engine) -> None:
    """Every stored prefix (and its pages past the stored ids, and a few that are not stored), in upper case and
    with accents as typed, with a script asked for: the same cities, total and names as the full query."""
    with Session(towns_engine) as session:
        stored = _stored(session)
        assert len(stored) > 50 and {"s", "sa", "be", "sh"} <= set(stored), stored[:20]
        assert max(map(len, stored)) <= prefixes.MAX_LEN
        pages = [*PAGES, {"per_page": 50, "page": 5}, {"per_page": 20, "page": 10_000}]
        for prefix in stored:
            for kw in pages if len(prefix) == 1 else PAGES:
                fast, full = _both(session, prefix, **kw)
                assert fast == full, (prefix, kw)
        for q in ("S", "Sä", "BE", "zz", "saint", "苏", "s", "x"):
            fast, full = _both(session, q, per_page=20, script="Hani")
            assert fast == full, q
        # The fast path is taken: a stored prefix reads one row, not the index
        total, ids = prefixes.lookup(session, needle="s") or (0, [])
        assert len(ids) == prefixes.TOP and total > prefixes.TOP and ids == _both(session, "s", per_page=200)[1][0]


@pytest.fixture
def towns_copy(towns_engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """A copy of the module's database, for a test that writes."""
    url = towns_engine.url
    if url.get_backend_name() == "sqlite":
        target = tmp_path / "copy.db"
        with sqlite3.connect(str(url.database)) as src, sqlite3.connect(str(target)) as dst:
            src.backup(dst)
        engine = make_engine(f"sqlite:///{target}")
        yield engine
        engine.dispose()
        return
    towns_engine.dispose()  # a template database must have no other connections
    name = f"{url.database}_copy"
    admin = {"host": "127.0.0.1", "port": 5432, "user": url.username, "dbname": "test", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_stored_prefix_pages_follow_city_writes(towns_copy: Engine) -> None:
    """A population change, a renamed city and a new one move places within the stored pages at once."""
    with Session(towns_copy) as session:
        small = session.execute(
            text("SELECT id FROM city WHERE country = 'FR' AND name LIKE 'Sa%' ORDER BY population, id LIMIT 1")
        ).scalar_one()
        assert small not in _both(session, "s", per_page=200)[0][0]
        crud.update_city(session, city=crud.get_city(session, city_id=small), data=CityUpdate(population=90_000_000))
    with Session(towns_copy) as session:
        for q in ("s", "sa", "S"):
            fast, full = _both(session, q, per_page=10)
            assert fast == full and fast[0][0] == small, q
        crud.update_city(session, city=crud.get_city(session, city_id=small), data=CityUpdate(name="Zyx"))
    with Session(towns_copy) as session:
        for q in ("s", "sa", "z", "zy"):
            for kw in PAGES:
                fast, full = _both(session, q, **kw)
                assert fast == full, (q, kw)
        made = crud.create_city(
            session,
            data=CityCreate(name="Bergstadt", country="DE", latitude=50.0, longitude=8.0, population=80_000_000),
        )
        made_id = made.id
    with Session(towns_copy) as session:
        for q in ("b", "be", "ber", "berg", "z"):
            fast, full = _both(session, q, per_page=10)
            assert fast == full, q
        assert _both(session, "be", per_page=1)[0][0] == [made_id]


def test_serve_stores_the_pages_a_seed_left_out(towns_copy: Engine, towns: Gazetteer) -> None:
    """``serve`` seeds without the prefix pages (``load_all(prefix_pages=False)``) and stores them in the background
    (``build_prefix_pages``): searches give the full query's answers meanwhile, and the stored pages are those of
    ``twinning seed``; with pages stored, nothing is started."""
    with towns_copy.connect() as conn:
        seeded = dict(conn.execute(text("SELECT prefix, city_ids FROM cityprefix")).all())
    assert len(seeded) > 10
    load_all(towns_copy, gazetteer=towns, demo=False, prefix_pages=False)
    with towns_copy.connect() as conn:
        assert prefixes.missing(conn)
    with Session(towns_copy) as session:
        assert prefixes.lookup(session, needle="s") is None
        fast, full = _both(session, "s", per_page=10)
        assert fast == full and len(fast[0]) == 10
    said: list[str] = []
    thread = build_prefix_pages(towns_copy, echo=said.append)
    assert thread is not None and said
    thread.join(120)
    with towns_copy.connect() as conn:
        assert dict(conn.execute(text("SELECT prefix, city_ids FROM cityprefix")).all()) == seeded
        assert not prefixes.missing(conn)
    assert build_prefix_pages(towns_copy, echo=said.append) is None


def test_a_write_during_a_concurrent_rebuild_is_not_lost(towns_copy: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rebuild_concurrently`` computes the pages without holding writers back; a write that lands meanwhile (a
    small town made the largest place of all, committed while the first computation runs) changes the data
    version, so the pages are computed again under the lock and answer as the full query."""
    with Session(towns_copy) as session:
        small = session.execute(
            text("SELECT id FROM city WHERE country = 'DE' AND name LIKE 'Sa%' ORDER BY population, id LIMIT 1")
        ).scalar_one()
    real_pages, calls, wrote = prefixes.pages, [], []

    def pages_with_a_write_meanwhile(conn: Any) -> dict[str, tuple[int, list[int]]]:
        computed = real_pages(conn)
        if not wrote:
            wrote.append(small)
            with Session(towns_copy) as other:
                crud.update_city(
                    other, city=crud.get_city(other, city_id=small), data=CityUpdate(population=95_000_000)
                )
        calls.append(len(computed))
        return computed

    monkeypatch.setattr(prefixes, "pages", pages_with_a_write_meanwhile)
    assert prefixes.rebuild_concurrently(towns_copy) > 10
    assert len(calls) == 2  # computed again under the lock
    with Session(towns_copy) as session:
        for q in ("s", "sa"):
            fast, full = _both(session, q, per_page=10)
            assert fast == full and fast[0][0] == small, q
    calls.clear()
    prefixes.rebuild_concurrently(towns_copy)  # nothing written meanwhile: computed once
    assert len(calls) == 1


def test_word_prefix_matches_come_after_the_names(towns_engine: Engine) -> None:
    found = search(towns_engine, "gladbach", per_page=50)
    names = [c.name for c in found.cities]
    assert "Bergisch Gladbach" in names
    assert found.matched[found.cities[0].id]


def test_the_name_in_the_users_script(towns_engine: Engine) -> None:
    found = search(towns_engine, "苏州", per_page=3)
    assert found.cities[0].id == SUZHOU and found.matched[SUZHOU] == "苏州" and found.in_script[SUZHOU] == "苏州"
    assert crud.display_name(found.cities[0], in_script=found.in_script[SUZHOU]) == "Suzhou (苏州)"
    latin = search(towns_engine, "suzhou", per_page=1, script="Hani")
    assert latin.in_script[SUZHOU] == "苏州"
    assert search(towns_engine, "suzhou", per_page=1).in_script == {}


def test_find_city_takes_any_name(towns_engine: Engine) -> None:
    with Session(towns_engine) as session:
        assert crud.find_city(session, text="Koln").id == COLOGNE
        assert crud.find_city(session, text="苏州").id == SUZHOU
        assert crud.find_city(session, text="Muenchen").id == MUNICH
        with pytest.raises(NotFound):
            crud.find_city(session, text="Kol")  # a prefix is not a name


def test_partnerships_of_the_slice(towns_engine: Engine, towns: Gazetteer) -> None:
    pairs = read_pairs(TOWNS_PARTNERSHIPS_FILE)
    ids = set(towns.cities.geonameid)
    inside = int((pairs.geonameid_a.isin(ids) & pairs.geonameid_b.isin(ids)).sum())
    with towns_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM partnership")).scalar_one() == inside > 100


def _snapshot(engine: Engine) -> dict[str, str]:
    out = {}
    with engine.connect() as conn:
        for table, cols in (
            ("city", "id, name, country, admin1, latitude, longitude, population, timezone, updated_at"),
            ("cityname", "city_id, key, name, kind, script"),
            ("partnership", "id, city_a_id, city_b_id"),
            ("cityprefix", "prefix, total, city_ids"),
        ):
            rows = conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY 1, 2")).all()
            out[table] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_reload_changes_nothing(towns_engine: Engine, towns: Gazetteer) -> None:
    before = _snapshot(towns_engine)
    load_all(towns_engine, gazetteer=towns, demo=False)
    assert _snapshot(towns_engine) == before


def test_text_folding() -> None:
    assert fold("Köln") == "koln" and fold("Straße") == "strasse" and fold("Łódź") == "lodz"
    assert fold("Saint-Étienne") == "saint etienne" and fold("ＳＵＺＨＯＵ") == "suzhou" and fold("苏州") == "苏州"
    assert name_keys("München") == ("munchen", "muenchen") and name_keys("Munich") == ("munich",)
    assert script_of("苏州") == "Hani" and script_of("Кёльн") == "Cyrl" and script_of("東京とうきょう") == "Jpan"
    assert script_for_languages("zh-CN,zh;q=0.9,en;q=0.8") == "Hani"
    assert script_for_languages("en-GB,en;q=0.9,zh;q=0.8") is None
    assert script_for_languages("fr;q=0.5, ru") == "Cyrl" and script_for_languages(None) is None


def test_gazetteer_levels_and_readers(tmp_path: Path) -> None:
    from api.config import ConfigError, Settings

    assert Settings.from_env().GAZETTEER == "cities15000"  # the suite's level (tests/conftest.py)
    assert Settings.from_env(GAZETTEER="cities500").GAZETTEER == "cities500"
    with pytest.raises(ConfigError, match="TWINNING_GAZETTEER must be one of"):
        Settings.from_env(GAZETTEER="cities2000")
    with pytest.raises(ValueError, match="unknown gazetteer level"):
        read_gazetteer("cities2000")
    small = read_gazetteer("cities1000", geonameids=[SUZHOU, YDES])
    assert list(small.cities.geonameid) == [SUZHOU, YDES] and small.names is not None
    assert {"苏州", "蘇州", "Soochow"} <= set(small.names[small.names.geonameid == SUZHOU].name)
    assert small.names.groupby("geonameid").is_main.sum().eq(1).all()


# The window-function SQL the seed used before ``prefixes.pages``, one length per pass, kept as its reference:
# each (prefix, city) with the city's best tier for it, ranked within the prefix by the search's order, with the
# prefix's number of cities. ``length(key) = L`` is ``key = prefix`` (an exact match).
BUILD_SQL = """
SELECT prefix, city_id, total FROM (
    SELECT m.prefix AS prefix, m.city_id AS city_id,
           row_number() OVER (PARTITION BY m.prefix ORDER BY m.tier, c.population DESC, c.id) AS pos,
           count(*) OVER (PARTITION BY m.prefix) AS total
    FROM (
        SELECT substr(key, 1, {length}) AS prefix, city_id,
               min(CASE WHEN kind < 2 AND length(key) = {length} THEN 0 WHEN kind < 2 THEN 1 ELSE 2 END) AS tier
        FROM cityname WHERE length(key) >= {length} GROUP BY 1, 2
    ) m JOIN city c ON c.id = m.city_id
) ranked WHERE pos <= {top} AND total >= {least} ORDER BY prefix, pos
"""


def test_prefix_pages_are_what_the_sql_reference_selects(towns_engine: Engine) -> None:
    """The seed computes the stored pages with NumPy (``prefixes.pages``); the window-function SQL it replaced
    (``BUILD_SQL``) is the reference: the same prefixes, counts and ids in the same order."""
    with towns_engine.connect() as conn:
        computed = prefixes.pages(conn)
        reference: dict[str, tuple[int, list[int]]] = {}
        for length in range(1, prefixes.MAX_LEN + 1):
            sql = BUILD_SQL.format(length=length, top=prefixes.TOP, least=prefixes.MIN_MATCHES)
            for prefix, city_id, total in conn.execute(text(sql)):
                if fold(prefix) == prefix:
                    reference.setdefault(prefix, (int(total), []))[1].append(int(city_id))
    assert computed == reference
    assert any(len(p) >= 2 for p in computed) and all(len(ids) <= prefixes.TOP for _, ids in computed.values())
