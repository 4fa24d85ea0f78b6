"""Top-k selection over score vectors, with optional diversity by group (country)."""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np


def top_k(
    scores: np.ndarray,
    k: int,
    mask: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    max_group_share: float = 1 / 3,
    preferred: Collection[Hashable] | None = None,
    spread: np.ndarray | None = None,
    group_caps: Mapping[Hashable, int] | None = None,
) -> np.ndarray:
    """Indices of the ``k`` best-scoring allowed candidates, best first; ties go to the lower index.

    With ``groups``, at most ``max(1, floor(k * max_group_share))`` of the k come from one group, as long as other
    groups have candidates left; the cap is lifted only to fill k when no other group can. ``preferred`` groups
    (the countries a city seeks), ``spread`` (``(n, s)`` sub-group codes per candidate, e.g.
    :func:`spread_codes`) and ``group_caps`` (e.g. the source's own country, :func:`home_caps`) follow
    :func:`pick_diverse`.
    """
    scores = np.asarray(scores, np.float64)
    allowed = np.flatnonzero(mask) if mask is not None else np.arange(scores.shape[0])
    if k <= 0 or allowed.size == 0:
        return np.empty(0, np.int64)
    # Enough head-room for the diversity pass; all of it is a vectorised partition.
    m = min(allowed.size, k if groups is None else max(k * 20, 200))
    sub = scores[allowed]
    if m < allowed.size:
        # Everything scoring at least the m-th best score, so ties at the boundary are all considered.
        kth = -np.partition(-sub, m - 1)[m - 1]
        head = np.flatnonzero(sub >= kth)
    else:
        head = np.arange(allowed.size)
    head, picked = _ranked_head(allowed, sub, head, k, groups, max_group_share, preferred, spread, group_caps)
    ordered = allowed[head]
    if picked is None:
        return ordered[:k]
    chosen = [int(ordered[p]) for p in picked]
    if len(chosen) < k and m < allowed.size:  # the head ran out: fill by score from the rest
        rest = np.setdiff1d(allowed, ordered, assume_unique=True)
        rest = rest[np.lexsort((rest, -scores[rest]))]
        chosen.extend(int(i) for i in rest[: k - len(chosen)])
    chosen.sort(key=lambda i: (-scores[i], i))
    return np.asarray(chosen, np.int64)


def top_k_among(
    cols: np.ndarray,
    scores: np.ndarray,
    k: int,
    n_allowed: int,
    groups: np.ndarray | None = None,
    max_group_share: float = 1 / 3,
    preferred: Collection[Hashable] | None = None,
    spread: np.ndarray | None = None,
    group_caps: Mapping[Hashable, int] | None = None,
) -> np.ndarray | None:
    """:func:`top_k` over ``n_allowed`` candidates of which only some, ``cols`` with their ``scores``, are given:
    the same answer, as positions in ``cols``, provided ``cols`` holds every allowed candidate that scores at least
    as high as the ``max(20 k, 200)``-th best of them (with ``groups``; else the ``k``-th). ``None`` when the
    answer would need a candidate outside ``cols`` (fewer given than the head needs, or the diversity pass running
    out of the head).
    """
    cols = np.asarray(cols, np.int64)
    scores = np.asarray(scores, np.float64)
    if k <= 0 or n_allowed <= 0:
        return np.empty(0, np.int64)
    m = min(n_allowed, k if groups is None else max(k * 20, 200))
    if m < n_allowed:
        if len(cols) < m:
            return None
        kth = -np.partition(-scores, m - 1)[m - 1]
        head = np.flatnonzero(scores >= kth)
    elif len(cols) == n_allowed:
        head = np.arange(len(cols))
    else:
        return None
    head, picked = _ranked_head(cols, scores, head, k, groups, max_group_share, preferred, spread, group_caps)
    ordered = cols[head]
    if picked is None:
        return head[:k]
    if len(picked) < k and m < n_allowed:  # top_k would fill from outside the head
        return None
    ordered_scores = scores[head]
    chosen = sorted(picked, key=lambda p: (-ordered_scores[p], int(ordered[p])))
    return head[np.asarray(chosen, np.int64)] if chosen else np.empty(0, np.int64)


