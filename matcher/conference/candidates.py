"""Candidate meetings, built with numpy index arithmetic (no Python loop over pairs x slots).

A *pair* is an unordered pair ``a < b`` worth meeting; an *option* is one way to hold it: a slot both attend, plus
either no interpreter (they share a language) or one interpreter language that bridges them. Options are the columns
of the MILP and what greedy picks from.

Pruning, in order: no ``no_thanks`` from either side; a wish from some side or a matcher score of at least
``Weights.min_score_unwished``; positive value; at least one feasible option. Then, with ``top_k``, a pair survives
only if it is among the ``top_k`` most valuable pairs of one of its two delegations. Mutual must-meets and pairs the
caller pins (``keep``) are never pruned by value or rank.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .model import MUST_MEET, NO_THANKS, WOULD_LIKE, Instance, Weights


@dataclass(frozen=True)
class Candidates:
    a: np.ndarray  # (P,) lower delegation index
    b: np.ndarray  # (P,) higher delegation index
    value: np.ndarray  # (P,) meeting value
    must: np.ndarray  # (P,) mutual must-meet
    opt_pair: np.ndarray  # (C,) option -> pair index, sorted by (pair, slot, lang)
    opt_slot: np.ndarray  # (C,)
    opt_lang: np.ndarray  # (C,) -1 = shared language, else index into ``langs``
    langs: tuple[str, ...]  # interpreter languages, in ``Instance.interpreters`` order
    capacity: np.ndarray  # (len(langs), S) interpreters on duty

    @property
    def n_pairs(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_options(self) -> int:
        return int(self.opt_pair.shape[0])

    def pair_index(self) -> dict[tuple[int, int], int]:
        return {(int(x), int(y)): p for p, (x, y) in enumerate(zip(self.a, self.b, strict=True))}

    def option_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per pair, ``[start, stop)`` of its options (options are sorted by pair)."""
        p = np.arange(self.n_pairs)
        return np.searchsorted(self.opt_pair, p, "left"), np.searchsorted(self.opt_pair, p, "right")


def language_matrix(instance: Instance) -> tuple[np.ndarray, dict[str, int]]:
    """(D, L) bool: delegation speaks language; plus the language -> column map."""
    codes = sorted({c for langs in instance.languages for c in langs} | set(instance.interpreters) | {instance.pivot})
    col = {c: k for k, c in enumerate(codes)}
    mat = np.zeros((instance.n_delegations, len(codes)), bool)
    for d, langs in enumerate(instance.languages):
        mat[d, [col[c] for c in langs]] = True
    return mat, col


def pair_values(instance: Instance, a: np.ndarray, b: np.ndarray, weights: Weights) -> tuple[np.ndarray, np.ndarray]:
    """Value and mutual-must flag of pairs ``(a, b)``."""
    wab, wba = instance.wishes[a, b], instance.wishes[b, a]
    likes = (wab == WOULD_LIKE).astype(np.int64) + (wba == WOULD_LIKE)
    musts = (wab == MUST_MEET).astype(np.int64) + (wba == MUST_MEET)
    value = weights.score * instance.scores[a, b] + weights.would_like * likes + weights.one_sided_must * musts
    return value, musts == 2


def pair_options(
    instance: Instance, a: np.ndarray, b: np.ndarray, langs: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All options of pairs ``(a, b)``: (pair position, slot, lang index or -1), sorted."""
    lmat, col = language_matrix(instance)
    common = (lmat[a] & lmat[b]).any(axis=1)
    both = instance.available[a] & instance.available[b] & (instance.tables > 0)[None, :]
    pos, slot = np.nonzero(both & common[:, None])
    parts = [(pos, slot, np.full(pos.shape, -1))]
    piv = col[instance.pivot]
    for k, lang in enumerate(langs):
        if lang == instance.pivot:
            continue
        c = col[lang]
        bridge = ~common & ((lmat[a, c] & lmat[b, piv]) | (lmat[b, c] & lmat[a, piv]))
        p, s = np.nonzero(both & bridge[:, None] & (instance.interpreters[lang] > 0)[None, :])
        parts.append((p, s, np.full(p.shape, k)))
    pos, slot, lang_ix = (np.concatenate(x).astype(np.int64) for x in zip(*parts, strict=True))
    order = np.lexsort((lang_ix, slot, pos))
    return pos[order], slot[order], lang_ix[order]


def build(
    instance: Instance,
    weights: Weights | None = None,
    top_k: int | None = None,
    keep: Iterable[tuple[int, int]] = (),
) -> Candidates:
    weights = weights or Weights()
    n = instance.n_delegations
    a, b = np.triu_indices(n, 1)
    value, must = pair_values(instance, a, b, weights)
    wab, wba = instance.wishes[a, b], instance.wishes[b, a]
    pinned = np.zeros(a.shape, bool)
    keep_idx = [(min(x, y), max(x, y)) for x, y in keep]
    if keep_idx:
        lo, hi = np.array(keep_idx, np.int64).T
        # position of (lo, hi) in the row-major upper triangle
        pinned[lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)] = True
    wished = (wab > 0) | (wba > 0)
    ok = (wab != NO_THANKS) & (wba != NO_THANKS)
    ok &= must | pinned | ((wished | (instance.scores[a, b] >= weights.min_score_unwished)) & (value > 0))
    ok &= (instance.available[a] & instance.available[b]).any(axis=1)
    a, b, value, must, pinned = a[ok], b[ok], value[ok], must[ok], pinned[ok]

    langs = tuple(instance.interpreters)
    pos, slot, lang_ix = pair_options(instance, a, b, langs)
    has = np.zeros(a.shape, bool)
    has[pos] = True
    if top_k is not None:
        has &= must | pinned | _in_top_k(a, b, value, top_k)
    # keep only pairs with options, and renumber the options' pairs
    new_ix = np.cumsum(has) - 1
    sel = has[pos]
    capacity = np.array([instance.interpreters[x] for x in langs], np.int64).reshape(len(langs), instance.n_slots)
    return Candidates(
        a=a[has],
        b=b[has],
        value=value[has],
        must=must[has],
        opt_pair=new_ix[pos[sel]],
        opt_slot=slot[sel],
        opt_lang=lang_ix[sel],
        langs=langs,
        capacity=capacity,
    )


def _in_top_k(a: np.ndarray, b: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Pairs among the ``k`` most valuable of at least one of their delegations (ties: lower pair index)."""
    ends = np.concatenate([a, b])
    pair = np.concatenate([np.arange(a.shape[0])] * 2)
    vals = np.concatenate([value, value])
    order = np.lexsort((pair, -vals, ends))
    ends_sorted = ends[order]
    rank = np.arange(order.shape[0]) - np.searchsorted(ends_sorted, ends_sorted, "left")
    out = np.zeros(a.shape, bool)
    out[pair[order][rank < k]] = True
    return out
