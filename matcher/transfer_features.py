"""What carries over between regions of the network: features and training folds for where it is thin.

A model trained on a partnership network learns where partnerships already are: the count of pairs between two
countries and a city's ties to a country dominate its score, so a country pair without known partnerships (a
Chinese city and its first US partner) or a place without partners is ranked far down. These pieces let the
likelihood model (:mod:`matcher.likelihood`) transfer instead of memorise:

* **features that do not depend on the pair's own count** (registered by name in
  :data:`matcher.pair_features.STAGE1`): the twinning rate between the two countries' *continents* with the pair
  itself left out (:func:`continent_ratio_without_pair`: Asia–North America from Japan–US, Korea–US,
  China–Canada ... when China–US is unknown), the gravity expectation of the pair from both countries'
  propensity to twin (:func:`log_gravity`), same continent / shared language / neighbours, how much the source
  twins with the candidate's continent, and the candidate's size where the country pair has no known partnership
  (:func:`pop_if_unknown_pair`);
* **grouped inner folds** (:func:`grouped_fold_assignment`): some training folds hold out whole country pairs
  and whole places, so the model sees real partnerships whose country pair (or whose end) has no known partner and
  learns how far to trust a zero count, instead of reading it as "never".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import scipy.sparse as sp

from .row_terms import CountryRows

if TYPE_CHECKING:  # pragma: no cover
    from .graph import CityIndex
    from .pair_features import Featurizer, Pairs
    from .sources import Batch

F = TypeVar("F")


def transfer_stage1(feature: Callable[..., F]) -> tuple[F, ...]:
    """The transferable stage-1 features, built with :class:`matcher.pair_features.Stage1Feature` (``feature``)."""
    return (
        feature("log_gravity", pair=lambda p: log_gravity(p.fz)[p.ca, p.cc], country_pair=log_gravity),
        feature(
            "continent_ratio_without_pair",
            pair=lambda p: continent_ratio_without_pair(p.fz)[p.ca, p.cc],
            country_pair=continent_ratio_without_pair,
        ),
        feature(
            "log_src_ties_to_cand_continent",
            pair=lambda p: np.asarray(p.b.ties_to_continent[p.qi, p.cc], float),
            source_country=lambda b: b.ties_to_continent,
        ),
        feature("log_pop_cand_unknown_pair", pair=pop_if_unknown_pair_pairs, source=pop_if_unknown_pair),
        *(
            feature(name, pair=_relation_pairs(attr), country_pair=_relation(attr))
            for name, attr in (
                ("same_continent", "same_continent"),
                ("neighbour_countries", "neighbours"),
                ("shared_language", "shared_language"),
            )
        ),
    )


def _relation(attr: str) -> Callable[[Featurizer], Any]:
    return lambda f: getattr(f.meta, attr)


def _relation_pairs(attr: str) -> Callable[[Pairs], np.ndarray]:
    return lambda p: np.asarray(getattr(p.fz.meta, attr)[p.ca, p.cc], float)


def pop_if_unknown_pair(b: Batch) -> CountryRows:
    """``(m, n)``: ``log1p`` population of the candidate where the two countries have no known partnership (0
    elsewhere): where the network says nothing about a country pair, big cities twin with big cities. One row per
    source country of the batch (:class:`CountryRows`)."""
    countries, rows = np.unique(b.src.country, return_inverse=True)
    # np.take keeps the table C-ordered (a fancy index on axis 1 gives a Fortran-ordered array: ~10x slower to add)
    unknown = np.take(b.s.country_pairs[countries] == 0, b.index.country, axis=1)
    return CountryRows(unknown * b.fz.log_pop.astype(np.float32)[None, :], rows.reshape(-1))


def pop_if_unknown_pair_pairs(p: Pairs) -> np.ndarray:
    """The pairwise form of :func:`pop_if_unknown_pair`."""
    return np.where(p.country_pairs == 0, p.fz.log_pop[p.cand], 0.0)


def _country_terms(f: Featurizer) -> tuple[np.ndarray, np.ndarray, float]:
    """``(P, d, total)``: the ``(C, C)`` country-pair counts, the endpoints per country and their sum."""
    p = np.asarray(f.stats.country_pairs, float)
    d = np.asarray(f.stats.country_degree, float)
    return p, d, float(max(d.sum(), 1.0))


def log_gravity(f: Featurizer) -> np.ndarray:
    """``(C, C)`` ``log1p(d_a · d_c / total)``: the pairs two countries would have if twinning ignored who is who
    (each country's propensity to twin, from its share of all partnership endpoints)."""
    _, d, total = _country_terms(f)
    return np.log1p(np.multiply.outer(d, d) / total)


def size_prior_order(f: Featurizer, country: int, length: int) -> np.ndarray:
    """The ``length`` cities with the highest size prior for a source in ``country``, best first: log population
    plus :func:`log_gravity` of the two countries (big cities of countries that twin much, whether or not the
    country pair has a known partnership); equal priors in position order. Cached per source country on the
    featurizer until ``release``."""
    key = (int(country), int(length))
    order = f.size_orders.get(key)
    if order is None:
        prior = f.log_pop + log_gravity(f)[int(country)][f.index.country]
        length = min(int(length), len(prior))
        # ties go to the lower position, whatever ``length`` (argpartition alone picks among them by platform)
        kth = np.partition(prior, len(prior) - length)[len(prior) - length]
        sure = np.flatnonzero(prior > kth)
        part = np.concatenate([sure, np.flatnonzero(prior == kth)[: length - len(sure)]])
        order = part[np.lexsort((part, -prior[part]))]
        f.size_orders[key] = order
    return order


def continent_ratio_without_pair(f: Featurizer) -> np.ndarray:
    """``(C, C)`` log of observed over expected pairs between the continents of two countries, leaving out the
    pairs of the two countries themselves (smoothed by one pair): a prior for a country pair that does not depend
    on that pair's own count, so it is the same whether the pair is known or held out."""
    p, d, total = _country_terms(f)
    sc = np.asarray(f.meta.same_continent, float)
    cont_pairs = sc @ p @ sc
    cont_deg = sc @ d
    expected = np.multiply.outer(cont_deg, cont_deg) / total
    own_expected = np.multiply.outer(d, d) / total
    observed = np.maximum(cont_pairs - p, 0.0)
    return np.log((observed + 1.0) / (np.maximum(expected - own_expected, 0.0) + 1.0))


def country_affinity_table(f: Featurizer) -> sp.csr_matrix:
    """``(C, n)`` sparse ``log1p(100 · pairs(country a, country c) · share(c))``: zero for cities without partners."""
    cols = np.flatnonzero(f.stats.share > 0)
    vals = np.log1p(100.0 * f.stats.country_pairs[:, f.index.country[cols]] * f.stats.share[cols][None, :])
    rows = np.repeat(np.arange(f.index.n_countries), len(cols))
    return sp.csr_matrix(
        (vals.ravel(), (rows, np.tile(cols, f.index.n_countries))), shape=(f.index.n_countries, f.index.n)
    )


def grouped_fold_assignment(
    index: CityIndex,
    edges: np.ndarray,
    fold_of: np.ndarray,
    n_folds: int,
    rng: np.random.Generator,
    country_pair_share: float = 0.0,
    place_share: float = 0.0,
) -> np.ndarray:
    """Inner-fold number of every TRAIN edge: ``fold_of`` (random), except that whole country pairs holding about
    ``country_pair_share`` of the edges go to one fold each (their features then see no pair of the two
    countries), and the edges of a random ``place_share`` of the linked places go to one fold per place (those
    places have no partner in their fold's features). Shares of 0 keep ``fold_of``."""
    out = np.asarray(fold_of, np.int64).copy()
    if len(edges) == 0:
        return out
    if country_pair_share > 0:
        ca, cb = index.country[edges[:, 0]], index.country[edges[:, 1]]
        key = np.minimum(ca, cb) * index.n_countries + np.maximum(ca, cb)
        keys, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        order = rng.permutation(len(keys))
        covered = np.cumsum(counts[order]) <= country_pair_share * len(edges)
        grouped = np.zeros(len(keys), bool)
        grouped[order[covered]] = True
        fold_of_key = rng.integers(0, n_folds, len(keys))
        hit = grouped[inverse]
        out[hit] = fold_of_key[inverse[hit]]
    if place_share > 0:
        places = np.unique(edges.ravel())
        chosen = rng.choice(places, size=int(round(place_share * len(places))), replace=False)
        fold_of_place = np.full(index.n, -1, np.int64)
        fold_of_place[chosen] = rng.integers(0, n_folds, len(chosen))
        a, b = fold_of_place[edges[:, 0]], fold_of_place[edges[:, 1]]
        out = np.where(a >= 0, a, np.where(b >= 0, b, out))
    return out


def gather(mat: sp.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Elementwise values ``mat[rows[k], cols[k]]`` of a sparse matrix, as a float64 vector."""
    if len(rows) == 0:
        return np.zeros(0)
    return np.asarray(sp.csr_matrix(mat)[np.asarray(rows, np.int64), np.asarray(cols, np.int64)], float).ravel()


def lookup_pairs(mat: sp.spmatrix, qi: np.ndarray, cand: np.ndarray) -> np.ndarray:
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
