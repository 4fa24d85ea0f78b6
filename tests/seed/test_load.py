"""The seed loader: complete, idempotent, and respectful of user edits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from api.data.seeding import load_all
from api.data.text import fold
from seed.readers import read_cities, read_pairs


def counts(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("country", "city", "partnership", "profile")
        }


def test_seed_is_complete_and_idempotent(db_engine: Any) -> None:
    before = counts(db_engine)
    assert before == {"country": 252, "city": 34006, "partnership": 8666, "profile": 32}
    load_all(db_engine)
    assert counts(db_engine) == before


def test_seed_files_match_the_shipped_counts() -> None:
    cities = read_cities()
    assert len(cities) == 34006 and cities.geonameid.is_unique
    assert (cities.country == "NA").sum() > 0  # Namibia is not a missing value
    pairs = read_pairs()
    assert len(pairs) == 8666
    assert set(pairs.geonameid_a) | set(pairs.geonameid_b) <= set(cities.geonameid)


def test_reseeding_keeps_a_users_profile(db_engine: Any) -> None:
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE profile SET description = 'edited', illustrative = false WHERE city_id = 1886760"))
    load_all(db_engine)
    with db_engine.connect() as conn:
        row = conn.execute(text("SELECT description, illustrative FROM profile WHERE city_id = 1886760")).one()
    assert row == ("edited", False)


def test_fold() -> None:
    assert fold("Lavāsān") == "lavasan" and fold("Zürich") == "zurich" and fold("SUZHOU") == "suzhou"


def test_the_seeded_level_is_recorded_and_a_larger_one_is_not_seeded(db_engine: Any) -> None:
    """The session database holds cities15000 whole: a start asking for cities1000 must load the towns it lacks
    (``twinning serve`` asks ``is_seeded(engine, level)``), and recording a smaller level never lowers the record."""
    from api.data.seeding import _record_level, is_seeded, seeded_level

    assert seeded_level(db_engine) == "cities15000"
    assert is_seeded(db_engine) and is_seeded(db_engine, "cities15000")
    assert not is_seeded(db_engine, "cities1000") and not is_seeded(db_engine, "cities500")
    try:
        with db_engine.begin() as conn:
            _record_level(conn, "cities1000")
            _record_level(conn, "cities15000")
        assert seeded_level(db_engine) == "cities1000" and is_seeded(db_engine, "cities5000")
    finally:
        with db_engine.begin() as conn:
            conn.execute(text("UPDATE seedinfo SET value = 'cities15000' WHERE key = 'gazetteer'"))
