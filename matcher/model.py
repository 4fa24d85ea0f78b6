"""The Twinning pair score: named components, each in [0, 1], blended into one score.

Components (all vectorised over every candidate city at once):

- ``likelihood`` — learned probability ``p`` that the two cities twin, from the real partnership network
  (:mod:`matcher.likelihood`), on a log scale so that it spreads over [0, 1]:
  ``1 + log10(p) / 8`` clipped to [0, 1] (one in a hundred million or less → 0, certain → 1). Absent when no
  model is fitted.
- ``interest`` — cosine similarity of what both cities care about (offers + seeks).
- ``complementarity`` — mean of the two directions "A offers what B seeks" and "B offers what A seeks".
- ``reciprocity`` — harmonic mean of those two directions: high only when the match is good for *both* sides.
- ``size`` — similarity of population on a log scale.
- ``context`` — shared official language and a similar climate band (absolute latitude).
- ``preference`` — a multiplicative factor: each unmet preference (countries sought, population range, languages,
  either side's) multiplies the score by ``preference_penalty``.

The score is ``preference × Σ wᶜ·xᶜ / Σ wᶜ`` over the components available for the pair: the profile components
exist only when both cities have a profile. When the learned likelihood is present it stands for the gazetteer
(the model already uses population, geography and country), so ``size`` and ``context`` are then shown but not
weighted; without a model they carry the score of cities that have no profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .features import MIN_POPULATION, CityTable, CountryTable
from .geo import haversine_km
from .rank import top_k
from .sectors import SECTOR_KEYS, label

COMPONENTS: tuple[str, ...] = ("likelihood", "interest", "complementarity", "reciprocity", "size", "context")
PROFILE_COMPONENTS = frozenset({"interest", "complementarity", "reciprocity"})
GAZETTEER_COMPONENTS = frozenset({"size", "context"})  # weighted only when there is no learned likelihood
DEFAULT_WEIGHTS: dict[str, float] = {
    "likelihood": 3.0,
    "interest": 1.0,
    "complementarity": 1.0,
    "reciprocity": 1.5,
    "size": 0.5,
    "context": 0.5,
}


class Likelihood(Protocol):
    """What the scorer needs from a fitted partnership-likelihood model."""

    geonameids_: np.ndarray

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray: ...

    def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray: ...


@dataclass(frozen=True)
class Filters:
    """Candidate filters; an empty filter keeps every candidate."""

    countries: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    min_population: float | None = None
    max_population: float | None = None
    max_distance_km: float | None = None
    exclude_ids: frozenset[int] = frozenset()  # city ids never to suggest (e.g. recently rejected pairs)
    max_country_share: float | None = None  # overrides the matcher's diversity rule for this query


@dataclass(frozen=True)
class SectorFit:
    sector: str
    score: float
    reason: str


@dataclass(frozen=True)
class RankedCandidate:
    """One candidate partner of a city as the matcher ranks and explains it (stored and served as a suggestion)."""

    row: int
    city_id: int
    score: float
    components: dict[str, float]
    sectors: list[SectorFit] = field(default_factory=list)
    distance_km: float = 0.0


class TwinningMatcher(BaseEstimator):
    """Scores every candidate partner of a city and returns ranked, explained suggestions.

    Parameters
    ----------
    weights : mapping of component name to weight (missing names take :data:`DEFAULT_WEIGHTS`).
    likelihood : a fitted partnership-likelihood model (optional).
    size_scale : population ratio scale; ``size = exp(-|ln pa - ln pb| / size_scale)``.
    preference_penalty : factor applied once per unmet preference.
    max_country_share : at most this share of a top-k from one country unless the user filters by country.
    likelihood_floor : probability mapped to 0 on the likelihood component's log scale.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        likelihood: Likelihood | None = None,
        size_scale: float = 1.5,
        preference_penalty: float = 0.5,
        max_country_share: float = 1 / 3,
        likelihood_floor: float = 1e-8,
    ) -> None:
        self.weights = weights
        self.likelihood = likelihood
        self.size_scale = size_scale
        self.preference_penalty = preference_penalty
        self.max_country_share = max_country_share
        self.likelihood_floor = likelihood_floor

    # ------------------------------------------------------------------ fitting
    def fit(self, table: CityTable, partner_rows: np.ndarray | None = None) -> TwinningMatcher:
        """Remember the city table and the existing partnerships (pairs of table rows)."""
        n = len(table)
        pairs = np.asarray(partner_rows if partner_rows is not None else np.empty((0, 2)), np.int64)
        pairs = pairs.reshape(-1, 2)
        self.table_ = table
        self.partners_: list[np.ndarray] = _neighbour_lists(pairs, n)
        weights = dict(DEFAULT_WEIGHTS)
        weights.update(self.weights or {})
        unknown = set(weights) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components in weights: {sorted(unknown)}")
        self.weights_ = weights
        if self.likelihood is not None:
            col_of = {int(g): j for j, g in enumerate(np.asarray(self.likelihood.geonameids_))}
            self.likelihood_cols_ = np.array([col_of.get(int(g), -1) for g in table.geonameids], np.int64)
        else:
            self.likelihood_cols_ = np.full(n, -1, np.int64)
        self.log_pop_ = np.log(np.maximum(table.population, MIN_POPULATION))
        self.abs_lat_ = np.abs(table.lat)
        self.profiled_ = np.flatnonzero(table.has_profile)
        oj = table.offers[self.profiled_].astype(np.float64)
        sj = table.seeks[self.profiled_].astype(np.float64)
        self.profile_cache_ = (oj, sj, oj + sj, np.linalg.norm(oj + sj, axis=1), sj.sum(axis=1))
        return self

    # ------------------------------------------------------------------ scoring
    def _likelihood(self, rows: np.ndarray) -> np.ndarray | None:
        if self.likelihood is None:
            return None
        t = self.table_
        out = np.zeros((len(rows), len(t)), np.float64)
        known = self.likelihood_cols_[rows] >= 0
        cols = self.likelihood_cols_
        have = cols >= 0
        if known.any():
            scores = np.asarray(self.likelihood.score_sources(t.geonameids[rows[known]].tolist()), np.float64)
            out[np.ix_(np.flatnonzero(known), np.flatnonzero(have))] = scores[:, cols[have]]
        for q in np.flatnonzero(~known):
            r = rows[q]
            s = np.asarray(
                self.likelihood.score_new(str(t.country[r]), int(t.population[r]), float(t.lat[r]), float(t.lon[r]))
            )
            out[q, have] = s[cols[have]]
        logp = np.log10(np.clip(out, self.likelihood_floor, 1.0))
        scaled = 1.0 - logp / np.log10(self.likelihood_floor)
        # + a vanishing multiple of p keeps the transform strictly increasing below the floor, so the order of the
        # learned model is kept everywhere (ties would count against true partners in the evaluation).
        return np.clip(scaled + 1e-6 * out, 0.0, 1.0)

    def components_batch(self, rows: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Every component for each query row against all cities: ``{name: (len(rows), n)}``; NaN = n/a."""
        check_is_fitted(self, "table_")
        t = self.table_
        rows = np.asarray(rows, np.int64)
        comps: dict[str, np.ndarray] = {}
        lik = self._likelihood(rows)
        if lik is not None:
            comps["likelihood"] = lik

        # Profile components: only where both cities have a profile, so only profiled columns are computed.
        n = len(t)
        for name in PROFILE_COMPONENTS:
            comps[name] = np.full((len(rows), n), np.nan)
        has = t.has_profile[rows]
        if has.any() and self.profiled_.size:
            q = rows[has]
            oi, si = t.offers[q].astype(np.float64), t.seeks[q].astype(np.float64)
            oj, sj, ij, norm_j, sj_sum = self.profile_cache_
            ii = oi + si
            norm_i = np.linalg.norm(ii, axis=1)[:, None]
            si_sum = si.sum(axis=1)[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                interest = np.nan_to_num((ii @ ij.T) / (norm_i * norm_j[None, :]), nan=0.0)
                # a→b: the share of b's needs (seek weight) that a offers; b→a likewise.
                a_to_b = np.nan_to_num((oi @ sj.T) / sj_sum[None, :], nan=0.0, posinf=0.0)
                b_to_a = np.nan_to_num((si @ oj.T) / si_sum, nan=0.0, posinf=0.0)
                recip = np.where(a_to_b + b_to_a > 0, 2 * a_to_b * b_to_a / (a_to_b + b_to_a), 0.0)
            qi = np.flatnonzero(has)[:, None]
            cols = self.profiled_[None, :]
            comps["interest"][qi, cols] = np.clip(interest, 0, 1)
            comps["complementarity"][qi, cols] = np.clip((a_to_b + b_to_a) / 2, 0, 1)
            comps["reciprocity"][qi, cols] = np.clip(recip, 0, 1)

        # Gazetteer components: for every pair.
        lp = self.log_pop_
        comps["size"] = np.exp(-np.abs(lp[rows][:, None] - lp[None, :]) / self.size_scale)
        ci = t.country_idx[rows]
        shared_lang = t.shared_language[ci][:, t.country_idx].astype(np.float64)
        band = 1.0 - np.abs(self.abs_lat_[rows][:, None] - self.abs_lat_[None, :]) / 90.0
        comps["context"] = 0.5 * shared_lang + 0.5 * band
        comps["preference"] = self._preference(rows)
        return comps

    def _preference(self, rows: np.ndarray) -> np.ndarray:
        t = self.table_
        violations = np.zeros((len(rows), len(t)), np.int32)
        pop = t.population
        for q, r in enumerate(rows):
            v = violations[q]
            if t.has_pref_country[r]:
                v += ~t.pref_country[r, t.country_idx]
            if not np.isnan(t.pref_min_pop[r]):
                v += pop < t.pref_min_pop[r]
            if not np.isnan(t.pref_max_pop[r]):
                v += pop > t.pref_max_pop[r]
            if t.pref_languages[r]:
                v += ~t.language_mask(t.pref_languages[r])[t.country_idx]
            # The other side's preferences about this city (reciprocal matching).
            v += t.has_pref_country & ~t.pref_country[:, t.country_idx[r]]
            v += pop[r] < np.nan_to_num(t.pref_min_pop, nan=-np.inf)
            v += pop[r] > np.nan_to_num(t.pref_max_pop, nan=np.inf)
            v += t.has_profile & ~t.seeking
        return np.power(self.preference_penalty, violations).astype(np.float64)

    def blend(self, comps: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weighted mean of the available components, times the preference factor."""
        total = None
        wsum = None
        for name in COMPONENTS:
            if name not in comps or (name in GAZETTEER_COMPONENTS and "likelihood" in comps):
                continue
            x = comps[name]
            w = self.weights_[name]
            avail = ~np.isnan(x)
            contrib = np.where(avail, w * np.nan_to_num(x), 0.0)
            total = contrib if total is None else total + contrib
            wsum = avail * w if wsum is None else wsum + avail * w
        assert total is not None and wsum is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(wsum > 0, total / wsum, 0.0)
        return np.clip(score * comps["preference"], 0.0, 1.0)

    def score_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Blended scores ``(len(rows), n)`` of each query row against every city."""
        return self.blend(self.components_batch(rows))

    # ------------------------------------------------------------------ ranking
    def candidate_mask(self, row: int, filters: Filters | None = None) -> np.ndarray:
        """Cities that may be suggested to ``row``: not itself, not a partner, and passing the filters."""
        t = self.table_
        mask = np.ones(len(t), bool)
        mask[row] = False
        mask[self.partners_[row]] = False
        if filters is None:
            return mask
        if filters.countries:
            mask &= np.isin(t.country, list(filters.countries))
        if filters.sectors:
            from .sectors import SECTOR_INDEX

            cols = [SECTOR_INDEX[s] for s in filters.sectors]
            mask &= (t.offers[:, cols] > 0).any(axis=1) | (t.seeks[:, cols] > 0).any(axis=1)
        if filters.min_population is not None:
            mask &= t.population >= filters.min_population
        if filters.max_population is not None:
            mask &= t.population <= filters.max_population
        if filters.max_distance_km is not None:
            mask &= haversine_km(t.lat[row], t.lon[row], t.lat, t.lon) <= filters.max_distance_km
        if filters.exclude_ids:
            mask &= ~np.isin(t.ids, np.fromiter(filters.exclude_ids, np.int64))
        return mask

    def suggest(self, row: int, k: int = 10, filters: Filters | None = None) -> list[RankedCandidate]:
        """The top ``k`` partners for ``row``, diversified by country unless filtered by country."""
        comps = self.components_batch([row])
        scores = self.blend(comps)[0]
        mask = self.candidate_mask(row, filters)
        diversify = not (filters and filters.countries)
        share = self.max_country_share
        if filters is not None and filters.max_country_share is not None:
            share = filters.max_country_share
        picked = top_k(
            scores, k, mask, groups=self.table_.country_idx if diversify and share < 1 else None, max_group_share=share
        )
        return self._explain_rows(row, picked, comps, scores)

    def suggest_many(
        self, rows: Sequence[int] | np.ndarray, k: int = 10, batch: int = 64
    ) -> list[list[RankedCandidate]]:
        """Top ``k`` (diversified) suggestions for many cities; scoring is done a batch of rows at a time."""
        rows = np.asarray(rows, np.int64)
        out: list[list[RankedCandidate]] = []
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            comps = self.components_batch(part)
            scores = self.blend(comps)
            for q, row in enumerate(part):
                mask = self.candidate_mask(int(row))
                picked = top_k(
                    scores[q], k, mask, groups=self.table_.country_idx, max_group_share=self.max_country_share
                )
                one = {name: v[q : q + 1] for name, v in comps.items()}
                out.append(self._explain_rows(int(row), picked, one, scores[q]))
        return out

    def explain(self, row: int, other: int) -> RankedCandidate:
        """The full explanation of one pair."""
        comps = self.components_batch([row])
        scores = self.blend(comps)[0]
        return self._explain_rows(row, np.array([other]), comps, scores)[0]

    def _explain_rows(
        self, row: int, picked: np.ndarray, comps: Mapping[str, np.ndarray], scores: np.ndarray
    ) -> list[RankedCandidate]:
        t = self.table_
        dist = haversine_km(t.lat[row], t.lon[row], t.lat[picked], t.lon[picked])
        fits = self.sector_fits(row, picked)
        out = []
        for q, j in enumerate(picked):
            c = {name: round(float(v[0, j]), 4) for name, v in comps.items() if not np.isnan(v[0, j])}
            out.append(
                RankedCandidate(
                    row=int(j),
                    city_id=int(t.ids[j]),
                    score=round(float(scores[j]), 4),
                    components=c,
                    sectors=fits[q],
                    distance_km=round(float(dist[q]), 1),
                )
            )
        return out

    # ------------------------------------------------------------------ sectors
    def sector_fits(self, row: int, others: np.ndarray, top: int = 5) -> list[list[SectorFit]]:
        """Ranked collaboration sectors for each pair (row, other), each with a one-line reason."""
        t = self.table_
        others = np.asarray(others, np.int64)
        a = str(t.names[row])
        oi, si = t.offers[row], t.seeks[row]
        oj, sj = t.offers[others], t.seeks[others]
        kinds = np.stack(
            [
                np.minimum(oi[None, :], sj),  # A offers, B seeks
                np.minimum(oj, si[None, :]),  # B offers, A seeks
                0.9 * np.minimum(si[None, :], sj),  # both seek
                0.5 * np.minimum(oi[None, :], oj),  # both offer
                0.5 * np.broadcast_to(si, sj.shape),  # only A has a profile: what A seeks
                0.5 * sj,  # only B has a profile: what B seeks
            ],
            axis=-1,
        )
        has_a = bool(t.has_profile[row])
        has_b = t.has_profile[others]
        kinds[..., :4] *= (has_a & has_b)[:, None, None]
        kinds[..., 4] *= (has_a & ~has_b)[:, None]
        kinds[..., 5] *= (~has_a & has_b)[:, None]
        best_kind = kinds.argmax(axis=-1)
        best = kinds.max(axis=-1)
        result: list[list[SectorFit]] = []
        for q, j in enumerate(others):
            b = str(t.names[j])
            order = np.argsort(-best[q], kind="stable")
            fits = []
            for s in order[:top]:
                if best[q, s] <= 0.05:
                    break
                fits.append(
                    SectorFit(SECTOR_KEYS[s], round(float(best[q, s]), 3), _reason(int(best_kind[q, s]), s, a, b))
                )
            if not fits:
                fits = _default_sectors(a, b, t.population[row], t.population[j])
            result.append(fits)
        return result


REASONS = (
    "{a} offers {s}, which {b} seeks",
    "{b} offers {s}, which {a} seeks",
    "both seek {s}",
    "both offer {s}",
    "{a} seeks {s}; {b} has no profile yet",
    "{b} seeks {s}; {a} has no profile yet",
)


def _reason(kind: int, sector: int, a: str, b: str) -> str:
    return REASONS[kind].format(a=a, b=b, s=label(SECTOR_KEYS[sector]))


def _default_sectors(a: str, b: str, pop_a: float, pop_b: float) -> list[SectorFit]:
    """Neither profile says anything useful: propose the usual first programmes of a twinning."""
    note = "a usual first programme of twinned cities; neither profile names a shared sector yet"
    keys = ["culture_arts", "education", "youth"]
    if min(pop_a, pop_b) >= 1_000_000:
        keys = ["economy_employment", "trade_investment", *keys]
    return [SectorFit(k, round(0.2 - 0.02 * i, 3), f"{label(k)}: {note}") for i, k in enumerate(keys)]


def _neighbour_lists(pairs: np.ndarray, n: int) -> list[np.ndarray]:
    if len(pairs) == 0:
        return [np.empty(0, np.int64) for _ in range(n)]
    both = np.concatenate([pairs, pairs[:, ::-1]])
    order = np.argsort(both[:, 0], kind="stable")
    both = both[order]
    starts = np.searchsorted(both[:, 0], np.arange(n + 1))
    return [both[starts[i] : starts[i + 1], 1] for i in range(n)]


def describe(s: RankedCandidate) -> dict[str, Any]:
    """A JSON-ready dict of a suggestion (without the city record)."""
    return {
        "score": s.score,
        "components": s.components,
        "sectors": [
            {"sector": f.sector, "label": label(f.sector), "score": f.score, "reason": f.reason} for f in s.sectors
        ],
        "distance_km": s.distance_km,
    }


class TwinningRanker:
    """The served score as an evaluation ranker (the ``twinning`` row of :func:`matcher.evaluate.evaluate_split`).

    ``fit`` fits the learned :class:`~matcher.likelihood.PartnershipLikelihood` on the training pairs and a
    :class:`TwinningMatcher` (no profiles) with those pairs as existing partnerships; ``score_sources`` returns
    :meth:`TwinningMatcher.score_rows`, i.e. exactly the score suggestions get for cities without profiles. With
    a likelihood present, :meth:`TwinningMatcher.blend` leaves the gazetteer components (``size``, ``context``)
    unweighted, so that score is the ``likelihood`` component alone — a strictly increasing transform of the
    learned probability: it ranks candidates as the likelihood model does.
    """

    def __init__(
        self,
        countries: CountryTable | None = None,
        weights: Mapping[str, float] | None = None,
        likelihood_params: Mapping[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.countries = countries
        self.weights = weights
        self.likelihood_params = likelihood_params
        self.random_state = random_state

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> TwinningRanker:
        from .likelihood import PartnershipLikelihood

        params = dict(self.likelihood_params or {})
        params.setdefault("random_state", self.random_state)
        self.likelihood_ = PartnershipLikelihood(**params).fit(cities, pairs)
        table = CityTable.build(cities, {}, self.countries)
        a = pairs["geonameid_a"].to_numpy(np.int64)
        b = pairs["geonameid_b"].to_numpy(np.int64)
        known = np.array([x in table.row_of_id and y in table.row_of_id for x, y in zip(a, b, strict=True)], bool)
        rows = np.array([(table.row_of_id[x], table.row_of_id[y]) for x, y in zip(a[known], b[known], strict=True)])
        self.matcher_ = TwinningMatcher(weights=self.weights, likelihood=self.likelihood_).fit(
            table, rows.reshape(-1, 2)
        )
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        table = self.matcher_.table_
        return self.matcher_.score_rows(np.array([table.row(int(g)) for g in geonameids], np.int64))