def _ranked_head(
    cols: np.ndarray,
    scores: np.ndarray,
    head: np.ndarray,
    k: int,
    groups: np.ndarray | None,
    max_group_share: float,
    preferred: Collection[Hashable] | None,
    spread: np.ndarray | None,
    group_caps: Mapping[Hashable, int] | None = None,
) -> tuple[np.ndarray, list[int] | None]:
    """The ``head`` positions (into ``cols`` / ``scores``) in rank order (score, then column), and with ``groups``
    the diversity pass's picks among them (positions in that order; ``None`` without groups)."""
    head = head[np.lexsort((cols[head], -scores[head]))]
    if groups is None:
        return head, None
    ordered = cols[head]
    subgroups = None if spread is None else [tuple(r) for r in np.asarray(spread)[ordered].tolist()]
    return head, pick_diverse(
        groups[ordered].tolist(), k, max_group_share, preferred=preferred, subgroups=subgroups, group_caps=group_caps
    )


def pick_diverse(
    groups: Sequence[Hashable],
    k: int,
    max_group_share: float = 1 / 3,
    *,
    preferred: Collection[Hashable] | None = None,
    subgroups: Sequence[Sequence[Hashable]] | None = None,
    group_caps: Mapping[Hashable, int] | None = None,
) -> list[int]:
    """Positions (in rank order) of the first ``k`` items of a ranked list, at most
    ``max(1, floor(k * max_group_share))`` per group; when too few groups remain, the best skipped items fill k.

    ``preferred`` are the groups the source asked for (its preferred countries): the cap must spread a list across
    them, not push it away from them. An item of a preferred group counts against a cap of ``ceil(k / #preferred)``
    for its group (all of the list may come from the one country a city seeks) and, with ``subgroups`` (per item,
    e.g. its size band and area, :func:`spread_codes`), against ``max(1, ceil(k * max_group_share))`` for each
    (group, sub-group): the list spreads across the regions and sizes of the countries sought.

    ``group_caps`` sets the cap of some groups that are not preferred (``{home: 0}``: none of the source's own
    country, :func:`home_caps`); their items still fill k when too few other items remain.
    """
    cap = max(1, math.floor(k * max_group_share))
    own_caps = group_caps or {}
    wanted = set(preferred or ())
    pref_cap = math.ceil(k / len(wanted)) if wanted else cap
    sub_cap = max(1, math.ceil(k * max_group_share))
    counts: dict[Hashable, int] = {}
    chosen: list[int] = []
    skipped: list[int] = []
    for pos, g in enumerate(groups):
        if g in wanted:
            keys: list[tuple[Hashable, int]] = [(("group", g), pref_cap)]
            if subgroups is not None:
                keys += [(("sub", g, i, s), sub_cap) for i, s in enumerate(subgroups[pos])]
        else:
            keys = [(("group", g), own_caps.get(g, cap))]
        if all(counts.get(key, 0) < c for key, c in keys):
            chosen.append(pos)
            for key, _ in keys:
                counts[key] = counts.get(key, 0) + 1
            if len(chosen) == k:
                break
        else:
            skipped.append(pos)
    if len(chosen) < k:
        chosen = sorted(chosen + skipped[: k - len(chosen)])
    return chosen


#: a country whose places have at least :data:`HOME_MIN_ENDS` partnerships, under this share of them with a place of
#: the same country, gets no suggestions from its own country (:func:`rare_home_groups`)
RARE_HOME_SHARE = 0.05
HOME_MIN_ENDS = 20


def rare_home_groups(groups: np.ndarray, pairs: np.ndarray, n_groups: int) -> np.ndarray:
    """``(n_groups,)`` bool: the groups (countries) whose places rarely partner at home.

    ``groups`` is the group of every row and ``pairs`` the ``(p, 2)`` rows of the known partnerships. A group is
    rare at home when its places have at least :data:`HOME_MIN_ENDS` partnerships and under
    :data:`RARE_HOME_SHARE` of them are with a place of the same group: French, Polish, British, US, Chinese or
    Russian towns twin abroad (under 4 % at home in the towns network), German, Italian, Spanish or Japanese ones
    also at home (20-33 %). The served list gives a rare-at-home group's places no home suggestions
    (:func:`home_caps`): in held-out partnerships they were never right (docs/evaluation.md)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    groups = np.asarray(groups, np.int64)
    ga, gb = groups[pairs[:, 0]], groups[pairs[:, 1]]
    home = ga == gb
    ends = np.bincount(np.concatenate([ga, gb]), minlength=n_groups)
    at_home = 2 * np.bincount(ga[home], minlength=n_groups)
    return rare_at_home(ends, at_home)


def rare_at_home(ends: np.ndarray | int, at_home: np.ndarray | int) -> np.ndarray:
    """The rule of :func:`rare_home_groups` from the counts: ``ends`` partnership ends of a group's places, ``at_home``
    of them with a place of the same group (a home partnership counts twice, once per end)."""
    ends, at_home = np.asarray(ends), np.asarray(at_home)
    return (ends >= HOME_MIN_ENDS) & (at_home < RARE_HOME_SHARE * ends)


def home_caps(home: Hashable, rare_home: bool) -> dict[Hashable, int] | None:
    """The ``group_caps`` of :func:`pick_diverse` for a source of group ``home``: none of its own group when that
    group is rare at home (:func:`rare_home_groups`), else the usual cap."""
    return {home: 0} if rare_home else None


def spread_codes(population: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(n, 2)`` int sub-groups for :func:`pick_diverse` inside the preferred countries: the size band (half a
    decade of population: 10k-32k, 32k-100k, ...) and the area (a 10° x 10° cell of latitude and longitude)."""
    band = np.floor(2.0 * np.log10(np.maximum(np.asarray(population, float), 1.0))).astype(np.int64)
    cell = np.floor((np.asarray(lat, float) + 90.0) / 10.0).astype(np.int64) * 100
    cell += np.floor((np.asarray(lon, float) + 180.0) / 10.0).astype(np.int64)
    return np.stack([band, cell], axis=1)


