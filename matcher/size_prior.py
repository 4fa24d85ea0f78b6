"""A size prior for where the network is thin, blended with the learned model's ranking.

A model learned from the partnership network ranks first the country pairs that already have partnerships. Where
the network is thin — two countries that twin a lot with everyone but little (or not at all, in the data) with
each other, like China and the United States — it has nothing to go on, and the partnerships that do exist there
are mostly between big cities. The prior spreads the partnerships that the data *misses* over the big cities:

    q_s(c | a) ∝ pop(c)^β · missing(country a, country c),
    missing(A, B) = max(0, d_A · d_B / total − pairs(A, B))   (0 for A = B)

``d_A · d_B / total`` is the number of pairs two countries would have if twinning ignored who is who (each
country's share of all partnership endpoints, :func:`matcher.transfer_features.log_gravity`); ``missing`` is
what of that the data does not show. It is zero where a country pair has as many partnerships as the two
countries' propensities predict (Germany–France), large where it has few (China–US).

The served score mixes the model's probabilities ``p`` (its shortlist's; below them, the stage-1 order of the
other places) with the prior, which takes the share ``λ_a`` of the model's mass ``Σp`` over the shortlist:

    score(a, c) = (1 − λ_a) · p(c) + λ_a · Σp · q_s(c | a),   λ_a = sigmoid(t0 + t1 · (log pop(a) − 13))

(bigger sources can lean more on size). ``β``, ``t0`` and ``t1`` are chosen from a grid (:class:`BlendFit`) on
inner-fold queries that the re-ranker did not train on: the best mean reciprocal rank of the partners whose two
countries have no partnership in the fold's graph (the grouped country-pair folds make many), among the blends
that keep the other partners' MRR within 2 % — calibrated on held-out partnerships, not tuned on an evaluation
split. No blend at all is chosen when none helps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import CityIndex
from .graph_stats import GraphStats

LOG_POP_CENTRE = 13.0  # log population of ~440,000 people: where t0 alone sets the weight


def missing_pairs(stats: GraphStats) -> np.ndarray:
    """``(C, C)`` partnerships the two countries' propensities predict and the data does not have (0 at home)."""
    d = np.asarray(stats.country_degree, float)
    expected = np.multiply.outer(d, d) / max(float(d.sum()), 1.0)
    out = np.maximum(expected - np.asarray(stats.country_pairs, float), 0.0)
    np.fill_diagonal(out, 0.0)
    return out


def log_population(population: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(population, float), 1.0))


BLEND_COLUMNS = 20_000  # cities outside the shortlist sampled per batch to rank a partner among (BlendFit.add)
GRID_BETA = (1.0, 1.5, 2.0)
GRID_T0 = (-6.0, -4.5, -3.0, -2.0)
GRID_T1 = (0.0, 0.75, 1.5)


