"""Re-scoring on the model's raw scores: what :meth:`~matcher.model.TwinningMatcher.suggest_many` computes for a
batch of places when a learned likelihood is present, without the ``(m, n)`` served scores.

Where neither side's profile nor preferences apply, the served score is a non-decreasing function ``g`` of the
model's probability (the likelihood's log scale, its weight, the clip to [0, 1]), so the diversity pass's head
(:func:`~matcher.rank.top_k`) is found by one partial selection over the model's float32 scores; the served scores
are then computed, elementwise as :meth:`~matcher.model.TwinningMatcher.score_rows` computes them, only for the head
and for the columns where a profile or a preference can apply. Rows where this would not be exact are scored in
full. The suggestions are the same, bit for bit (``tests/matcher/test_rescore_fast_path.py``).

The profiled pairs' blend (:func:`profile_scores`) is shared with ``TwinningMatcher._score_rows``, so both paths
compute it with the same operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .rank import top_k_among, top_k_rows
from .results import RankedCandidate

if TYPE_CHECKING:
    from .model import TwinningMatcher


def raw_likelihood(m: TwinningMatcher, rows: np.ndarray) -> np.ndarray | None:
    """The model's probabilities ``(len(rows), n)`` in table order (0 for a city the model does not know;
    a source it does not know is scored as a new city), float32 when the model gives float32."""
    if m.likelihood is None:
        return None
    t = m.table_
    cols = m.likelihood_cols_
    known = cols[rows] >= 0
    if m.likelihood_aligned_ and known.all():  # the same gazetteer in the same order: no column gather
        return np.asarray(m.likelihood.score_sources(t.geonameids[rows].tolist()))
    have = np.flatnonzero(cols >= 0)
    out: np.ndarray | None = None
    if known.any():
        scores = np.asarray(m.likelihood.score_sources(t.geonameids[rows[known]].tolist()))
        out = np.zeros((len(rows), len(t)), np.float32 if scores.dtype == np.float32 else np.float64)
        if known.all() and m.likelihood_runs_ is not None:  # the same order but for a few places: slices
            for start, stop, first in m.likelihood_runs_:
                out[:, start:stop] = scores[:, first : first + stop - start]
        else:
            out[np.ix_(np.flatnonzero(known), have)] = scores[:, cols[have]]
    for q in np.flatnonzero(~known):
        r = rows[q]
        s = np.asarray(
            m.likelihood.score_new(str(t.country[r]), int(t.population[r]), float(t.lat[r]), float(t.lon[r]))
        )
        if out is None:
            out = np.zeros((len(rows), len(t)), np.float32 if s.dtype == np.float32 else np.float64)
        elif out.dtype == np.float32 and s.dtype != np.float32:
            out = out.astype(np.float64)
        out[q, have] = s[cols[have]]
    return out


def suggest_batch(m: TwinningMatcher, part: np.ndarray, raw: np.ndarray, k: int) -> list[list[RankedCandidate]]:
    """:meth:`~matcher.model.TwinningMatcher.suggest_many` of one batch from the model's raw scores ``raw``
    ``(len(part), n)``, without the ``(len(part), n)`` served scores.

    Where neither side's profile nor preferences apply, the served score is a non-decreasing function ``g`` of the
    raw score (``TwinningMatcher._likelihood_scale``, the weight, the clip); the columns where they can apply (the
    profiled cities and those with preferences) are scored exactly for every row. So the diversity pass's head
    (:func:`~matcher.rank.top_k`) is among the best ``max(20 k, 200)`` other columns by raw score, with their
    ties, plus those columns, as long as ``g`` separates the boundary from the next raw score below it; the
    served scores are computed on these only, elementwise as ``TwinningMatcher._score_rows`` does. A row where
    that does not hold (a boundary in the clipped range, preferences of the source's own, a short head) is scored
    in full."""
    t = m.table_
    n = len(t)
    head = max(k * 20, 200)
    profiled = m.profiled_
    block = np.zeros((0, len(profiled)))
    block_of = np.full(len(part), -1, np.int64)
    has = t.has_profile[part]
    if has.any() and profiled.size:
        qi = np.flatnonzero(has)
        block = profile_scores(m, part[has], m._likelihood_scale(raw[np.ix_(qi, profiled)].astype(np.float64)))
        block_of[qi] = np.arange(len(qi))
    special = np.union1d(m.pref_cols_, profiled).astype(np.int64)
    partners = [np.unique(np.append(m.partners_[int(r)], r)).astype(np.int64) for r in part]
    ex_rows = np.repeat(np.arange(len(part)), [len(x) for x in partners])
    ex_cols = np.concatenate(partners) if partners else np.zeros(0, np.int64)
    cand = top_k_rows(raw, min(head, n), skip_cols=special if special.size else None, skip_cells=(ex_rows, ex_cols))
    blocked = np.zeros(n, bool)
    blocked[special] = True
    out: list[list[RankedCandidate]] = []
    for q, row in enumerate(part):
        r = int(row)
        cols = None if m._own_preferences(r) else _fast_columns(m, raw[q], cand[q], partners[q], special, blocked)
        picked = lik_at = None
        if cols is not None:
            scores, lik = _scores_at(m, r, raw[q], cols, block, int(block_of[q]))
            picked_pos = _top_among(m, r, cols, scores, k, n - len(partners[q]))
            if picked_pos is not None:
                picked, scores_at, lik_at = cols[picked_pos], scores[picked_pos], lik[picked_pos]
        if picked is None or lik_at is None:  # in full, as _score_rows does
            every = np.arange(n)
            scores_all, lik_all = _scores_at(m, r, raw[q], every, block, int(block_of[q]))
            picked = m._top(r, scores_all, k, m.candidate_mask(r), m.max_country_share)
            scores_at, lik_at = scores_all[picked], lik_all[picked]
        comps = m.components_at(r, picked, lik_at=lik_at)
        out.append(m._explain_rows(r, picked, comps, scores_at))
    return out


def _fast_columns(
    m: TwinningMatcher, p: np.ndarray, cand: np.ndarray, excluded: np.ndarray, special: np.ndarray, blocked: np.ndarray
) -> np.ndarray | None:
    """The columns of one row of :func:`suggest_batch` to score exactly: the best other columns by the raw
    score ``p`` (``cand``, from the batch's partial selection), every column tied with the worst of them, and
    the ``special`` columns; none of ``excluded`` (the row and its partners). ``blocked`` marks the ``special``
    columns (``(n,)``; restored on return). ``None``: score the row in full (``g`` does not separate the
    boundary from the raw scores below it)."""
    was = blocked[excluded]
    blocked[excluded] = True
    try:
        c = cand[~blocked[cand]]
        n_plain = len(p) - len(special) - int(np.count_nonzero(~was))
        if len(c) < n_plain:  # plain columns are left out: they must all score below the head's boundary
            if len(c) == 0:
                return None
            kth = p[c].min()
            ge = p >= kth
            if np.count_nonzero(ge) - np.count_nonzero(ge & blocked) > len(c):  # ties at the boundary
                c = np.flatnonzero(ge & ~blocked)
            below = np.nextafter(kth, np.array(-np.inf, p.dtype))
            g = _plain_scores(m, np.array([below, kth], p.dtype))
            if not g[0] < g[1]:
                return None
    finally:
        blocked[excluded] = was
    return np.concatenate([c, special[~np.isin(special, excluded)]]).astype(np.int64)


def _plain_scores(m: TwinningMatcher, p: np.ndarray) -> np.ndarray:
    """The served score of raw likelihoods ``p`` where no profile or preference applies
    (``TwinningMatcher._score_rows``)."""
    w = m.weights_["likelihood"]
    s = m._likelihood_scale(np.asarray(p, np.float64)) * w
    s /= w
    return np.clip(s, 0.0, 1.0, out=s)


def _scores_at(
    m: TwinningMatcher, r: int, p: np.ndarray, cols: np.ndarray, block: np.ndarray, b: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(served scores, scaled likelihood)`` of the row ``r`` at ``cols`` from its raw scores ``p`` (all cities),
    elementwise as ``TwinningMatcher._score_rows`` computes them; ``block[b]`` holds the row's scores against the
    profiled cities (``b < 0``: the row has no profile)."""
    w = m.weights_["likelihood"]
    lik = m._likelihood_scale(p[cols].astype(np.float64))
    s = lik * w
    s /= w
    if b >= 0 and m.profiled_.size:
        pos = np.minimum(np.searchsorted(m.profiled_, cols), len(m.profiled_) - 1)
        hit = m.profiled_[pos] == cols
        s[hit] = block[b, pos[hit]]
    penalty = m.preference_penalty
    if m._own_preferences(r):
        s *= np.power(penalty, m._violations(r, cols)).astype(np.float64)
    elif m.pref_cols_.size:
        pos = np.minimum(np.searchsorted(m.pref_cols_, cols), len(m.pref_cols_) - 1)
        hit = m.pref_cols_[pos] == cols
        if hit.any():
            s[hit] *= np.power(penalty, m._violations(r, cols[hit])).astype(np.float64)
    return np.clip(s, 0.0, 1.0, out=s), lik


def _top_among(
    m: TwinningMatcher, r: int, cols: np.ndarray, scores: np.ndarray, k: int, n_allowed: int
) -> np.ndarray | None:
    """``TwinningMatcher._top`` (as ``suggest_many`` calls it) over the allowed ``cols`` only: positions in ``cols``."""
    return top_k_among(cols, scores, k, n_allowed, **m._diversity(r, m.max_country_share))


def profile_weight(m: TwinningMatcher, start: float) -> float:
    """``start`` plus the profile components' weights, summed in :meth:`~matcher.model.TwinningMatcher.blend`'s
    order."""
    w = m.weights_
    for name in ("interest", "complementarity", "reciprocity"):
        start = start + w[name]
    return start


def profile_total(m: TwinningMatcher, q: np.ndarray, cols: np.ndarray, lik: np.ndarray | None = None) -> np.ndarray:
    """``Σ wᶜ·xᶜ`` over the likelihood (if given, ``(len(q), len(cols))``) and the profile components of the
    profiled sources ``q`` against the profiled cities ``cols``: the same sums, in the same order, as
    :meth:`~matcher.model.TwinningMatcher.blend` over the available components."""
    w = m.weights_
    comps = m._profile_block(q, cols)
    sub_total = lik * w["likelihood"] if lik is not None else None
    for name in ("interest", "complementarity", "reciprocity"):
        term = w[name] * comps[name]
        sub_total = term if sub_total is None else sub_total + term
    assert sub_total is not None
    return sub_total


def profile_scores(m: TwinningMatcher, q: np.ndarray, lik: np.ndarray) -> np.ndarray:
    """The blended scores (before preferences) of the profiled sources ``q`` against every profiled city, from
    the scaled likelihood ``lik`` of those pairs ``(len(q), len(profiled_))``."""
    sub_w = profile_weight(m, m.weights_["likelihood"])
    return profile_total(m, q, m.profiled_, lik) / sub_w


def column_runs(cols: np.ndarray, max_runs: int = 4096) -> list[tuple[int, int, int]] | None:
    """``cols`` (each table row's column in the model, -1 for none) as runs ``(start, stop, first)``: table rows
    ``start:stop`` are the model's columns ``first:first + stop - start``; ``None`` if there are more than
    ``max_runs`` (a gather is then cheaper than the slices)."""
    have = np.flatnonzero(cols >= 0)
    if len(have) == 0:
        return []
    src = cols[have]
    breaks = np.flatnonzero((np.diff(have) != 1) | (np.diff(src) != 1)) + 1
    if len(breaks) + 1 > max_runs:
        return None
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(have)]])
    return [(int(have[a]), int(have[b - 1]) + 1, int(src[a])) for a, b in zip(starts, stops, strict=True)]
