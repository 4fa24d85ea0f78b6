"""Named pair features of the partnership-likelihood model, and the featurizer that computes them.

Every feature is registered BY NAME with its function: a weight or a column is looked up by name, never by position:

* :data:`STAGE1` — the cheap features of the candidate-generation logistic regression. Each one has a pairwise form
  (``pair``: one value per explicit (source, candidate) pair) and *one* matrix form used to score a batch of sources
  against every city at once: ``country`` (the source's country and the candidate: a cached ``(C, n)`` table),
  ``source_country`` (an ``(m, C)`` table gathered by the candidate's country) or ``source`` (an ``(m, n)`` sparse
  matrix, or a dense term in factored form, :mod:`matcher.row_terms`). :meth:`Featurizer.stage1_matrix` adds
  ``weights[name] × feature`` for every registered name, so both forms give the same linear score.
* :data:`STAGE2` — the re-ranking features that the gradient-boosted stage adds to the stage-1 ones.

Why these features (twinning literature and our data): twinning clusters by country pair (German-French,
Polish-Ukrainian, Japanese-American ...); a city that already twins with three Polish cities is likely to twin
with a fourth; partners of partners matter (common neighbours, Adamic-Adar, resource allocation, 3-step paths);
well-linked cities pair with well-linked cities; capitals and the biggest cities of a country twin most;
distance is a weak signal; same continent, neighbouring countries and a shared language help (and carry over to
country pairs without known partnerships: :mod:`matcher.transfer_features`); towns twin with their namesakes,
their neighbours across a border and the towns of a district their own district twins with
(:mod:`matcher.place_features`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .geo import haversine_km
from .graph import CityIndex
from .graph_stats import CountryMeta, GraphStats
from .place_features import place_stage1
from .row_terms import OuterRows, RowTerm
from .sources import Batch, Sources, mean_over
from .transfer_features import country_affinity_table, gather, lookup_pairs, transfer_stage1

F32 = np.float32


class Pairs:
    """Explicit (query ``qi`` of a batch, candidate ``cand``) pairs, with the stage-1 score and rank if known."""

    def __init__(
        self,
        batch: Batch,
        qi: np.ndarray,
        cand: np.ndarray,
        s1_score: np.ndarray | None = None,
        s1_rank: np.ndarray | None = None,
    ) -> None:
        self.b: Batch = batch
        self.qi: np.ndarray = qi
        self.cand: np.ndarray = cand
        self.s: GraphStats = batch.s
        self.index: CityIndex = batch.index
        self.src: Sources = batch.src
        self.fz: Featurizer = batch.fz
        self.ca: np.ndarray = batch.src.country[qi]  # source country
        self.cc: np.ndarray = batch.index.country[cand]  # candidate country
        self.s1_score = s1_score
        self.s1_rank = s1_rank

    @cached_property
    def country_pairs(self) -> np.ndarray:
        return self.s.country_pairs[self.ca, self.cc]

    @cached_property
    def src_degree(self) -> np.ndarray:
        return self.b.degree[self.qi]

    def lookup(self, mat: sp.spmatrix) -> np.ndarray:
        """``mat[qi[k], cand[k]]`` for every pair of a sparse ``(m, n)`` matrix."""
        return lookup_pairs(mat, self.qi, self.cand)

    @cached_property
    def partner_country_cosine(self) -> np.ndarray:
        pa = self.b.partner_countries  # (m, C) dense, small
        pc = sp.coo_matrix(self.s.partner_countries[self.cand])  # (pairs, C) sparse
        num = np.bincount(pc.row, weights=pc.data * pa[self.qi[pc.row], pc.col], minlength=len(self.cand))
        den = np.linalg.norm(pa, axis=1)[self.qi] * self.s.partner_country_norm[self.cand]
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class Stage1Feature:
    """A stage-1 feature: its pairwise form and exactly one of its three matrix forms (see the module doc)."""

    name: str
    pair: Callable[[Pairs], np.ndarray]
    country_pair: Callable[[Featurizer], np.ndarray] | None = None
    candidate: Callable[[Featurizer], np.ndarray] | None = None
    country: Callable[[Featurizer], sp.spmatrix] | None = None
    source_country: Callable[[Batch], np.ndarray] | None = None
    source: Callable[[Batch], sp.spmatrix | RowTerm] | None = None
    linked: Callable[[Batch], np.ndarray] | None = None

    @property
    def forms(self) -> tuple[object | None, ...]:
        return (self.country_pair, self.candidate, self.country, self.source_country, self.source, self.linked)


STAGE1: tuple[Stage1Feature, ...] = (
    Stage1Feature(
        "log_country_pairs",  # log1p pairs(country a, country c)
        pair=lambda p: np.log1p(p.country_pairs),
        country_pair=lambda f: np.log1p(f.stats.country_pairs),
    ),
    Stage1Feature(
        "log_cand_ties_to_src_country",  # log1p #partners of c in country(a)
        pair=lambda p: np.log1p(gather(p.s.partner_countries, p.cand, p.ca)),
        country=lambda f: sp.csr_matrix(f.stats.partner_countries.T).log1p(),
    ),
    Stage1Feature(
        "log_src_ties_to_cand_country",  # log1p #partners of a in country(c)
        pair=lambda p: np.log1p(p.b.partner_countries[p.qi, p.cc]),
        source_country=lambda b: np.log1p(b.partner_countries),
    ),
    Stage1Feature(
        "log_src_hop2_in_cand_country",  # log1p #partners-of-partners of a in country(c)
        pair=lambda p: np.log1p(p.b.hop2_countries[p.qi, p.cc]),
        source_country=lambda b: np.log1p(b.hop2_countries),
    ),
    Stage1Feature(
        "log_country_affinity",  # log1p 100 * pairs(ca, cc) * share(c)
        pair=lambda p: np.log1p(100.0 * p.country_pairs * p.s.share[p.cand]),
        country=lambda f: country_affinity_table(f),
    ),
    Stage1Feature(
        "same_country",
        pair=lambda p: (p.ca == p.cc).astype(float),
        country_pair=lambda f: np.eye(f.index.n_countries),
    ),
    Stage1Feature(
        "log_deg_product",  # log1p deg a * log1p deg c
        pair=lambda p: np.log1p(p.src_degree) * np.log1p(p.s.degree[p.cand]),
        linked=lambda b: np.multiply.outer(np.log1p(b.degree), np.log1p(b.s.degree[b.fz.linked])),
    ),
    Stage1Feature(
        "log_pop_product",  # log1p pop a * log1p pop c / 100
        pair=lambda p: np.log1p(p.src.population[p.qi]) * p.fz.log_pop[p.cand] / 100.0,
        source=lambda b: OuterRows(np.log1p(b.src.population).astype(F32), (b.fz.log_pop / 100.0).astype(F32)),
    ),
    Stage1Feature(
        "log_common_neighbours",
        pair=lambda p: np.log1p(p.lookup(p.b.common)),
        source=lambda b: b.common.log1p(),
    ),
    Stage1Feature("adamic_adar", pair=lambda p: p.lookup(p.b.adamic_adar), source=lambda b: b.adamic_adar),
    Stage1Feature(
        "log_deg_cand", pair=lambda p: np.log1p(p.s.degree[p.cand]), candidate=lambda f: np.log1p(f.stats.degree)
    ),
    Stage1Feature("log_pop_cand", pair=lambda p: p.fz.log_pop[p.cand], candidate=lambda f: f.log_pop),
    Stage1Feature("log_pop_rank_cand", pair=lambda p: p.fz.log_pop_rank[p.cand], candidate=lambda f: f.log_pop_rank),
    Stage1Feature(
        "log_country_degree_cand",
        pair=lambda p: np.log1p(p.s.country_degree[p.cc]),
        candidate=lambda f: np.log1p(f.stats.country_degree[f.index.country]),
    ),
    Stage1Feature("capital_cand", pair=lambda p: p.fz.meta.capital[p.cand], candidate=lambda f: f.meta.capital),
    Stage1Feature(
        "log_cand_ties_to_src_region",  # log1p #partners of c in admin1(a)
        pair=lambda p: np.log1p(p.lookup(p.b.cand_ties_to_src_region)),
        source=lambda b: b.cand_ties_to_src_region.log1p(),
    ),
    Stage1Feature(
        "log_src_ties_to_cand_region",  # log1p #partners of a in admin1(c)
        pair=lambda p: np.log1p(gather(p.b.src_ties_to_region, p.qi, p.index.admin1[p.cand])),
        source=lambda b: b.log_src_ties_to_cand_region,
    ),
    # what a place is and where it lies: namesakes, neighbours, areas (matcher.place_features)
    *place_stage1(Stage1Feature),
    # what carries over to country pairs and places without known partnerships (matcher.transfer_features)
    *transfer_stage1(Stage1Feature),
)

STAGE2: tuple[tuple[str, Callable[[Pairs], np.ndarray]], ...] = (
    ("stage1_score", lambda p: np.asarray(p.s1_score, float)),
    ("log_stage1_rank", lambda p: np.log1p(np.asarray(p.s1_rank, float))),
    ("log_deg_src", lambda p: np.log1p(p.src_degree)),
    ("log_pop_src", lambda p: np.log1p(p.src.population[p.qi])),
    ("log_pop_rank_src", lambda p: np.log(p.src.pop_rank[p.qi])),
    ("capital_src", lambda p: p.src.capital[p.qi]),
    ("log_country_degree_src", lambda p: np.log1p(p.s.country_degree[p.ca])),
    ("src_cold", lambda p: (p.src_degree == 0).astype(float)),
    ("share_cand", lambda p: p.s.share[p.cand]),
    ("frac_src_country_to_cand_country", lambda p: _div(p.country_pairs, p.s.country_degree[p.ca])),
    ("frac_cand_country_to_src_country", lambda p: _div(p.country_pairs, p.s.country_degree[p.cc])),
    ("frac_cand_ties_to_src_country", lambda p: _div(gather(p.s.partner_countries, p.cand, p.ca), p.s.degree[p.cand])),
    ("frac_src_ties_to_cand_country", lambda p: _div(p.b.partner_countries[p.qi, p.cc], p.src_degree)),
    (
        "frac_src_hop2_in_cand_country",
        lambda p: _div(p.b.hop2_countries[p.qi, p.cc], p.b.hop2_countries.sum(axis=1)[p.qi]),
    ),
    ("log_cand_hop2_in_src_country", lambda p: np.log1p(gather(p.s.hop2_countries, p.cand, p.ca))),
    ("resource_allocation", lambda p: p.lookup(p.b.resource_allocation)),
    ("log_paths3", lambda p: np.log1p(p.lookup(p.b.paths3))),
    ("partner_country_cosine", lambda p: p.partner_country_cosine),
    (
        "log_distance_km",
        lambda p: np.log1p(haversine_km(p.src.lat[p.qi], p.src.lon[p.qi], p.index.lat[p.cand], p.index.lon[p.cand])),
    ),
    ("same_admin1", lambda p: ((p.src.admin1[p.qi] == p.index.admin1[p.cand]) & (p.ca == p.cc)).astype(float)),
    ("log_deg_rank_cand", lambda p: np.log(p.s.deg_rank[p.cand])),
    ("log_country_size_cand", lambda p: np.log(p.index.country_size[p.cand])),
    # size assortativity as each place shows it: how big its partners are, against the other's size
    ("src_partner_log_pop", lambda p: p.b.partner_log_pop[p.qi]),
    ("cand_log_pop_vs_src_partners", lambda p: p.fz.log_pop[p.cand] - p.b.partner_log_pop[p.qi]),
    ("src_log_pop_vs_cand_partners", lambda p: np.log1p(p.src.population[p.qi]) - p.fz.partner_log_pop[p.cand]),
)


STAGE1_FEATURES: tuple[str, ...] = tuple(f.name for f in STAGE1)
STAGE2_FEATURES: tuple[str, ...] = STAGE1_FEATURES + tuple(name for name, _ in STAGE2)


def _check_registry() -> None:
    for f in STAGE1:
        if sum(x is not None for x in f.forms) != 1:
            raise TypeError(f"stage-1 feature {f.name!r} needs exactly one matrix form")
    if len(set(STAGE2_FEATURES)) != len(STAGE2_FEATURES):
        raise TypeError("feature names must be unique")


_check_registry()


class Featurizer:
    """Computes the named stage-1 and stage-2 features of source/candidate pairs on one graph."""

    index: CityIndex
    stats: GraphStats
    meta: CountryMeta
    log_pop: np.ndarray
    log_pop_rank: np.ndarray

    def __init__(self, index: CityIndex, stats: GraphStats, meta: CountryMeta) -> None:
        self.index = index
        self.stats = stats
        self.meta = meta
        self.log_pop = np.log1p(index.population)
        self.log_pop_rank = np.log(index.pop_rank)
        self._table_key: tuple | None = None
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._split: tuple[int, np.ndarray, np.ndarray] | None = None
        self._linked: np.ndarray | None = None
        self._batch: Batch | None = None  # the last sources' Batch: the stage-1 matrix and stage-2 frame share it
        self.size_orders: dict[tuple[int, int], np.ndarray] = {}  # see transfer_features.size_prior_order

    # -- sources ---------------------------------------------------------- #
    def sources(self, rows: np.ndarray) -> Sources:
        ix = self.index
        return Sources(
            rows=rows,
            country=ix.country[rows],
            population=ix.population[rows],
            pop_rank=ix.pop_rank[rows],
            capital=self.meta.capital[rows],
            lat=ix.lat[rows],
            lon=ix.lon[rows],
            admin1=ix.admin1[rows],
            adj=self.stats.adj[rows],
        )

    def virtual_source(self, country: int, population: float, lat: float, lon: float) -> Sources:
        """A city outside the gazetteer, without partners (``country`` is an index into ``index.countries``)."""
        ix = self.index
        pop_rank = 1.0 + float(np.sum((ix.country == country) & (ix.population > population)))
        return Sources(
            rows=np.array([-1]),
            country=np.array([max(country, 0)]),
            population=np.array([float(population)]),
            pop_rank=np.array([pop_rank]),
            capital=np.zeros(1),
            lat=np.array([float(lat)]),
            lon=np.array([float(lon)]),
            admin1=np.array([-1]),
            adj=sp.csr_matrix((1, ix.n)),
        )

    def batch(self, src: Sources) -> Batch:
        """The :class:`Batch` of ``src`` on this graph: the same object for the same ``src`` as long as no other
        sources came in between, so that scoring (stage-1 matrix, then the shortlist's stage-2 frame) computes each
        sparse feature once. ``src`` must not change after its first use (a new :class:`Sources` for new sources)."""
        last = self._batch  # one read: another thread may replace it, never mutate it
        if last is not None and last.src is src:
            return last
        b = Batch(self, src)
        self._batch = b
        return b

    # -- pairwise features -------------------------------------------------- #
    def stage1_frame(self, src: Sources, qi: np.ndarray, cand: np.ndarray) -> pd.DataFrame:
        """Stage-1 features of explicit (query, candidate) pairs, one named column per feature."""
        p = Pairs(self.batch(src), qi, cand)
        return _frame({f.name: f.pair(p) for f in STAGE1}, len(qi))

    def stage2_frame(
        self, src: Sources, qi: np.ndarray, cand: np.ndarray, s1_score: np.ndarray, s1_rank: np.ndarray
    ) -> pd.DataFrame:
        """Stage-1 and stage-2 features of explicit pairs (columns in :data:`STAGE2_FEATURES` order)."""
        p = Pairs(self.batch(src), qi, cand, s1_score, s1_rank)
        cols = {f.name: f.pair(p) for f in STAGE1}
        cols.update((name, fn(p)) for name, fn in STAGE2)
        return _frame(cols, len(qi))

    # -- stage-1 score of every city ---------------------------------------- #
    def stage1_matrix(self, src: Sources, weights: Mapping[str, float], intercept: float) -> np.ndarray:
        """Stage-1 linear score of every source against every city, ``(m, n)`` float32.

        Equal (to float32 precision) to ``intercept + Σ weights[name] · stage1_frame(...)[name]`` over all pairs,
        but built from the matrix forms of the features (no per-pair feature matrix): one ``(m, C)`` table gathered
        by candidate country, one ``(n,)`` vector of the candidate terms, the dense, per-country and sparse (graph)
        terms. Only a handful of passes over the ``(m, n)`` output.
        """
        w = stage1_weights(weights)
        b = self.batch(src)
        cp, cand, ctry_linked = self._static_terms(w)
        by_country = cp[src.country] + float(intercept)
        for f in STAGE1:
            if f.source_country is not None:
                by_country += w[f.name] * f.source_country(b)
        out = np.take(by_country.astype(F32), self.index.country, axis=1)
        out += cand[None, :]
        # terms that are zero for every city without partners: a dense block over the linked columns only
        block = ctry_linked[src.country]
        for f in STAGE1:
            if f.linked is not None and w[f.name] != 0.0:
                block += (w[f.name] * f.linked(b)).astype(F32)
        out[:, self.linked] += block
        for f in STAGE1:
            if f.source is None or w[f.name] == 0.0:
                continue
            x = f.source(b)
            if sp.issparse(x):
                # graph products and region sums: each has one entry per (row, column), so a scatter-add is exact
                csr = sp.csr_matrix(x)
                rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
                out[rows, csr.indices] += (w[f.name] * csr.data).astype(F32)
            else:  # a dense term in factored form (matcher.row_terms), added row by row
                x.add_to(out, w[f.name])
        return out

    def _static_terms(self, w: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weighted terms that do not depend on the source's partners, cached per weight set:
        ``(C, C)`` country-pair terms, ``(n,)`` candidate terms and the ``(C, linked)`` country terms (float32)."""
        key = tuple(sorted(w.items()))
        if self._table_key == key and self._table is not None:
            return self._table
        nc, n = self.index.n_countries, self.index.n
        cp = np.zeros((nc, nc))
        cand = np.zeros(n)
        ctry = sp.csr_matrix((nc, n))
        for f in STAGE1:
            if f.country_pair is not None:
                cp += w[f.name] * np.asarray(f.country_pair(self), float)
            elif f.candidate is not None:
                cand += w[f.name] * np.asarray(f.candidate(self), float)
            elif f.country is not None:
                ctry = ctry + w[f.name] * sp.csr_matrix(f.country(self))
        ctry = sp.csc_matrix(ctry)
        if ctry.nnz and np.any(np.diff(ctry.indptr)[self.stats.degree <= 0]):
            raise ValueError("a 'country' stage-1 form must be zero for cities without partners")
        self._table_key, self._table = key, (cp, cand.astype(F32), ctry[:, self.linked].toarray().astype(F32))
        return self._table

    @property
    def linked(self) -> np.ndarray:
        """Columns (cities) with at least one partner on this graph."""
        if self._linked is None:
            self._linked = np.flatnonzero(self.stats.degree > 0)
        return self._linked

    @cached_property
    def partner_log_pop(self) -> np.ndarray:
        """``(n,)`` mean log population of every city's partners (NaN without partners)."""
        return mean_over(self.stats.adj, self.log_pop, self.stats.degree)

    def release(self) -> None:
        """Drop the cached per-weight tables (they are rebuilt on the next use)."""
        self._table_key, self._table = None, None
        self._batch = None
        self.size_orders.clear()

    def column_split(self, max_degree: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns (cities) with at most ``max_degree`` partners, and the others (cached)."""
        if self._split is None or self._split[0] != max_degree:
            low = self.stats.degree <= max_degree
            self._split = (max_degree, np.flatnonzero(low), np.flatnonzero(~low))
        return self._split[1], self._split[2]

    @cached_property
    def region_members(self) -> sp.csr_matrix:
        """``(R, n)`` one-hot: the cities of every admin1 region."""
        n = self.index.n
        return sp.csr_matrix(
            (np.ones(n, F32), (self.index.admin1, np.arange(n))), shape=(int(self.index.admin1.max()) + 1, n)
        )


def stage1_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The stage-1 weights as ``{name: weight}``; every registered feature must have one, and no other name."""
    missing = set(STAGE1_FEATURES) - set(weights)
    unknown = set(weights) - set(STAGE1_FEATURES)
    if missing or unknown:
        raise KeyError(f"stage-1 weights: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return {name: float(weights[name]) for name in STAGE1_FEATURES}


def _frame(cols: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
    return pd.DataFrame({name: np.asarray(v, dtype=np.float64) for name, v in cols.items()}, index=pd.RangeIndex(n))


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
