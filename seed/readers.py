"""The one set of readers of Twinning's data files (pandas): the gazetteer, the countries and pair tables.

Everything else (the seed loader, the CLI, the benchmarks) reads files through these; :mod:`matcher` itself only
takes the DataFrames they return. Nothing here touches a database.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SEED_DIR = Path(__file__).resolve().parent
CITIES_FILE = SEED_DIR / "cities15000.csv.gz"
COUNTRIES_FILE = SEED_DIR / "countries.csv"
PARTNERSHIPS_FILE = SEED_DIR / "partnerships_train.csv"
DEMO_PROFILES_FILE = SEED_DIR / "demo_profiles.json"

PAIR_COLUMNS = ("geonameid_a", "geonameid_b")


def read_cities(path: str | Path = CITIES_FILE) -> pd.DataFrame:
    """The GeoNames gazetteer: geonameid, name, country, admin1, latitude, longitude, population, timezone.

    ``keep_default_na=False`` because "NA" is Namibia; admin1 and country stay strings ("01" is not 1).
    """
    return pd.read_csv(path, keep_default_na=False, dtype={"admin1": str, "country": str})


def read_countries(path: str | Path = COUNTRIES_FILE) -> pd.DataFrame:
    """The country table (code, name, continent, languages, ...), every column a string."""
    return pd.read_csv(path, keep_default_na=False, dtype=str)


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