def top_k_rows(
    s: np.ndarray,
    k: int,
    sample: int = 2048,
    skip_cols: np.ndarray | None = None,
    skip_cells: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Column indices of the ``k`` largest values of every row of ``s`` (unordered), ``(m, k)``.

    The same set as ``np.argpartition(s, n - k, axis=1)[:, n - k:]`` (up to ties), but for ``k`` ≪ ``n`` much
    cheaper: a per-row threshold is guessed from a strided sample of the columns (aiming at ~4k survivors), one
    comparison pass keeps the values at or above it, and only those survivors are partially sorted. Rows where
    fewer than ``k`` values pass fall back to ``argpartition``. NaN counts as the lowest value; ``skip_cols``
    (for every row) and ``skip_cells`` (``(rows, cols)``) count as -inf without copying ``s``.
    """
    s = np.asarray(s)
    m, n = s.shape
    k = min(int(k), n)
    if k <= 0:
        return np.zeros((m, 0), np.int64)

    def masked(rows: np.ndarray) -> np.ndarray:
        sub = np.nan_to_num(s[rows], nan=-np.inf)
        if skip_cols is not None:
            sub[:, skip_cols] = -np.inf
        if skip_cells is not None:
            where = np.full(m, -1, np.int64)
            where[rows] = np.arange(len(rows))
            hit = where[skip_cells[0]] >= 0
            sub[where[skip_cells[0][hit]], skip_cells[1][hit]] = -np.inf
        return sub

    if n <= 4 * sample or 16 * k > n:
        return np.argpartition(masked(np.arange(m)), n - k, axis=1)[:, n - k :].astype(np.int64)
    step = n // sample
    probe = np.nan_to_num(s[:, ::step], nan=-np.inf)
    if skip_cols is not None:
        skipped = np.zeros(n, bool)
        skipped[skip_cols] = True
        probe[:, skipped[::step]] = -np.inf
    want = min(probe.shape[1] - 1, int(np.ceil(4.0 * k * probe.shape[1] / n)) + 1)
    thr = -np.partition(-probe, want, axis=1)[:, want]
    keep = s >= thr[:, None]
    if skip_cols is not None:
        keep[:, skip_cols] = False
    if skip_cells is not None:
        keep[skip_cells[0], skip_cells[1]] = False
    counts = np.count_nonzero(keep, axis=1)
    out = np.empty((m, k), np.int64)
    ok = counts >= k
    if ok.any():
        okr = np.flatnonzero(ok)
        flat = np.flatnonzero(keep[okr] if len(okr) < m else keep)  # row-major: grouped by row
        rows, cols = np.divmod(flat, n)
        cnt = counts[okr]
        width = int(cnt.max())
        pos = np.arange(len(flat)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        comp = np.full((len(okr), width), -np.inf, np.float64)
        comp[rows, pos] = s[okr[rows], cols]
        idx = np.zeros((len(okr), width), np.int64)
        idx[rows, pos] = cols
        part = np.argpartition(comp, width - k, axis=1)[:, width - k :]
        out[okr] = np.take_along_axis(idx, part, axis=1)
    bad = np.flatnonzero(~ok)
    if bad.size:
        out[bad] = np.argpartition(masked(bad), n - k, axis=1)[:, n - k :]
    return out
