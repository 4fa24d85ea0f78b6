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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from . import artifact
from .graph import CityIndex, adjacency, pair_positions
from .graph_stats import CountryMeta, GraphStats
from .inner_folds import InnerFold, available_threads, map_folds, sample_queries
from .known_gaps import KnownGaps
from .pair_features import STAGE1_FEATURES, Featurizer
from .shortlist import Quotas, excluded_cells, shortlist
from .size_prior import BLEND_COLUMNS, BlendFit, SizePrior, size_weight
from .sources import Sources
from .transfer_features import grouped_fold_assignment, lookup_pairs

T = TypeVar("T")


class PartnershipLikelihood(BaseEstimator):
    """Two-stage learned ranker of likely sister-city partners.

    Parameters:
        n_candidates: stage-1 shortlist size per source that stage 2 re-ranks.
        inner_folds: number of edge folds used to build leakage-free training
            examples (features from the other folds, labels from the held-out one).
        stage1_negatives: uniformly sampled negatives per source for stage 1.
        stage1_sources: at most this many (inner fold, source) queries, drawn uniformly, build the stage-1
            training set (``None``: all of them, about 27,000 on the towns network; a logistic regression of 29
            features needs far fewer, and each query costs its sparse features over every city).
        cold_candidates: extra shortlist slots reserved for the best-scored
            cities with at most ``cold_max_degree`` TRAIN partners.
        cold_max_degree: see ``cold_candidates``.
        graph_candidates: extra shortlist slots for the cities with the highest
            Adamic-Adar score (shared partners) that stage 1 left out; unused
            slots go to the next cities by stage-1 score (0: no such quota).
        area_candidates: the same for the cities whose area twins most with the source's
            (:func:`~matcher.shortlist.area_ties`; docs/evaluation.md: off for its cost).
        size_candidates: extra shortlist slots for the best cities by the size prior
            :func:`~matcher.transfer_features.size_prior_order` (population and the
            two countries' propensities to twin) that are not yet shortlisted: big
            cities of a country pair without known partnerships reach the re-ranker
            (0: no such quota).
        blend_sources: at most this many inner-fold (fold, source) queries that
            stage 2 did not train on fit the size-prior blend
            (:mod:`matcher.size_prior`; 0: no blend).
        country_pair_totals: real numbers of partnerships of country pairs known
            from outside the lists, ``{"CN-US": 284}``; where the lists hold
            fewer, the sources of the two countries are served the difference
            (:mod:`matcher.known_gaps`; ``None``: none known).
        neg_per_source: expected number of shortlist negatives per source kept
            for training stage 2 (the rest are subsampled away and the
            probabilities are odds-corrected for the subsampling).
        stage2_sources: at most this many (inner fold, source) queries build the
            stage-2 training set, drawn uniformly (``None``: all of them). Each
            query costs a stage-1 pass over every city plus ~60 booster rows, so
            this bounds the fit time on a large network (13,594 pairs over 170k
            places give ~20k queries).
        country_pair_folds, place_folds: shares of the TRAIN edges whose inner
            fold is drawn per country pair / per place instead of per edge
            (:func:`~matcher.transfer_features.grouped_fold_assignment`): the
            model sees partnerships of unknown country pairs and partnerless
            places, and learns how far to trust a zero count.
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf,
        l2_regularization: ``HistGradientBoostingClassifier`` settings.
        batch_size: sources scored together (memory ~ batch_size x n_cities x 8 B x few).
        random_state: seeds the inner folds, the negative sampling and the booster.
        n_jobs: threads that build the training examples, one inner fold each (scikit-learn's reading: ``None``
            one, ``-1`` one per CPU); the fitted model is the same whatever their number.

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
        stage1_negatives: int = 20,
        stage1_sources: int | None = 10000,
        cold_candidates: int = 100,
        cold_max_degree: int = 1,
        graph_candidates: int = 100,
        area_candidates: int = 0,
        size_candidates: int = 50,
        blend_sources: int = 400,
        country_pair_totals: Mapping[str, int] | None = None,
        neg_per_source: int = 30,
        stage2_sources: int | None = 8000,
        country_pair_folds: float = 0.25,
        place_folds: float = 0.1,
        max_iter: int = 250,
        learning_rate: float = 0.06,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        batch_size: int = 128,
        random_state: int = 0,
        n_jobs: int | None = -1,
    ) -> None:
        self.n_candidates = n_candidates
        self.inner_folds = inner_folds
        self.stage1_negatives = stage1_negatives
        self.stage1_sources = stage1_sources
        self.cold_candidates = cold_candidates
        self.cold_max_degree = cold_max_degree
        self.graph_candidates = graph_candidates
        self.area_candidates = area_candidates
        self.size_candidates = size_candidates
        self.blend_sources = blend_sources
        self.country_pair_totals = country_pair_totals
        self.neg_per_source = neg_per_source
        self.stage2_sources = stage2_sources
        self.country_pair_folds = country_pair_folds
        self.place_folds = place_folds
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fit
    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> PartnershipLikelihood:
        """Fit both stages on ``pairs`` (columns ``geonameid_a``, ``geonameid_b``) over the ``cities`` gazetteer."""
        started = _dt.datetime.now(_dt.UTC)
        rng = np.random.default_rng(self.random_state)
        self._index_gazetteer(cities, pairs)
        folds = self._inner_folds(rng)
        self._fit_stage1(*self._stage1_examples(folds, rng))
        stage2_queries = sample_queries(folds, rng, self.stage2_sources)
        self._fit_stage2(*self._stage2_examples(folds, stage2_queries, rng))
        self.size_prior_ = self._fit_size_prior(folds, stage2_queries, rng)
        self.featurizer_ = self._featurizer(GraphStats.build(self.index_, self.edges_))  # serving: full TRAIN graph
        stats = self.featurizer_.stats
        self.known_gaps_ = KnownGaps.fit(self.index_, self.edges_, stats.country_pairs, self.country_pair_totals)
        self.metadata_ = artifact.metadata(self, started)
        return self

    def _index_gazetteer(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> None:
        """Stage 0: gazetteer positions, TRAIN edges and the static country relations."""
        self.index_ = CityIndex.from_frame(cities)
        self.edges_ = pair_positions(self.index_, pairs)
        self.country_meta_ = CountryMeta.build(cities, self.index_)
        self.geonameids_ = self.index_.geonameids

    def _inner_folds(self, rng: np.random.Generator) -> list[InnerFold]:
        """Split the TRAIN edges into folds; each fold's features come from the other folds only."""
        n_folds = int(max(2, self.inner_folds))
        fold_of = rng.permutation(len(self.edges_)) % n_folds
        fold_of = grouped_fold_assignment(
            self.index_, self.edges_, fold_of, n_folds, rng, self.country_pair_folds, self.place_folds
        )
        folds = []
        for j in range(n_folds):
            fz = self._featurizer(GraphStats.build(self.index_, self.edges_[fold_of != j]))
            held_edges = self.edges_[fold_of == j]
            folds.append(InnerFold(fz, adjacency(self.index_.n, held_edges), np.unique(held_edges.ravel())))
        return folds

    def _map(
        self,
        fn: Callable[[InnerFold, np.ndarray, Sources, np.random.Generator], T],
        folds: list[InnerFold],
        rng: np.random.Generator,
        keep: list[np.ndarray] | None = None,
    ) -> Iterator[T]:
        """``fn`` over the batches of the folds, the folds spread over ``n_jobs`` threads (:func:`map_folds`)."""
        return map_folds(fn, folds, self.batch_size, rng, keep, available_threads(self.n_jobs))

    def _stage1_examples(self, folds: list[InnerFold], rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """Stage 1 training set: held-out edges (positives) and uniformly drawn cities (negatives), for at most
        ``stage1_sources`` (fold, source) queries."""
        r, n = int(self.stage1_negatives), self.index_.n

        def batch(
            fold: InnerFold, rows: np.ndarray, src: Sources, g: np.random.Generator
        ) -> tuple[pd.DataFrame, np.ndarray]:
            hb = fold.held[rows]
            pq = np.repeat(np.arange(len(rows)), np.diff(hb.indptr))
            nq = np.repeat(np.arange(len(rows)), r)
            nc = g.integers(0, n, len(nq))
            keep = nc != rows[nq]
            x = fold.fz.stage1_frame(src, np.concatenate([pq, nq[keep]]), np.concatenate([hb.indices, nc[keep]]))
            return x, np.concatenate([np.ones(len(pq)), np.zeros(int(keep.sum()))])

        queries = sample_queries(folds, rng, self.stage1_sources)
        xs, ys = zip(*self._map(batch, folds, rng, queries), strict=True)
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

    def _stage2_examples(
        self, folds: list[InnerFold], queries: list[np.ndarray], rng: np.random.Generator
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Stage 2 training set: every shortlisted held-out partner, and a subsample of the other shortlisted cities."""
        k = self._shortlist_size()
        slots = k + self.graph_candidates + self.area_candidates + self.cold_candidates + self.size_candidates
        self.keep_rate_ = min(1.0, self.neg_per_source / max(slots, 1))

        def batch(
            fold: InnerFold, rows: np.ndarray, src: Sources, g: np.random.Generator
        ) -> tuple[pd.DataFrame, np.ndarray, int, int]:
            top, s1, rank = self._shortlist(fold.fz, src)
            qi = np.repeat(np.arange(len(rows)), top.shape[1])
            cand = top.ravel()
            y = lookup_pairs(fold.held[rows], qi, cand) > 0
            sel = y | (g.random(len(y)) < self.keep_rate_)
            x = fold.fz.stage2_frame(src, qi[sel], cand[sel], s1.ravel()[sel], rank.ravel()[sel])
            return x, y[sel].astype(int), int(y.sum()), int(fold.held[rows].nnz)

        xs, ys, hits, positives = zip(*self._map(batch, folds, rng, queries), strict=True)
        self.n_stage2_queries_ = int(sum(len(q) for q in queries))
        self.stage1_recall_ = sum(hits) / max(sum(positives), 1)
        return pd.concat(xs, ignore_index=True), np.concatenate(ys)

    def _fit_size_prior(
        self, folds: list[InnerFold], stage2_queries: list[np.ndarray], rng: np.random.Generator
    ) -> SizePrior:
        """Choose the size-prior blend on inner-fold queries that stage 2 did not train on (:class:`BlendFit`)."""
        if self.blend_sources <= 0:
            return SizePrior()
        fit = BlendFit(self.index_)
        # big sources are few and the prior matters most for them: they are drawn more often (by their size
        # weight), and each partner counts 1 / weight, so the MRRs stay those of uniformly drawn queries
        weight = size_weight(self.index_.population)
        keep = sample_queries(folds, rng, self.blend_sources, stage2_queries, weight)
        n = self.index_.n

        def batch(f: InnerFold, rows: np.ndarray, src: Sources, g: np.random.Generator) -> tuple[Any, ...]:
            s = f.fz.stage1_matrix(src, self.stage1_weights_, self.stage1_intercept_)
            top, ts, rank = self._shortlist(f.fz, src, s)
            p, out = self._unblended(src, s, top, ts, rank, f.fz)
            held = f.held[rows].tocoo()
            columns = np.arange(n) if n <= BLEND_COLUMNS else np.sort(g.choice(n, BLEND_COLUMNS, replace=False))
            positives = (held.row, held.col, 1.0 / weight[rows[held.row]])
            return (
                f.fz.stats,
                src.country,
                src.population,
                p.sum(axis=1),
                out,
                top,
                positives,
                excluded_cells(src),
                columns,
            )

        for args in self._map(batch, folds, rng, keep):  # added in order: the same sums whatever the threads
            fit.add(*args)
        self.blend_mrr_ = fit.mrr()
        return fit.best()

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
        """Stage-1 shortlist per source (self and partners excluded; :func:`matcher.shortlist.shortlist`), from the
        stage-1 scores ``s`` of every city (computed when not given): ``(top, score, rank)``."""
        if s is None:
            s = fz.stage1_matrix(src, self.stage1_weights_, self.stage1_intercept_)
        quotas = Quotas(
            self._shortlist_size(),
            self.graph_candidates,
            self.cold_candidates,
            self.cold_max_degree,
            self.area_candidates,
        )
        return shortlist(fz, src, s, excluded_cells(src), quotas, int(self.size_candidates))

    def _booster_p(self, fz: Featurizer, src: Sources, top: np.ndarray, ts: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """``(m, k)`` odds-corrected re-ranker probabilities of the shortlist ``top``."""
        m, kk = top.shape
        qi = np.repeat(np.arange(m), kk)
        x = fz.stage2_frame(src, qi, top.ravel(), ts.ravel(), rank.ravel())
        fast = getattr(self, "_booster_predict", None)
        p = fast(x.to_numpy(np.float64)) if fast is not None else self.booster_.predict_proba(x)[:, 1]
        # undo the negative subsampling: odds_true = odds_sampled * keep_rate
        odds = p / np.maximum(1.0 - p, 1e-12) * self.keep_rate_
        return np.nan_to_num((odds / (1.0 + odds)).reshape(m, kk), nan=0.0)

    def use_booster_predict(self, predict: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Re-rank with ``predict`` (rows in :data:`~matcher.pair_features.STAGE2_FEATURES` order, float64 -> the
        booster's probability of a partnership, the same to rounding; e.g. the service's compiled trees,
        :mod:`api.domain.compiled_trees`) instead of scikit-learn's ``predict_proba``; ``None``: scikit-learn
        again. Not saved with the model."""
        self._booster_predict = predict

    def _unblended(
        self, src: Sources, s: np.ndarray, top: np.ndarray, ts: np.ndarray, rank: np.ndarray, fz: Featurizer
    ) -> tuple[np.ndarray, np.ndarray]:
        """The shortlist's probabilities ``p`` and the ``(m, n)`` scores before the size prior (reuses ``s``)."""
        p = self._booster_p(fz, src, top, ts, rank)
        # tiny stage-1 tie-breaker keeps equal booster outputs ordered
        p = p * (1.0 - 1e-6) + 1e-6 * _sigmoid(ts)
        # everything outside the shortlist: stage-1 order, strictly below the shortlist (float32, in place:
        # exp(s - max s) keeps the order without the cancellation of a float32 sigmoid far below 0)
        floor = p.min(axis=1, keepdims=True)
        out = s
        if not np.isfinite(out.sum()):  # a NaN or an infinity somewhere (one cheap pass tells: they propagate)
            np.nan_to_num(out, copy=False, nan=-np.inf, posinf=float(np.finfo(np.float32).max))
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out *= (0.999 * floor).astype(np.float32)
        np.put_along_axis(out, top, np.clip(p, 0.0, 1.0).astype(np.float32), axis=1)
        return p, out

    def _score(self, src: Sources) -> np.ndarray:
        fz = self.featurizer_
        s = fz.stage1_matrix(src, self.stage1_weights_, self.stage1_intercept_)
        top, ts, rank = self._shortlist(fz, src, s)
        p, out = self._unblended(src, s, top, ts, rank, fz)
        mass = p.sum(axis=1)
        if self.size_prior_.active:
            # one prior row per source country, blended into `out` in place
            countries, prior_rows = np.unique(src.country, return_inverse=True)
            log_prior = self.size_prior_.log_prior(self.index_, fz.stats, countries)
            out = self.size_prior_.blend(log_prior, src.population, mass, out, prior_rows=prior_rows)
        if self.known_gaps_ is not None:  # what the lists are known to miss (matcher.known_gaps)
            degree = fz.batch(src).degree  # the stage-1 matrix's batch: computed there already
            out = self.known_gaps_.apply(self.index_, src.country, src.population, degree, mass, out)
        return out

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        """Partner likelihood of every gazetteer city for each source, ``(m, n)`` in [0, 1].

        Shortlisted candidates get the (odds-corrected) booster probability;
        the remaining cities keep their stage-1 order strictly below the
        shortlist. Self and existing partners get finite (low) scores; the
        caller is expected to exclude them.
        """
        rows = self.index_.positions(geonameids)
        if 0 < len(rows) <= self.batch_size:  # one batch: its scores as they are, without a copy
            return np.asarray(self._score(self.featurizer_.sources(rows)), np.float32)
        out = np.empty((len(rows), self.index_.n), np.float32)
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

    # ---------------------------------------------------------- persistence (matcher.artifact)
    def __getstate__(self) -> dict:
        return artifact.saved_state(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(artifact.loaded_state(state))
        if "index_" in state and "edges_" in state:
            self.featurizer_ = self._featurizer(GraphStats.build(self.index_, self.edges_))

    def save(self, path: str | Path) -> None:
        """Write ONE joblib artifact (model + ``metadata_``)."""
        artifact.save(self, path)

    @classmethod
    def load(cls, path: str | Path) -> PartnershipLikelihood:
        """Load an artifact written by :meth:`save`."""
        model = artifact.load(path)
        if not isinstance(model, cls):
            raise TypeError(f"{path} does not contain a {cls.__name__}")
        return model


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
