"""Column-oriented city tables: everything the scorer needs, as numpy arrays aligned by row.

A :class:`CityTable` is built once from plain data (a gazetteer frame, a profile mapping and a country table) and
then scored many times. Nothing here knows about databases or web requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .sectors import SECTOR_INDEX, SECTOR_KEYS

MIN_POPULATION = 1_000.0


@dataclass(frozen=True)
class ProfileData:
    """A city's profile as plain data: sector weights in [0, 1] and preferences."""

    offers: Mapping[str, float] = field(default_factory=dict)
    seeks: Mapping[str, float] = field(default_factory=dict)
    pref_countries: frozenset[str] = frozenset()
    pref_min_population: int | None = None
    pref_max_population: int | None = None
    pref_languages: frozenset[str] = frozenset()
    seeking_partners: bool = True


def parse_country_pair(text: str) -> tuple[str, str]:
    """``"US-CN"`` → ``("CN", "US")`` (sorted ISO codes; the order of a country pair does not matter)."""
    parts = [p.strip().upper() for p in str(text).replace("–", "-").split("-")]
    if len(parts) != 2 or not all(len(p) == 2 and p.isalpha() for p in parts):
        raise ValueError(f"a country pair is two ISO codes like US-CN, got {text!r}")
    a, b = sorted(parts)
    return a, b


@dataclass(frozen=True)
class CountryTable:
    """Countries by ISO code with continent and official languages (primary subtags, e.g. ``zh``, ``en``)."""

    codes: tuple[str, ...]
    continents: tuple[str, ...]
    languages: tuple[frozenset[str], ...]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> CountryTable:
        codes, continents, languages = [], [], []
        for rec in records:
            codes.append(str(rec["code"]))
            continents.append(str(rec.get("continent") or ""))
            langs = rec.get("languages") or ()
            if isinstance(langs, str):
                langs = [part for part in langs.split(",") if part]
            languages.append(frozenset(str(lang).split("-")[0].lower() for lang in langs))
        return cls(tuple(codes), tuple(continents), tuple(languages))

    @classmethod
    def empty(cls) -> CountryTable:
        return cls((), (), ())