@dataclass
class SizePrior:
    """Blend parameters (see the module doc); ``t0 = -inf`` switches the prior off."""

    beta: float = 1.0
    t0: float = -np.inf
    t1: float = 0.0

    @property
    def active(self) -> bool:
        return bool(np.isfinite(self.t0))

    def weight(self, population: np.ndarray) -> np.ndarray:
        """λ of each source (by its population)."""
        z = self.t0 + self.t1 * (log_population(population) - LOG_POP_CENTRE)
        return 1.0 / (1.0 + np.exp(-z))

    def log_prior(self, index: CityIndex, stats: GraphStats, source_countries: np.ndarray) -> np.ndarray:
        """``(m, n)`` ``log q_s(c | a)`` (float32) for sources in ``source_countries``; −inf where it is 0."""
        return _log_prior(index, log_missing(stats), self.beta, source_countries)

    def blend(
        self,
        log_prior: np.ndarray,
        src_population: np.ndarray,
        mass: np.ndarray,
        unblended: np.ndarray,
        prior_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(m, n)`` ``(1 − λ) · unblended + λ · mass · q_s`` in [0, 1]: ``unblended`` holds the model's
        probabilities (its shortlist's, and below them the stage-1 order of the rest), ``mass`` their sum over the
        shortlist (Σp), so the prior takes the share λ of the model's own mass.

        With ``prior_rows`` (the row of ``log_prior`` of each source: one row per source country), the result is
        written over ``unblended`` and ``log_prior`` (both are consumed), the same numbers without an ``(m, n)``
        temporary."""
        lam = self.weight(src_population).astype(np.float32)
        share = lam * np.asarray(mass, np.float32)
        if prior_rows is None:
            res = np.exp(log_prior)
            res *= share[:, None]
            res += (1.0 - lam)[:, None] * unblended
            return np.clip(res, 0.0, 1.0, out=res)
        res = unblended
        res *= (1.0 - lam)[:, None]
        q = np.exp(log_prior, out=log_prior)
        term = np.empty(res.shape[1], res.dtype)
        for i, j in enumerate(np.asarray(prior_rows, np.int64)):
            np.multiply(q[j], share[i], out=term)
            res[i] += term
        return np.clip(res, 0.0, 1.0, out=res)


class BlendFit:
    """Chooses the blend on held-out partners: every (β, t0, t1) of the grid, and no blend at all, is scored on the
    batches of inner-fold queries given to :meth:`add` (which the re-ranker did not train on). Their partners are
    split in two: *thin* — the two countries have no partnership in the fold's graph (the grouped inner folds
    hold out whole country pairs, so there are many) — and *known*. :meth:`best` takes the blend with the highest
    mean reciprocal rank on the thin partners among those that keep at least ``1 − tolerance`` of the unblended
    MRR on the known ones (no blend unless one beats it on the thin partners)."""

    def __init__(self, index: CityIndex, tolerance: float = 0.02) -> None:
        self.index = index
        self.tolerance = tolerance
        self.grid = [(b, t0, t1) for b in GRID_BETA for t0 in GRID_T0 for t1 in GRID_T1]
        self.rr = np.zeros((len(self.grid), 2))  # reciprocal ranks summed: [:, 0] known, [:, 1] thin
        self.rr_off = np.zeros(2)
        self.n = np.zeros(2)

    def add(
        self,
        stats: GraphStats,
        src_country: np.ndarray,
        src_population: np.ndarray,
        mass: np.ndarray,
        unblended: np.ndarray,
        top: np.ndarray,
        positives: tuple[np.ndarray, np.ndarray, np.ndarray],
        excluded: tuple[np.ndarray, np.ndarray],
        sample: np.ndarray,
    ) -> None:
        """One batch: the ``unblended`` ``(m, n)`` scores, the shortlist ``top`` and its ``mass`` (Σp), the
        held-out ``positives`` (rows, columns, weights) and the ``excluded`` cells (the source, its partners).

        A positive's rank counts the shortlisted cities above it exactly and the others through ``sample`` (columns
        drawn uniformly; all columns on a small gazetteer), scaled to the number of other cities: the grid then
        costs ``m × (shortlist + sample)`` per blend instead of ``m × n``."""
        pr, pc, w = positives
        if len(pr) == 0:
            return
        m, n = unblended.shape
        thin = (np.asarray(stats.country_pairs)[src_country[pr], self.index.country[pc]] == 0).astype(int)
        self.n += np.bincount(thin, weights=w, minlength=2)
        rowk = np.arange(m, dtype=np.int64)[:, None] * n
        taken = np.concatenate([(rowk + top).ravel(), excluded[0].astype(np.int64) * n + excluded[1]])
        other = ~np.isin(
            rowk + sample[None, :], taken
        )  # (m, S): sampled cells that are neither shortlisted nor excluded
        n_other = n - top.shape[1] - np.bincount(excluded[0], minlength=m)
        scale = n_other / np.maximum(other.sum(axis=1), 1)
        cols = np.concatenate([top, np.broadcast_to(sample, (m, len(sample)))], axis=1)
        counted = np.concatenate([np.ones(top.shape, float), other * scale[:, None]], axis=1)
        counted = counted[pr] * (cols[pr] != pc[:, None])  # (positives, cells): the positive's own cell left out
        off = np.take_along_axis(unblended, cols, axis=1)
        v_off = unblended[pr, pc]
        self.rr_off += np.bincount(thin, weights=w * _reciprocal(off[pr], counted, v_off), minlength=2)
        log_miss = log_missing(stats)
        for beta in GRID_BETA:
            lq = _log_prior(self.index, log_miss, beta, src_country, cols)
            lq_pos = _log_prior(self.index, log_miss, beta, src_country[pr], pc[:, None])
            for j, (b, t0, t1) in enumerate(self.grid):
                if b == beta:
                    prior = SizePrior(b, t0, t1)
                    res = prior.blend(lq, src_population, mass, off)
                    v = prior.blend(lq_pos, src_population[pr], mass[pr], v_off[:, None])[:, 0]
                    self.rr[j] += np.bincount(thin, weights=w * _reciprocal(res[pr], counted, v), minlength=2)

    def mrr(self) -> dict[str, float]:
        """MRR on the known and the thin partners, unblended and with the chosen blend, and their counts."""
        n = np.maximum(self.n, 1)
        chosen = self._choice()
        on = self.rr[chosen] / n if chosen is not None else self.rr_off / n
        return {
            "known_partners": float(self.n[0]),
            "thin_partners": float(self.n[1]),
            "known_mrr_unblended": float(self.rr_off[0] / n[0]),
            "thin_mrr_unblended": float(self.rr_off[1] / n[1]),
            "known_mrr": float(on[0]),
            "thin_mrr": float(on[1]),
        }

    def _choice(self) -> int | None:
        if self.n[1] == 0:
            return None
        ok = self.rr[:, 0] >= (1.0 - self.tolerance) * self.rr_off[0]
        if not ok.any():
            return None
        j = int(np.argmax(np.where(ok, self.rr[:, 1], -np.inf)))
        return j if self.rr[j, 1] > self.rr_off[1] else None

    def best(self) -> SizePrior:
        j = self._choice()
        return SizePrior() if j is None else SizePrior(*self.grid[j])


def size_weight(population: np.ndarray) -> np.ndarray:
    """Sampling weight of a source for fitting the blend: 1 up to 100,000 people, then sqrt(population / 100,000)
    (10 for a city of 10 million)."""
    return np.sqrt(np.maximum(np.asarray(population, float) / 1e5, 1.0))


def _reciprocal(scores: np.ndarray, counted: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1 / rank of each positive whose own score is ``v``: 1 + the counted weight of the other cells scored at
    least ``v`` (ties count against the positive, as the evaluation does)."""
    return 1.0 / (1.0 + ((scores >= v[:, None]) * counted).sum(axis=1))


