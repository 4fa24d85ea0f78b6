"""Country pairs whose real number of partnerships is known from outside the lists, and what the lists miss there.

The partnership lists are incomplete, and unevenly so: China and the United States have twinned 284 pairs of
provinces, states and cities (as counted for the 5th China–US Sister Cities Conference), while the towns network
lists 19 of them. A model learned from the lists cannot know this; a known total can tell it. For each known
country pair (A, B):

    gap(A, B) = max(0, total(A, B) − listed(A, B))          partnerships known to exist and not listed
    g_a       = Σ_B gap(A, B) · pop(a) / pop(A)              the unlisted ones a place of A may hold (by its size)
    μ_a       = g_a / (g_a + d_a + 1)                        their share of the place's partnerships
    q(c | A)  = Σ_B gap(A, B) / Σ_B' gap(A, B') · pop(c)^β(A→B) / Σ_{c' in B} pop(c')^β(A→B)   for c in B

(``pop(A)``: the population of A's gazetteer places; ``d_a``: the place's listed partners), and a source ``a`` in A
is served

    score(a, c) = (1 − μ_a) · score_model(a, c) + μ_a · Σp_a · q(c | A)

(``Σp_a``: the model's own probability mass over the source's shortlist, as in :mod:`matcher.size_prior`). Nothing
here is chosen on the data's folds: μ comes from the known totals, the listed counts and the source's size, and β —
how strongly a partner in B is a big place of B — is the maximum-likelihood exponent of the listed partners, pooled
from the pair (A→B) towards B's partners from anywhere and towards all international partners when the pair lists
few (or, held out, none). The gap's endpoints on the source's side are spread in proportion to population, not by a
fitted exponent: the listed endpoints are big cities too, but a fitted exponent (~1.5) would give New York a third
of all 265 missing China–US partnerships. A town of a few thousand people keeps its own list (μ ≈ 0.001), a city
of a million gets a tenth of it. Sources of countries without a known total are untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .features import parse_country_pair
from .graph import CityIndex
from .size_prior import log_population

BETA_GRID = np.linspace(0.0, 3.0, 61)
SHRINK = 10.0  # listed partners that weigh as much as the broader estimate a β is pooled towards


def known_totals(index: CityIndex, totals: Mapping[str, int] | None) -> np.ndarray | None:
    """``(C, C)`` symmetric matrix of known country-pair totals from ``{"CN-US": 284, …}`` (ISO codes, either
    order); pairs with a country the gazetteer lacks are skipped; ``None`` when there are none."""
    if not totals:
        return None
    out = np.zeros((index.n_countries, index.n_countries))
    for key, total in totals.items():
        try:
            a, b = parse_country_pair(key)
        except ValueError as e:
            raise ValueError(f"country_pair_totals: {e}") from None
        if a == b:
            raise ValueError(f"country_pair_totals: {key!r} is not a pair of two countries like 'CN-US'")
        if float(total) < 0:
            raise ValueError(f"country_pair_totals: {key!r} has a negative total")
        i, j = index.country_code(a), index.country_code(b)
        if i >= 0 and j >= 0:
            out[i, j] = out[j, i] = float(total)
    return out if out.any() else None


def _log_z(index: CityIndex, lp: np.ndarray) -> np.ndarray:
    """``(G, C)``: log Σ_{c in country} pop(c)^β for every β of :data:`BETA_GRID` and every country."""
    top = float(lp.max()) if len(lp) else 0.0
    out = np.empty((len(BETA_GRID), index.n_countries))
    for g, beta in enumerate(BETA_GRID):
        z = np.bincount(index.country, weights=np.exp(beta * (lp - top)), minlength=index.n_countries)
        with np.errstate(divide="ignore"):
            out[g] = np.log(z) + beta * top
    return out


def _mle(lp_target: np.ndarray, target_country: np.ndarray, log_z: np.ndarray) -> float:
    """The β of :data:`BETA_GRID` that makes the listed partners most likely, each drawn from its country's places
    with probability ∝ pop^β."""
    ll = BETA_GRID * lp_target.sum() - log_z[:, target_country].sum(axis=1)
    return float(BETA_GRID[int(np.argmax(ll))])


def _pooled(n: int, own: float, broader: float) -> float:
    return (n * own + SHRINK * broader) / (n + SHRINK)


@dataclass
class KnownGaps:
    """Fitted from the TRAIN partnerships and the known totals (see the module doc); :meth:`apply` serves it."""

    gaps: np.ndarray  # (C, C) known and not listed
    beta: np.ndarray  # (C, C) size exponent of a partner in country (column) for a source in country (row)
    per_person: np.ndarray  # (C,) Σ_B gap(A, B) / pop(A): unlisted partnerships per inhabitant of each country

    @classmethod
    def fit(
        cls,
        index: CityIndex,
        edges: np.ndarray,
        country_pairs: np.ndarray,
        totals: Mapping[str, int] | None,
    ) -> KnownGaps | None:
        """``None`` without a known total that exceeds its listed count."""
        known = known_totals(index, totals)
        if known is None:
            return None
        gaps = np.where(known > 0, np.maximum(known - np.asarray(country_pairs, float), 0.0), 0.0)
        np.fill_diagonal(gaps, 0.0)
        if not gaps.any():
            return None
        lp = log_population(index.population)
        log_z = _log_z(index, lp)
        src, tgt = np.concatenate([edges, edges[:, ::-1]]).T  # both directions of every listed pair
        abroad = index.country[src] != index.country[tgt]
        src, tgt = src[abroad], tgt[abroad]
        tc, sc = index.country[tgt], index.country[src]
        overall = _mle(lp[tgt], tc, log_z) if len(tgt) else 1.0
        beta = np.zeros_like(gaps)
        for a, b in zip(*np.nonzero(gaps), strict=True):
            into_b = tc == b
            broad = _pooled(int(into_b.sum()), _mle(lp[tgt[into_b]], tc[into_b], log_z), overall)
            pair = into_b & (sc == a)
            beta[a, b] = _pooled(int(pair.sum()), _mle(lp[tgt[pair]], tc[pair], log_z), broad)
        population = np.bincount(index.country, weights=np.asarray(index.population, float), minlength=len(gaps))
        return cls(gaps=gaps, beta=beta, per_person=gaps.sum(axis=1) / np.maximum(population, 1.0))

    def share(self, src_country: np.ndarray, src_population: np.ndarray, src_degree: np.ndarray) -> np.ndarray:
        """μ of each source: the share of its partnerships that the known gaps add (0 without one)."""
        g = self.per_person[np.asarray(src_country, np.int64)] * np.maximum(np.asarray(src_population, float), 0.0)
        return g / (g + np.asarray(src_degree, float) + 1.0)

    def prior(self, index: CityIndex, country: int) -> np.ndarray:
        """``(n,)`` q(c | A) for a source in country ``country`` (sums to 1; zeros if it has no known gap)."""
        out = np.zeros(index.n)
        row = self.gaps[country]
        if row.sum() <= 0:
            return out
        lp = log_population(index.population)
        for b in np.flatnonzero(row):
            places = np.flatnonzero(index.country == b)
            w = np.exp(self.beta[country, b] * (lp[places] - lp[places].max()))
            out[places] = row[b] / row.sum() * w / w.sum()
        return out

    def apply(
        self,
        index: CityIndex,
        src_country: np.ndarray,
        src_population: np.ndarray,
        src_degree: np.ndarray,
        mass: np.ndarray,
        scores: np.ndarray,
    ) -> np.ndarray:
        """Blend the prior into the ``(m, n)`` ``scores`` of the sources (in place, clipped to [0, 1]): the rows of
        sources in a country with a known gap; the others are untouched."""
        mu = self.share(src_country, src_population, src_degree)
        cache: dict[int, np.ndarray] = self.__dict__.setdefault("_priors", {})  # per country; not pickled
        for country in np.unique(src_country[mu > 0.0]).tolist():
            if country not in cache:
                cache[country] = self.prior(index, country).astype(np.float32)
            q = cache[country]
            for i in np.flatnonzero((src_country == country) & (mu > 0.0)):
                scores[i] *= np.float32(1.0 - mu[i])
                scores[i] += np.float32(mu[i] * float(mass[i])) * q
                np.clip(scores[i], 0.0, 1.0, out=scores[i])
        return scores

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_priors"}
