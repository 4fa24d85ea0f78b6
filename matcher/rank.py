"""Top-k selection over score vectors, with optional diversity by group (country)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np


def top_k(
    scores: np.ndarray,
    k: int,
    mask: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    max_group_share: float = 1 / 3,
) -> np.ndarray:
    """Indices of the ``k`` best-scoring allowed candidates, best first; ties go to the lower index.

    With ``groups``, at most ``max(1, floor(k * max_group_share))`` of the k come from one group, as long as other
    groups have candidates left; the cap is lifted only to fill k when no other group can.
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
    head = head[np.lexsort((allowed[head], -sub[head]))]
    ordered = allowed[head]
    if groups is None:
        return ordered[:k]
    chosen = [int(ordered[p]) for p in pick_diverse(groups[ordered].tolist(), k, max_group_share)]
    if len(chosen) < k and m < allowed.size:  # the head ran out: fill by score from the rest
        rest = np.setdiff1d(allowed, ordered, assume_unique=True)
        rest = rest[np.lexsort((rest, -scores[rest]))]
        chosen.extend(int(i) for i in rest[: k - len(chosen)])
    chosen.sort(key=lambda i: (-scores[i], i))
    return np.asarray(chosen, np.int64)


def pick_diverse(groups: Sequence[Hashable], k: int, max_group_share: float = 1 / 3) -> list[int]:
    """Positions (in rank order) of the first ``k`` items of a ranked list, at most
    ``max(1, floor(k * max_group_share))`` per group; when too few groups remain, the best skipped items fill k."""
    cap = max(1, math.floor(k * max_group_share))
    counts: dict[Hashable, int] = {}
    chosen: list[int] = []
    skipped: list[int] = []
    for pos, g in enumerate(groups):
        if counts.get(g, 0) < cap:
            chosen.append(pos)
            counts[g] = counts.get(g, 0) + 1
            if len(chosen) == k:
                break
        else:
            skipped.append(pos)
    if len(chosen) < k:
        chosen = sorted(chosen + skipped[: k - len(chosen)])
    return chosen
