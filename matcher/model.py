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

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .features import MIN_POPULATION, CityTable, ProfileData
from .geo import haversine_km
from .graph import neighbour_lists
from .rank import home_caps, rare_home_groups, spread_codes, top_k
from .raw_rank import column_runs, profile_scores, profile_total, profile_weight, raw_likelihood, suggest_batch
from .results import Filters, Likelihood, RankedCandidate
from .sector_fit import SectorFit, sector_fits

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
        self.partners_: list[np.ndarray] = neighbour_lists(pairs, n)
        self.rare_home_ = rare_home_groups(table.country_idx, pairs, len(table.country_codes))
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
        self.likelihood_aligned_ = bool(
            self.likelihood is not None
            and len(np.asarray(self.likelihood.geonameids_)) == n
            and np.array_equal(self.likelihood_cols_, np.arange(n))
        )
        self.likelihood_runs_ = column_runs(self.likelihood_cols_)
        self.log_pop_ = np.log(np.maximum(table.population, MIN_POPULATION))
        self.spread_ = spread_codes(table.population, table.lat, table.lon)
        self.abs_lat_ = np.abs(table.lat)
        self._fit_profiles()
        return self

    def with_profiles(self, updates: Mapping[int, ProfileData | None]) -> TwinningMatcher:
        """A fitted copy whose table has the given profiles replaced (API id → profile, ``None`` to remove).

        The gazetteer arrays, partnerships and likelihood columns are shared with this matcher; only the profile
        columns are copied, so a profile edit costs milliseconds where a new :meth:`fit` costs seconds. This
        matcher is left untouched (readers holding it keep a consistent view)."""
        clone = copy.copy(self)
        clone.table_ = self.table_.with_profiles(updates)
        clone._fit_profiles()
        return clone

    def _fit_profiles(self) -> None:
        """The profile-dependent caches of the fitted table."""
        table = self.table_
        # cities whose own preferences (or "not seeking") can penalise any source: the only columns where the
        # other side's preferences apply
        self.pref_cols_ = np.flatnonzero(
            table.has_pref_country
            | ~np.isnan(table.pref_min_pop)
            | ~np.isnan(table.pref_max_pop)
            | (table.has_profile & ~table.seeking)
        )
        self.profiled_ = np.flatnonzero(table.has_profile)
        oj = table.offers[self.profiled_].astype(np.float64)
        sj = table.seeks[self.profiled_].astype(np.float64)
        self.profile_cache_ = (oj, sj, oj + sj, np.linalg.norm(oj + sj, axis=1), sj.sum(axis=1))

    # ------------------------------------------------------------------ scoring
    def _likelihood(self, rows: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray | None:
        """The scaled likelihood ``(len(rows), n)`` of the query rows against every city (``raw``: their
        :func:`~matcher.raw_rank.raw_likelihood`, if already computed)."""
        if raw is None:
            raw = raw_likelihood(self, rows)
        return None if raw is None else self._likelihood_scale(np.asarray(raw, np.float64))

    def _likelihood_scale(self, p: np.ndarray) -> np.ndarray:
        """``1 + log10(p) / 8`` (for the default floor) in [0, 1], computed in place of a float64 copy of ``p``.

        A vanishing multiple of p keeps the transform strictly increasing below the floor, so the order of the
        learned model is kept everywhere (ties would count against true partners in the evaluation).
        """
        x = np.clip(p, self.likelihood_floor, 1.0)
        np.log10(x, out=x)
        x /= -np.log10(self.likelihood_floor)
        x += 1.0
        x += 1e-6 * p
        return np.clip(x, 0.0, 1.0, out=x)

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
            qi = np.flatnonzero(has)[:, None]
            cols = self.profiled_[None, :]
            for name, block in self._profile_block(rows[has], self.profiled_).items():
                comps[name][qi, cols] = block

        # Gazetteer components: for every pair.
        lp = self.log_pop_
        comps["size"] = np.exp(-np.abs(lp[rows][:, None] - lp[None, :]) / self.size_scale)
        ci = t.country_idx[rows]
        shared_lang = t.shared_language[ci][:, t.country_idx].astype(np.float64)
        band = 1.0 - np.abs(self.abs_lat_[rows][:, None] - self.abs_lat_[None, :]) / 90.0
        comps["context"] = 0.5 * shared_lang + 0.5 * band
        comps["preference"] = self._preference(rows)
        return comps

    def _profile_block(self, q: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        """The profile components of profiled sources ``q`` against profiled cities ``cols``:
        ``(len(q), len(cols))``."""
        t = self.table_
        oi, si = t.offers[q].astype(np.float64), t.seeks[q].astype(np.float64)
        oj, sj = t.offers[cols].astype(np.float64), t.seeks[cols].astype(np.float64)
        ij = oj + sj
        norm_j, sj_sum = np.linalg.norm(ij, axis=1), sj.sum(axis=1)
        ii = oi + si
        norm_i = np.linalg.norm(ii, axis=1)[:, None]
        si_sum = si.sum(axis=1)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            interest = np.nan_to_num((ii @ ij.T) / (norm_i * norm_j[None, :]), nan=0.0)
            # a→b: the share of b's needs (seek weight) that a offers; b→a likewise.
            a_to_b = np.nan_to_num((oi @ sj.T) / sj_sum[None, :], nan=0.0, posinf=0.0)
            b_to_a = np.nan_to_num((si @ oj.T) / si_sum, nan=0.0, posinf=0.0)
            recip = np.where(a_to_b + b_to_a > 0, 2 * a_to_b * b_to_a / (a_to_b + b_to_a), 0.0)
        return {
            "interest": np.clip(interest, 0, 1),
            "complementarity": np.clip((a_to_b + b_to_a) / 2, 0, 1),
            "reciprocity": np.clip(recip, 0, 1),
        }

    def _violations(self, r: int, cols: np.ndarray | slice) -> np.ndarray:
        """Unmet preferences of the pairs (``r``, each city of ``cols``), either side's."""
        t = self.table_
        pop, cidx = t.population[cols], t.country_idx[cols]
        v = np.zeros(len(pop), np.int32)
        if t.has_pref_country[r]:
            v += ~t.pref_country[r, cidx]
        if not np.isnan(t.pref_min_pop[r]):
            v += pop < t.pref_min_pop[r]
        if not np.isnan(t.pref_max_pop[r]):
            v += pop > t.pref_max_pop[r]
        if t.pref_languages[r]:
            v += ~t.language_mask(t.pref_languages[r])[cidx]
        # The other side's preferences about this city (reciprocal matching).
        v += t.has_pref_country[cols] & ~t.pref_country[cols, t.country_idx[r]]
        # an unset bound is NaN, and every comparison with NaN is False (quietly): no violation
        v += t.population[r] < t.pref_min_pop[cols]
        v += t.population[r] > t.pref_max_pop[cols]
        v += t.has_profile[cols] & ~t.seeking[cols]
        return v

    def _own_preferences(self, r: int) -> bool:
        t = self.table_
        return bool(
            t.has_pref_country[r]
            or not np.isnan(t.pref_min_pop[r])
            or not np.isnan(t.pref_max_pop[r])
            or t.pref_languages[r]
        )

    def _preference(self, rows: np.ndarray) -> np.ndarray:
        """``preference_penalty ** violations`` of each row against every city (:meth:`_violations`)."""
        violations = np.zeros((len(rows), len(self.table_)), np.int32)
        for q, r in enumerate(rows):
            violations[q] = self._violations(int(r), slice(None))
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
        """Blended scores ``(len(rows), n)`` of each query row against every city.

        Equal to ``blend(components_batch(rows))``, without materialising the mostly-NaN component matrices:
        the learned likelihood (or the gazetteer components) everywhere, the profile components only on the block
        of profiled pairs, the preference factor only where a preference can apply.
        """
        return self._score_rows(np.asarray(rows, np.int64))[0]

    def _score_rows(self, rows: np.ndarray, raw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(scores, scaled likelihood or None)``, both ``(len(rows), n)`` (``raw``: see :meth:`_likelihood`)."""
        check_is_fitted(self, "table_")
        t = self.table_
        w = self.weights_
        lik = self._likelihood(rows, raw)
        if lik is not None:
            total = lik * w["likelihood"]
            wsum = w["likelihood"]
        else:
            lp = self.log_pop_
            size = np.exp(-np.abs(lp[rows][:, None] - lp[None, :]) / self.size_scale)
            ci = t.country_idx[rows]
            ctx = 0.5 * t.shared_language[ci][:, t.country_idx].astype(np.float64)
            ctx += 0.5 * (1.0 - np.abs(self.abs_lat_[rows][:, None] - self.abs_lat_[None, :]) / 90.0)
            total = w["size"] * size
            total += w["context"] * ctx
            wsum = w["size"] + w["context"]
        has = t.has_profile[rows]
        block = None
        if has.any() and self.profiled_.size:
            qi, cols = np.flatnonzero(has), self.profiled_
            if lik is not None:
                block = (qi, cols, profile_scores(self, rows[has], lik[np.ix_(qi, cols)]))
            else:
                sub_total = profile_total(self, rows[has], cols)
                sub_total = sub_total + w["size"] * size[np.ix_(qi, cols)]
                sub_total = sub_total + w["context"] * ctx[np.ix_(qi, cols)]
                block = (qi, cols, sub_total / (profile_weight(self, 0.0) + w["size"] + w["context"]))
        if wsum > 0:
            total /= wsum
        else:
            total[:] = 0.0
        score = total
        if block is not None:
            score[np.ix_(block[0], block[1])] = block[2]
        self._apply_preferences(rows, score)
        return np.clip(score, 0.0, 1.0, out=score), lik

    def _apply_preferences(self, rows: np.ndarray, score: np.ndarray) -> None:
        """``score *= preference_penalty ** violations``, in place, only where a preference can apply."""
        cols = self.pref_cols_
        for q, r in enumerate(rows):
            if self._own_preferences(int(r)):
                score[q] *= np.power(self.preference_penalty, self._violations(int(r), slice(None))).astype(np.float64)
            elif cols.size:
                score[q, cols] *= np.power(self.preference_penalty, self._violations(int(r), cols)).astype(np.float64)

    def components_at(
        self, row: int, cols: np.ndarray, lik_row: np.ndarray | None = None, *, lik_at: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Every component of the pairs (``row``, each of ``cols``): ``{name: (1, len(cols))}``; NaN = n/a.

        ``lik_row`` is the row's scaled likelihood against all cities, or ``lik_at`` against ``cols`` only, if
        already computed (else it is).
        """
        t = self.table_
        cols = np.asarray(cols, np.int64)
        comps: dict[str, np.ndarray] = {}
        if self.likelihood is not None and lik_at is not None:
            comps["likelihood"] = np.asarray(lik_at, np.float64)[None, :]
        elif self.likelihood is not None:
            if lik_row is None:
                lik = self._likelihood(np.array([row]))
                assert lik is not None
                lik_row = lik[0]
            comps["likelihood"] = np.asarray(lik_row)[cols][None, :]
        for name in PROFILE_COMPONENTS:
            comps[name] = np.full((1, len(cols)), np.nan)
        both = np.flatnonzero(t.has_profile[cols]) if t.has_profile[row] else np.zeros(0, np.int64)
        if both.size:
            for name, block in self._profile_block(np.array([row]), cols[both]).items():
                comps[name][0, both] = block[0]
        lp = self.log_pop_
        comps["size"] = np.exp(-np.abs(lp[row] - lp[cols]) / self.size_scale)[None, :]
        shared_lang = t.shared_language[t.country_idx[row]][t.country_idx[cols]].astype(np.float64)
        band = 1.0 - np.abs(self.abs_lat_[row] - self.abs_lat_[cols]) / 90.0
        comps["context"] = (0.5 * shared_lang + 0.5 * band)[None, :]
        comps["preference"] = np.power(self.preference_penalty, self._violations(row, cols)).astype(np.float64)[None, :]
        return comps

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
        all_scores, lik = self._score_rows(np.array([row], np.int64))
        scores = all_scores[0]
        mask = self.candidate_mask(row, filters)
        diversify = not (filters and filters.countries)
        share = self.max_country_share
        if filters is not None and filters.max_country_share is not None:
            share = filters.max_country_share
        picked = self._top(row, scores, k, mask, share if diversify and share < 1 else None)
        comps = self.components_at(row, picked, None if lik is None else lik[0])
        return self._explain_rows(row, picked, comps, scores[picked])

    def suggest_many(
        self, rows: Sequence[int] | np.ndarray, k: int = 10, batch: int = 64
    ) -> list[list[RankedCandidate]]:
        """Top ``k`` (diversified) suggestions for many cities; scoring is done a batch of rows at a time.

        With a learned likelihood (the re-scoring case), the ranking is made on the model's raw scores, and the
        served score is computed only where it can matter (:func:`~matcher.raw_rank.suggest_batch`); otherwise
        every score of the batch is computed. Both give the same suggestions."""
        rows = np.asarray(rows, np.int64)
        out: list[list[RankedCandidate]] = []
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            raw = raw_likelihood(self, part)
            if raw is not None and self.weights_["likelihood"] > 0 and bool(np.isfinite(raw).all()):
                out.extend(suggest_batch(self, part, raw, k))
                continue
            scores, lik = self._score_rows(part, raw)
            for q, row in enumerate(part):
                mask = self.candidate_mask(int(row))
                picked = self._top(int(row), scores[q], k, mask, self.max_country_share)
                comps = self.components_at(int(row), picked, None if lik is None else lik[q])
                out.append(self._explain_rows(int(row), picked, comps, scores[q][picked]))
        return out

    def preferred_countries(self, row: int) -> np.ndarray:
        """Country indices (``table_.country_idx``) that the city at ``row`` prefers (empty: none)."""
        t = self.table_
        return np.flatnonzero(t.pref_country[row]) if t.has_pref_country[row] else np.zeros(0, np.int64)

    def _top(self, row: int, scores: np.ndarray, k: int, mask: np.ndarray, share: float | None) -> np.ndarray:
        """The served top ``k``: capped per country (``share``; None = no cap), spread across the countries the
        city prefers and across the sizes and areas inside them (:func:`~matcher.rank.pick_diverse`)."""
        if share is None:
            return top_k(scores, k, mask)
        return top_k(scores, k, mask, **self._diversity(row, share))

    def _diversity(self, row: int, share: float) -> dict[str, Any]:
        """The diversity pass's arguments for the city at ``row`` (:func:`~matcher.rank.top_k`,
        :func:`~matcher.rank.top_k_among`): its country cap, its preferred countries and, with them, the spread, and
        none of its own country where that country's places rarely twin at home (unless it prefers it)."""
        preferred = self.preferred_countries(row).tolist()
        home = int(self.table_.country_idx[row])
        return {
            "groups": self.table_.country_idx,
            "max_group_share": share,
            "preferred": preferred,
            "spread": self.spread_ if preferred else None,
            "group_caps": home_caps(home, bool(self.rare_home_[home])),
        }

    def explain(self, row: int, other: int) -> RankedCandidate:
        """The full explanation of one pair."""
        others = np.array([other], np.int64)
        scores, lik = self._score_rows(np.array([row], np.int64))
        comps = self.components_at(row, others, None if lik is None else lik[0])
        return self._explain_rows(row, others, comps, scores[0][others])[0]

    def _explain_rows(
        self, row: int, picked: np.ndarray, comps: Mapping[str, np.ndarray], scores: np.ndarray
    ) -> list[RankedCandidate]:
        """``comps`` (:meth:`components_at`) and ``scores`` are aligned with ``picked``."""
        t = self.table_
        dist = haversine_km(t.lat[row], t.lon[row], t.lat[picked], t.lon[picked])
        fits = self.sector_fits(row, picked)
        # as Python floats once per component (not one numpy scalar per cell); NaN (n/a) is left out
        values = [(name, np.asarray(v, np.float64)[0].tolist()) for name, v in comps.items()]
        score_list = np.asarray(scores, np.float64).tolist()
        dist_list = np.asarray(dist, np.float64).tolist()
        ids = t.ids[picked].tolist()
        out = []
        for q, j in enumerate(np.asarray(picked).tolist()):
            c = {name: round(x[q], 4) for name, x in values if not math.isnan(x[q])}
            out.append(
                RankedCandidate(
                    row=int(j),
                    city_id=int(ids[q]),
                    score=round(score_list[q], 4),
                    components=c,
                    sectors=fits[q],
                    distance_km=round(dist_list[q], 1),
                )
            )
        return out

    # ------------------------------------------------------------------ sectors
    def sector_fits(self, row: int, others: np.ndarray, top: int = 5) -> list[list[SectorFit]]:
        """Ranked collaboration sectors for each pair (row, other), each with a one-line reason."""
        return sector_fits(self.table_, row, others, top)
