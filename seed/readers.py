"""Readers of the shipped data files (pandas); the loader that writes them into tables is ``api.data.seeding``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SEED_DIR = Path(__file__).resolve().parent
CITIES_FILE = SEED_DIR / "cities15000.csv.gz"
COUNTRIES_FILE = SEED_DIR / "countries.csv"
PARTNERSHIPS_FILE = SEED_DIR / "partnerships_train.csv"
DEMO_PROFILES_FILE = SEED_DIR / "demo_profiles.json"


def read_cities(path: Path | str = CITIES_FILE) -> pd.DataFrame:
    """The gazetteer: geonameid, name, country, admin1, latitude, longitude, population, timezone."""
    return pd.read_csv(path, keep_default_na=False, dtype={"admin1": str, "country": str})


def read_countries(path: Path | str = COUNTRIES_FILE) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def read_partnerships(path: Path | str = PARTNERSHIPS_FILE) -> pd.DataFrame:
    """Undirected pairs as two columns ``geonameid_a``, ``geonameid_b``."""
    return pd.read_csv(path, keep_default_na=False, usecols=["geonameid_a", "geonameid_b"])