@dataclass(frozen=True)
class CityTable:
    """All cities as aligned arrays. Row ``i`` of every array describes the same city."""

    ids: np.ndarray  # int64, the API's city ids
    geonameids: np.ndarray  # int64, -1 for custom cities outside the gazetteer
    names: np.ndarray  # object
    country: np.ndarray  # object, ISO alpha-2
    country_idx: np.ndarray  # int32 index into country_codes
    country_codes: tuple[str, ...]
    lat: np.ndarray  # float64 degrees
    lon: np.ndarray  # float64 degrees
    population: np.ndarray  # float64
    offers: np.ndarray  # float32 (n, S)
    seeks: np.ndarray  # float32 (n, S)
    has_profile: np.ndarray  # bool (n,)
    seeking: np.ndarray  # bool (n,)
    pref_country: np.ndarray  # bool (n, n_countries): countries each city prefers
    has_pref_country: np.ndarray  # bool (n,)
    pref_min_pop: np.ndarray  # float64, nan where unset
    pref_max_pop: np.ndarray  # float64, nan where unset
    pref_languages: tuple[frozenset[str], ...]
    shared_language: np.ndarray  # bool (n_countries, n_countries)
    continent_idx: np.ndarray  # int32 per country
    country_languages: tuple[frozenset[str], ...]  # per country index
    row_of_id: dict[int, int]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def row(self, city_id: int) -> int:
        """Row of an API city id; raises KeyError if unknown."""
        return self.row_of_id[int(city_id)]

    @classmethod
    def build(
        cls,
        cities: pd.DataFrame,
        profiles: Mapping[int, ProfileData] | None = None,
        countries: CountryTable | None = None,
    ) -> CityTable:
        """Build from a frame with columns id (optional: defaults to geonameid), geonameid, name, country,
        latitude, longitude, population; ``profiles`` maps API ids to :class:`ProfileData`."""
        profiles = profiles or {}
        countries = countries or CountryTable.empty()
        frame = cities.reset_index(drop=True)
        ids = frame["id"].to_numpy(np.int64) if "id" in frame else frame["geonameid"].to_numpy(np.int64)
        geo = frame["geonameid"].fillna(-1).to_numpy(np.int64) if "geonameid" in frame else np.full(len(ids), -1)
        country = frame["country"].astype(str).to_numpy(object)
        codes = sorted(set(countries.codes) | set(country.tolist()))
        code_idx = {c: i for i, c in enumerate(codes)}
        country_idx = np.fromiter((code_idx[c] for c in country), np.int32, len(country))

        n, s = len(ids), len(SECTOR_KEYS)
        offers = np.zeros((n, s), np.float32)
        seeks = np.zeros((n, s), np.float32)
        has_profile = np.zeros(n, bool)
        seeking = np.ones(n, bool)
        pref_country = np.zeros((n, len(codes)), bool)
        pref_min = np.full(n, np.nan)
        pref_max = np.full(n, np.nan)
        pref_lang: list[frozenset[str]] = [frozenset()] * n
        row_of_id = {int(v): i for i, v in enumerate(ids)}
        arrays = _ProfileArrays(offers, seeks, has_profile, seeking, pref_country, pref_min, pref_max, pref_lang)
        for city_id, prof in profiles.items():
            i = row_of_id.get(int(city_id))
            if i is not None:
                arrays.set(i, prof, code_idx)

        lang_sets = dict(zip(countries.codes, countries.languages, strict=True))
        all_langs = sorted({lang for langs in countries.languages for lang in langs})
        lang_idx = {lang: i for i, lang in enumerate(all_langs)}
        lang_matrix = np.zeros((len(codes), max(len(all_langs), 1)), bool)
        for c, i in code_idx.items():
            for lang in lang_sets.get(c, ()):
                lang_matrix[i, lang_idx[lang]] = True
        lm = lang_matrix.astype(np.int32)
        shared = (lm @ lm.T) > 0
        cont = dict(zip(countries.codes, countries.continents, strict=True))
        cont_names = sorted(set(cont.values()) | {""})
        continent_idx = np.array([cont_names.index(cont.get(c, "")) for c in codes], np.int32)

        return cls(
            ids=ids,
            geonameids=geo,
            names=frame["name"].astype(str).to_numpy(object),
            country=country,
            country_idx=country_idx,
            country_codes=tuple(codes),
            lat=frame["latitude"].to_numpy(np.float64),
            lon=frame["longitude"].to_numpy(np.float64),
            population=frame["population"].fillna(0).to_numpy(np.float64),
            offers=offers,
            seeks=seeks,
            has_profile=has_profile,
            seeking=seeking,
            pref_country=pref_country,
            has_pref_country=np.asarray(pref_country.any(axis=1), bool),
            pref_min_pop=pref_min,
            pref_max_pop=pref_max,
            pref_languages=tuple(pref_lang),
            shared_language=shared,
            continent_idx=continent_idx,
            country_languages=tuple(lang_sets.get(c, frozenset()) for c in codes),
            row_of_id=row_of_id,
        )

    def with_profiles(self, updates: Mapping[int, ProfileData | None]) -> CityTable:
        """A copy with the profiles of the given API ids replaced (``None``: the city has no profile any more).

        Only the profile arrays are copied; the gazetteer arrays are shared with this table. Unknown ids are
        skipped. This is how a profile edit reaches a built matcher without rebuilding the whole table."""
        arrays = _ProfileArrays(
            self.offers.copy(),
            self.seeks.copy(),
            self.has_profile.copy(),
            self.seeking.copy(),
            self.pref_country.copy(),
            self.pref_min_pop.copy(),
            self.pref_max_pop.copy(),
            list(self.pref_languages),
        )
        code_idx = {c: i for i, c in enumerate(self.country_codes)}
        for city_id, prof in updates.items():
            i = self.row_of_id.get(int(city_id))
            if i is not None:
                arrays.clear(i)
                if prof is not None:
                    arrays.set(i, prof, code_idx)
        return replace(
            self,
            offers=arrays.offers,
            seeks=arrays.seeks,
            has_profile=arrays.has_profile,
            seeking=arrays.seeking,
            pref_country=arrays.pref_country,
            has_pref_country=np.asarray(arrays.pref_country.any(axis=1), bool),
            pref_min_pop=arrays.pref_min,
            pref_max_pop=arrays.pref_max,
            pref_languages=tuple(arrays.pref_lang),
        )

    def language_mask(self, languages: frozenset[str]) -> np.ndarray:
        """Boolean mask over country indices whose official languages include any of ``languages``."""
        return np.array([bool(langs & languages) for langs in self.country_languages], bool)


@dataclass
class _ProfileArrays:
    """The profile columns of a table while they are filled in (one row per city)."""

    offers: np.ndarray
    seeks: np.ndarray
    has_profile: np.ndarray
    seeking: np.ndarray
    pref_country: np.ndarray
    pref_min: np.ndarray
    pref_max: np.ndarray
    pref_lang: list[frozenset[str]]

    def clear(self, i: int) -> None:
        self.offers[i] = 0.0
        self.seeks[i] = 0.0
        self.has_profile[i] = False
        self.seeking[i] = True
        self.pref_country[i] = False
        self.pref_min[i] = self.pref_max[i] = np.nan
        self.pref_lang[i] = frozenset()

    def set(self, i: int, prof: ProfileData, code_idx: Mapping[str, int]) -> None:
        self.has_profile[i] = True
        self.seeking[i] = prof.seeking_partners
        for key, w in prof.offers.items():
            self.offers[i, SECTOR_INDEX[key]] = np.clip(w, 0.0, 1.0)
        for key, w in prof.seeks.items():
            self.seeks[i, SECTOR_INDEX[key]] = np.clip(w, 0.0, 1.0)
        for c in prof.pref_countries:
            if c in code_idx:
                self.pref_country[i, code_idx[c]] = True
        if prof.pref_min_population is not None:
            self.pref_min[i] = prof.pref_min_population
        if prof.pref_max_population is not None:
            self.pref_max[i] = prof.pref_max_population
        self.pref_lang[i] = frozenset(lang.lower() for lang in prof.pref_languages)
