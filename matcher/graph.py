"""Gazetteer-indexed partnership graph shared by the rankers and the evaluator.

Everything in :mod:`matcher` works on *positions* in the gazetteer (row order of
the ``cities`` frame) rather than on GeoNames ids, so that scores for all
~34k cities of a batch of queries are plain ``(m, n_cities)`` matrices.

This module is pure numpy/scipy/pandas: no web or database imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .geo import NEAR_KM, NearIndex, haversine_km
from .names import NameIndex


@dataclass
class CityIndex:
    """Static per-city arrays in gazetteer order.

    Attributes:
        geonameids: GeoNames ids, shape ``(n,)``.
        country: integer country code per city (index into ``countries``).
        countries: sorted ISO country codes.
        population: population (float, >= 0).
        lat, lon: coordinates in degrees.
        pop_rank: 1-based rank of the city by population inside its country
            (1 = biggest city of the country). Capitals and the biggest cities
            of a country attract most partnerships, so this is a key prior.
        country_size: number of gazetteer cities of the city's country.
        admin1: integer code of the city's first-level region (country and GeoNames admin1 code).
        names: the place names (``None`` when the frame has none: then no two places are namesakes).
    """

    geonameids: np.ndarray
    country: np.ndarray
    countries: np.ndarray
    population: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    pop_rank: np.ndarray
    country_size: np.ndarray
    admin1: np.ndarray
    names: np.ndarray | None = None

    @classmethod
    def from_frame(cls, cities: pd.DataFrame) -> CityIndex:
        geonameids = cities["geonameid"].to_numpy(dtype=np.int64)
        if len(np.unique(geonameids)) != len(geonameids):
            raise ValueError("cities.geonameid must be unique")
        country_str = cities["country"].astype(str).to_numpy()
        countries, country = np.unique(country_str, return_inverse=True)
        population = np.clip(
            pd.to_numeric(cities["population"], errors="coerce").fillna(0).to_numpy(dtype=float),
            0,
            None,
        )
        order = pd.DataFrame({"c": country, "p": population})
        pop_rank = order.groupby("c")["p"].rank(method="first", ascending=False).to_numpy(dtype=float)
        country_size = np.bincount(country, minlength=len(countries))[country].astype(float)
        admin1_key = np.char.add(country_str.astype("U8"), cities["admin1"].astype(str).to_numpy().astype("U32"))
        _, admin1 = np.unique(admin1_key, return_inverse=True)
        return cls(
            geonameids=geonameids,
            country=country.astype(np.int64),
            countries=countries,
            population=population,
            lat=cities["latitude"].to_numpy(dtype=float),
            lon=cities["longitude"].to_numpy(dtype=float),
            pop_rank=pop_rank,
            country_size=country_size,
            admin1=admin1.astype(np.int64),
            names=cities["name"].astype(str).to_numpy(dtype=object) if "name" in cities else None,
        )

    def name_index(self) -> NameIndex:
        """The names as sparse incidences (:class:`matcher.names.NameIndex`), built on first use and kept (not
        pickled: rebuilt from ``names``)."""
        cached = self.__dict__.get("_name_index")
        if cached is None:
            cached = NameIndex(self.names if self.names is not None else [""] * self.n)
            self.__dict__["_name_index"] = cached
        return cached

    def near_index(self, radius_km: float = NEAR_KM) -> NearIndex:
        """The places as a k-d tree (:class:`matcher.geo.NearIndex`) for one radius, built on first use
        and kept (not pickled)."""
        cache = self.__dict__.setdefault("_near_index", {})
        if radius_km not in cache:
            cache[radius_km] = NearIndex(self.lat, self.lon, radius_km)
        return cache[radius_km]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_name_index", None)
        state.pop("_near_index", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("names", None)
        self.__dict__.update(state)

    @property
    def n(self) -> int:
        return len(self.geonameids)

    @property
    def n_countries(self) -> int:
        return len(self.countries)

    def positions(self, geonameids: Sequence[int] | np.ndarray, strict: bool = True) -> np.ndarray:
        """Gazetteer positions of ``geonameids`` (-1 for unknown ids unless ``strict``)."""
        ids = np.asarray(geonameids, dtype=np.int64)
        sorter = np.argsort(self.geonameids)
        idx = np.searchsorted(self.geonameids, ids, sorter=sorter)
        idx = np.clip(idx, 0, len(sorter) - 1)
        pos = sorter[idx]
        found = self.geonameids[pos] == ids
        if strict and not found.all():
            missing = ids[~found][:5].tolist()
            raise KeyError(f"geonameids not in the gazetteer: {missing}")
        return np.where(found, pos, -1)

    def country_code(self, code: str) -> int:
        """Integer code of an ISO country code, -1 if the gazetteer has no such country."""
        i = int(np.searchsorted(self.countries, code))
        if i < len(self.countries) and self.countries[i] == code:
            return i
        return -1

    def distance_km(self, rows: np.ndarray) -> np.ndarray:
        """Great-circle distance in km from the cities at ``rows`` to all cities, ``(len(rows), n)``."""
        return haversine_km(self.lat[rows, None], self.lon[rows, None], self.lat[None, :], self.lon[None, :])


def pair_positions(index: CityIndex, pairs: pd.DataFrame) -> np.ndarray:
    """Undirected, de-duplicated ``(k, 2)`` positions of the pairs in the gazetteer.

    Pairs with a city missing from the gazetteer and self-pairs are dropped; each
    undirected pair is kept once with the smaller position first.
    """
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    a = index.positions(pairs["geonameid_a"].to_numpy(), strict=False)
    b = index.positions(pairs["geonameid_b"].to_numpy(), strict=False)
    keep = (a >= 0) & (b >= 0) & (a != b)
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[keep]
    if len(e) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(e, axis=0)


def adjacency(n: int, edges: np.ndarray) -> sp.csr_matrix:
    """Symmetric binary CSR adjacency matrix from undirected edges."""
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    data = np.ones(len(rows), dtype=np.float64)
    adj = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0
    return adj


@dataclass
class PartnerGraph:
    """TRAIN partnership graph over the gazetteer plus country-level aggregates.

    Attributes:
        adj: symmetric binary adjacency (CSR, ``n x n``).
        degree: number of TRAIN partners per city.
        country_pairs: ``(C, C)`` count of TRAIN pairs between two countries
            (a domestic pair counts once on the diagonal).
        country_degree: sum of city degrees per country (partnership endpoints).
        partner_countries: ``(n, C)`` sparse (CSR) count of each city's partners per
            country ("how much does this city twin with country X"); sparse because
            most gazetteer cities (160k of 170k in cities1000) have no partner at all.
    """

    index: CityIndex
    edges: np.ndarray
    adj: sp.csr_matrix
    degree: np.ndarray
    country_pairs: np.ndarray
    country_degree: np.ndarray
    partner_countries: sp.csr_matrix

    @classmethod
    def build(cls, index: CityIndex, edges: np.ndarray) -> PartnerGraph:
        n, nc = index.n, index.n_countries
        adj = adjacency(n, edges)
        degree = np.asarray(adj.sum(axis=1)).ravel()
        ca = index.country[edges[:, 0]]
        cb = index.country[edges[:, 1]]
        cp = np.zeros((nc, nc), dtype=float)
        np.add.at(cp, (ca, cb), 1.0)
        off = ca != cb
        np.add.at(cp, (cb[off], ca[off]), 1.0)
        country_degree = np.bincount(index.country, weights=degree, minlength=nc)
        onehot = sp.csr_matrix((np.ones(n), (np.arange(n), index.country)), shape=(n, nc))
        partner_countries = sp.csr_matrix(adj @ onehot)
        return cls(
            index=index,
            edges=edges,
            adj=adj,
            degree=degree,
            country_pairs=cp,
            country_degree=country_degree,
            partner_countries=partner_countries,
        )

    def partners(self, row: int) -> np.ndarray:
        """Gazetteer positions of the TRAIN partners of the city at ``row``."""
        return self.adj.indices[self.adj.indptr[row] : self.adj.indptr[row + 1]]


def neighbour_lists(pairs: np.ndarray, n: int) -> list[np.ndarray]:
    """For each of ``n`` rows, the rows it is paired with (both directions)."""
    if len(pairs) == 0:
        return [np.empty(0, np.int64) for _ in range(n)]
    both = np.concatenate([pairs, pairs[:, ::-1]])
    order = np.argsort(both[:, 0], kind="stable")
    both = both[order]
    starts = np.searchsorted(both[:, 0], np.arange(n + 1))
    return [both[starts[i] : starts[i + 1], 1] for i in range(n)]