def _log_prior(
    index: CityIndex,
    log_miss: np.ndarray,
    beta: float,
    source_countries: np.ndarray,
    cols: np.ndarray | None = None,
) -> np.ndarray:
    """``log q_s`` (float32) of each source country's row: over every place ``(m, n)``, or over the places
    ``cols`` ``(m, K)`` of each row."""
    lp = beta * log_population(index.population)
    log_z = _finite_or_inf(_log_norm(lp, index.country, log_miss))
    rows = np.asarray(source_countries, np.int64)
    if cols is None:
        out = np.take(log_miss[rows].astype(np.float32), index.country, axis=1)
        out += lp.astype(np.float32)[None, :]
    else:
        out = log_miss[rows[:, None], index.country[cols]].astype(np.float32)
        out += lp.astype(np.float32)[cols]
    out -= log_z[rows].astype(np.float32)[:, None]
    return out


def log_missing(stats: GraphStats) -> np.ndarray:
    """``log`` of :func:`missing_pairs` (−inf where nothing is missing)."""
    with np.errstate(divide="ignore"):
        return np.log(missing_pairs(stats))


def _log_norm(lp: np.ndarray, country: np.ndarray, log_miss: np.ndarray) -> np.ndarray:
    """``(C,)`` log of Σ_c exp(lp(c)) · missing(A, country c) for every source country A."""
    mx = float(lp.max()) if len(lp) else 0.0
    per_country = np.bincount(country, weights=np.exp(lp - mx), minlength=len(log_miss))
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_miss) @ per_country) + mx


def _finite_or_inf(log_z: np.ndarray) -> np.ndarray:
    """A source country with nothing missing anywhere has log Z = −inf: +inf makes its prior exp(−inf) = 0."""
    return np.where(np.isfinite(log_z), log_z, np.inf)
