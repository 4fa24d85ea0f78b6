"""Baseline rankers for the link-prediction evaluation.

Every ranker follows the :class:`Ranker` protocol: ``fit(cities, train)`` then
``score_sources(geonameids)`` returns an ``(m, n_cities)`` matrix aligned with
the gazetteer row order (higher = more likely partner). Candidate exclusion
(the source itself and its TRAIN partners) is done by the evaluator.

All scoring is vectorised over candidates (whole rows of the matrix at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from matcher.graph import CityIndex, PartnerGraph, pair_positions


@runtime_checkable
class Ranker(Protocol):
    """Anything that can be fitted on TRAIN pairs and score candidate partners."""

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> Ranker: ...

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray: ...


class _GraphRanker:
    """Shared fitting logic: index the gazetteer and build the TRAIN graph."""

    index_: CityIndex
    graph_: PartnerGraph
    geonameids_: np.ndarray

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> _GraphRanker:
        self.index_ = CityIndex.from_frame(cities)
        self.graph_ = PartnerGraph.build(self.index_, pair_positions(self.index_, pairs))
        self.geonameids_ = self.index_.geonameids
        return self

    def _rows(self, geonameids: Sequence[int]) -> np.ndarray:
        return self.index_.positions(geonameids)

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class RandomRanker(_GraphRanker):
    """Uniform random scores from a seeded generator (reproducible per fit)."""

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> RandomRanker:
        super().fit(cities, pairs)
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        return self.rng_.random((len(rows), self.index_.n))


class PopulationRanker(_GraphRanker):
    """Bigger cities first, whatever the source."""

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        return np.broadcast_to(self.index_.population, (len(rows), self.index_.n)).copy()


class PopularityRanker(_GraphRanker):
    """Cities with more TRAIN partners first (preferential attachment)."""

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        return np.broadcast_to(self.graph_.degree, (len(rows), self.index_.n)).copy()


class NearestRanker(_GraphRanker):
    """Closest cities (great-circle distance) first."""

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        return -self.index_.distance_km(rows)


class AdamicAdarRanker(_GraphRanker):
    """Adamic-Adar: sum over shared TRAIN partners z of ``1 / log(deg z)``.

    A shared partner has degree >= 2, so the logarithm is positive; cities of
    degree < 2 get weight 0 (they cannot be shared partners anyway).
    """

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> AdamicAdarRanker:
        super().fit(cities, pairs)
        deg = self.graph_.degree
        w = np.zeros_like(deg)
        ok = deg >= 2
        w[ok] = 1.0 / np.log(deg[ok])
        self.weighted_adj_ = self.graph_.adj.multiply(w[None, :]).tocsr()
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        # (m x n) @ (n x n): sum_z A[a, z] w_z A[z, c]
        return np.asarray((self.weighted_adj_[rows] @ self.graph_.adj).todense())


class CountryAffinityRanker(_GraphRanker):
    """Country-pair affinity times the candidate's share of its country's ties.

    ``score(a, c) = pairs(country(a), country(c)) * deg(c) / sum_{c' in country(c)} deg(c')``
    where ``pairs`` counts TRAIN pairs between the two countries; 0 where the
    candidate's country has no TRAIN partnership endpoints.
    """

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> CountryAffinityRanker:
        super().fit(cities, pairs)
        g = self.graph_
        cdeg = g.country_degree[self.index_.country]
        self.share_ = np.divide(g.degree, cdeg, out=np.zeros_like(g.degree), where=cdeg > 0)
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        rows = self._rows(geonameids)
        ctry = self.index_.country
        affinity = self.graph_.country_pairs[ctry[rows]][:, ctry]
        return affinity * self.share_[None, :]


BASELINES: dict[str, type[_GraphRanker]] = {
    "population": PopulationRanker,
    "popularity": PopularityRanker,
    "nearest": NearestRanker,
    "adamic_adar": AdamicAdarRanker,
    "country_affinity": CountryAffinityRanker,
}
