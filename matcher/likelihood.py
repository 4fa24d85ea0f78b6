"""Learned partnership likelihood (link prediction) for sister cities.

Two-stage design
----------------
1. **Candidate generation** (cheap, all ~34k cities): a standardised logistic regression on the named
   :data:`~matcher.pair_features.STAGE1` features, evaluated in matrix form so a batch of sources is scored
   against every gazetteer city with a few dense operations.
2. **Re-ranking** (rich, the best ``n_candidates`` per source plus ``cold_candidates`` rarely-twinned cities):
   a ``HistGradientBoostingClassifier`` on the stage-1 features, the stage-1 score and rank, and the
   :data:`~matcher.pair_features.STAGE2` features.

The features are defined by name in :mod:`matcher.pair_features`; the stage-1 weights are kept as
``{feature name: weight}`` (:attr:`PartnershipLikelihood.stage1_weights_`), never by position.

Leakage control: the training examples are produced with *inner folds*: the TRAIN edges are split into
``inner_folds`` parts; for each part the graph features are computed on the other parts only and the held-out
edges are the positives. Sources whose every edge is held out are genuine cold-start examples, so the model
learns to fall back on country/size priors for cities without known partners (and
:meth:`PartnershipLikelihood.score_new` uses the same path for custom cities).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import joblib
import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .graph import CityIndex, adjacency, pair_positions
from .graph_stats import CountryMeta, GraphStats
from .pair_features import STAGE1_FEATURES, Featurizer, Sources, lookup_pairs

ARTIFACT_FORMAT = 2  # bumped when a saved model of an older layout can no longer be loaded


class _InnerFold(NamedTuple):
    """Features on the graph without one edge fold (``fz``), the held-out edges and their endpoints."""

    fz: Featurizer
    held: sp.csr_matrix
    sources: np.ndarray


class PartnershipLikelihood(BaseEstimator):
    """Two-stage learned ranker of likely sister-city partners.

    Parameters:
        n_candidates: stage-1 shortlist size per source that stage 2 re-ranks.
        inner_folds: number of edge folds used to build leakage-free training
            examples (features from the other folds, labels from the held-out one).
        stage1_negatives: uniformly sampled negatives per source for stage 1.
        cold_candidates: extra shortlist slots reserved for the best-scored
            cities with at most ``cold_max_degree`` TRAIN partners.
        cold_max_degree: see ``cold_candidates``.
        neg_per_source: expected number of shortlist negatives per source kept
            for training stage 2 (the rest are subsampled away and the
            probabilities are odds-corrected for the subsampling).
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf,
        l2_regularization: ``HistGradientBoostingClassifier`` settings.
        batch_size: sources scored together (memory ~ batch_size x n_cities x 8 B x few).
        random_state: seeds the inner folds, the negative sampling and the booster.

    Fitted attributes end with ``_``: ``geonameids_`` is the gazetteer order of the columns returned by
    :meth:`score_sources`; ``stage1_pipeline_`` the fitted scaler + logistic regression;
    ``stage1_weights_`` / ``stage1_intercept_`` the same model on raw features, by feature name;
    ``booster_`` the re-ranker; ``metadata_`` what is saved with the artifact (``model_version`` is
    ``lk-<first 12 hex of the training-pairs SHA-256>-<UTC fit start>``).
    """

    def __init__(
        self,
        n_candidates: int = 300,
        inner_folds: int = 10,
        stage1_negatives: int = 40,
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
        """Fit both stages on ``pairs`` (columns ``geonameid_a``, ``geonameid_b``) over the ``cities`` gazetteer."""
        started = _dt.datetime.now(_dt.UTC)
        rng = np.random.default_rng(self.random_state)
        self._index_gazetteer(cities, pairs)
        folds = self._inner_folds(rng)
        self._fit_stage1(*self._stage1_examples(folds, rng))
        self._fit_stage2(*self._stage2_examples(folds, rng))
        self.featurizer_ = self._featurizer(GraphStats.build(self.index_, self.edges_))  # serving: full TRAIN graph
        self.metadata_ = self._metadata(started)
        return self

    def _index_gazetteer(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> None:
        """Stage 0: gazetteer positions, TRAIN edges and the static country relations."""
        self.index_ = CityIndex.from_frame(cities)
        self.edges_ = pair_positions(self.index_, pairs)
        self.country_meta_ = CountryMeta.build(cities, self.index_)
        self.geonameids_ = self.index_.geonameids

    def _inner_folds(self, rng: np.random.Generator) -> list[_InnerFold]:
        """Split the TRAIN edges into folds; each fold's features come from the other folds only."""
        n_folds = int(max(2, self.inner_folds))
        fold_of = rng.permutation(len(self.edges_)) % n_folds
        folds = []
        for j in range(n_folds):
            fz = self._featurizer(GraphStats.build(self.index_, self.edges_[fold_of != j]))
            held_edges = self.edges_[fold_of == j]
            folds.append(_InnerFold(fz, adjacency(self.index_.n, held_edges), np.unique(held_edges.ravel())))
        return folds

    def _batches(self, folds: list[_InnerFold]) -> Iterator[tuple[_InnerFold, np.ndarray, Sources]]:
        for fold in folds:
            for start in range(0, len(fold.sources), self.batch_size):
                rows = fold.sources[start : start + self.batch_size]
                yield fold, rows, fold.fz.sources(rows)

    def _stage1_examples(self, folds: list[_InnerFold], rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """Stage 1 training set: held-out edges (positives) and uniformly drawn cities (negatives)."""
        xs, ys = [], []
        r, n = int(self.stage1_negatives), self.index_.n
        for fold, rows, src in self._batches(folds):
            hb = fold.held[rows]
            pq = np.repeat(np.arange(len(rows)), np.diff(hb.indptr))
            nq = np.repeat(np.arange(len(rows)), r)
            nc = rng.integers(0, n, len(nq))
            keep = nc != rows[nq]
            xs.append(fold.fz.stage1_frame(src, np.concatenate([pq, nq[keep]]), np.concatenate([hb.indices, nc[keep]])))
            ys.append(np.concatenate([np.ones(len(pq)), np.zeros(int(keep.sum()))]))
        return pd.concat(xs, ignore_index=True), np.concatenate(ys)

    def _fit_stage1(self, x1: pd.DataFrame, y1: np.ndarray) -> None:
        """Standardised logistic regression; its weights are folded back to raw features, by name."""
        pipe = Pipeline([("scale", StandardScaler()), ("logit", LogisticRegression(C=1.0, max_iter=2000))])
        pipe.fit(x1, y1)
        scaler, logit = pipe.named_steps["scale"], pipe.named_steps["logit"]
        raw = logit.coef_.ravel() / scaler.scale_
        self.stage1_pipeline_ = pipe
        self.stage1_weights_ = {str(name): float(w) for name, w in zip(pipe.feature_names_in_, raw, strict=True)}
        self.stage1_intercept_ = float(logit.intercept_[0] - np.sum(raw * scaler.mean_))

    def stage1_coefficients(self) -> pd.Series:
        """The stage-1 weights on raw features, indexed by feature name."""
        return pd.Series(self.stage1_weights_, name="weight").reindex(list(STAGE1_FEATURES))

    def _stage2_examples(self, folds: list[_InnerFold], rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """Stage 2 training set: every shortlisted held-out partner, and a subsample of the other shortlisted cities."""
        k = self._shortlist_size()
        self.keep_rate_ = min(1.0, self.neg_per_source / max(k + self.cold_candidates, 1))
        xs, ys = [], []
        n_pos = n_hit = 0
        for fold, rows, src in self._batches(folds):
            top, s1, rank = self._shortlist(fold.fz, src)
            qi = np.repeat(np.arange(len(rows)), top.shape[1])
            cand = top.ravel()
            y = lookup_pairs(fold.held[rows], qi, cand) > 0
            n_pos += fold.held[rows].nnz
            n_hit += int(y.sum())
            sel = y | (rng.random(len(y)) < self.keep_rate_)
            xs.append(fold.fz.stage2_frame(src, qi[sel], cand[sel], s1.ravel()[sel], rank.ravel()[sel]))
            ys.append(y[sel].astype(int))
        self.stage1_recall_ = n_hit / max(n_pos, 1)
        return pd.concat(xs, ignore_index=True), np.concatenate(ys)

    def _fit_stage2(self, x2: pd.DataFrame, y2: np.ndarray) -> None:
        self.booster_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(x2, y2)
        self.n_training_rows_ = int(len(y2))

    def _metadata(self, started: _dt.datetime) -> dict[str, Any]:
        sha = _pairs_sha256(self.index_, self.edges_)
        version = f"lk-{sha[:12]}-{started:%Y%m%dT%H%M%SZ}"
        return {
            "model_version": version,
            "version": version,
            "artifact_format": ARTIFACT_FORMAT,
            "created_at": started.isoformat(),
            "fit_seconds": (_dt.datetime.now(_dt.UTC) - started).total_seconds(),
            "library_versions": {
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "pandas": pd.__version__,
                "scipy": scipy.__version__,
            },
            "pairs_sha256": sha,
            "n_pairs": int(len(self.edges_)),
            "n_cities": int(self.index_.n),
            "params": self.get_params(),
            "stage1_recall": float(self.stage1_recall_),
            "cv_metrics": None,
        }

    def set_cv_metrics(self, metrics: dict[str, Any]) -> None:
        """Attach cross-validated metrics to ``metadata_`` (saved with the model)."""
        self.metadata_["cv_metrics"] = metrics

    def _featurizer(self, stats: GraphStats) -> Featurizer:
        return Featurizer(self.index_, stats, self.country_meta_)

    def _shortlist_size(self) -> int:
        return int(min(self.n_candidates, self.index_.n - 1))

    def _shortlist(
        self, fz: Featurizer, src: Sources, s: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage-1 shortlist per source (self and partners excluded), from the stage-1 scores ``s`` of every city.

        The ``n_candidates`` best cities by stage-1 score, plus the ``cold_candidates`` best cities among those
        with at most ``cold_max_degree`` partners: the linear score is dominated by candidate degree, so without
        this reserved quota rarely-twinned partners would never reach the re-ranker.

        Returns ``(top, score, rank)``, each ``(m, n_candidates + cold_candidates)``, sorted by stage-1 score;
        ``rank`` is the 0-based position in that order.
        """
        if s is None:
            s = fz.stage1_matrix(src, self.stage1_weights_, self.stage1_intercept_)
        sel = s.copy()
        real = src.rows >= 0
        sel[np.flatnonzero(real), src.rows[real]] = -np.inf
        coo = src.adj.tocoo()
        sel[coo.row, coo.col] = -np.inf
        k = self._shortlist_size()
        top = np.argpartition(-sel, k - 1, axis=1)[:, :k]
        cold = self.cold_candidates
        if cold > 0:
            low = fz.stats.degree <= self.cold_max_degree
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
    def _score(self, src: Sources) -> np.ndarray:
        fz = self.featurizer_
        s = fz.stage1_matrix(src, self.stage1_weights_, self.stage1_intercept_)
        top, ts, rank = self._shortlist(fz, src, s)
        m, kk = top.shape
        qi = np.repeat(np.arange(m), kk)
        p = self.booster_.predict_proba(fz.stage2_frame(src, qi, top.ravel(), ts.ravel(), rank.ravel()))[:, 1]
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
        """Cold-start scores ``(n_cities,)`` for a custom city not in the gazetteer (coordinates in degrees).

        Uses the same model as for known cities without partners: country-pair
        priors, candidate prominence and size assortativity drive the ranking.
        An unknown country code borrows a gazetteer country without any TRAIN
        partnership (no country-pair affinity), leaving size/prominence priors.
        """
        fz = self.featurizer_
        code = self.index_.country_code(str(country).upper())
        src = fz.virtual_source(code, float(population), float(latitude), float(longitude))
        if code < 0:
            empty = np.flatnonzero(fz.stats.country_degree == 0)
            src.country = np.array([int(empty[0]) if len(empty) else 0])
        return self._score(src)[0]

    # ---------------------------------------------------------- persistence
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("featurizer_", None)  # large derived arrays: rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        if "index_" in state and "stage1_weights_" not in state:
            raise ValueError("a PartnershipLikelihood saved by an older matcher version: train the model again")
        self.__dict__.update(state)
        if "index_" in state and "edges_" in state:
            self.featurizer_ = self._featurizer(GraphStats.build(self.index_, self.edges_))

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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _pairs_sha256(index: CityIndex, edges: np.ndarray) -> str:
    """SHA-256 of the TRAIN pairs as sorted (smaller, larger) geonameid pairs: independent of row order."""
    ids = np.sort(index.geonameids[edges], axis=1) if len(edges) else np.zeros((0, 2), np.int64)
    ids = ids[np.lexsort((ids[:, 1], ids[:, 0]))] if len(ids) else ids
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()
