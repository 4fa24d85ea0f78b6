"""The shortlist's quotas: slots that stage 1's order alone would not fill (see
:meth:`matcher.likelihood.PartnershipLikelihood._shortlist`).

* :func:`top_columns` / :func:`masked_take`: the best columns of a score matrix among some columns, with cells
  excluded (the cold quota: rarely-twinned cities);
* :func:`graph_quota`: the cities with the most shared partners (Adamic–Adar) that stage 1 left out;
* :func:`size_quota`: the best cities of the size prior (:func:`~matcher.transfer_features.size_prior_order`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .pair_features import Featurizer
from .rank import top_k_rows
from .sources import Sources
from .transfer_features import size_prior_order


def size_quota(fz: Featurizer, src: Sources, top: np.ndarray, q: int, ex_keys: np.ndarray) -> np.ndarray:
    """Append to each row of ``top`` the ``q`` best cities by the source country's size prior
    (:func:`~matcher.transfer_features.size_prior_order`) that are neither shortlisted nor excluded."""
    m, n = top.shape[0], fz.index.n
    length = min(n, q + top.shape[1] + 64)
    cand = np.stack([size_prior_order(fz, int(c), length) for c in src.country]).astype(np.int64)
    rowk = np.arange(m, dtype=np.int64)[:, None] * n
    taken = np.concatenate([ex_keys, (rowk + top).ravel()])
    ok = ~np.isin(rowk + cand, taken)
    pick = np.argsort(~ok, axis=1, kind="stable")[:, :q]
    extra = np.take_along_axis(cand, pick, axis=1)
    valid = np.take_along_axis(ok, pick, axis=1)
    # a row short of valid cities (a tiny gazetteer) repeats its first shortlisted city: scored twice, same score
    extra = np.where(valid, extra, top[:, :1])
    return np.concatenate([top, extra], axis=1)


def top_columns(
    s: np.ndarray, cols: np.ndarray, k: int, ex_rows: np.ndarray, ex_cols: np.ndarray, other: np.ndarray | None = None
) -> np.ndarray:
    """Per row of ``s``, the (unordered) ``k`` best of the columns ``cols`` (``other`` = the remaining columns,
    if ``cols`` is most of them: they are skipped in place instead of gathering ``cols``); excluded (row, column)
    cells rank last."""
    if other is not None:
        return top_k_rows(s, min(k, len(cols)), skip_cols=other, skip_cells=(ex_rows, ex_cols))
    where = np.full(s.shape[1], -1, np.int64)
    where[cols] = np.arange(len(cols))
    hit = where[ex_cols] >= 0
    sub = s[:, cols]
    k = min(k, sub.shape[1])
    if k <= 0:
        return np.zeros((s.shape[0], 0), np.int64)
    return np.asarray(cols, np.int64)[top_k_rows(sub, k, skip_cells=(ex_rows[hit], where[ex_cols[hit]]))]


def masked_take(s: np.ndarray, cols: np.ndarray, ex_rows: np.ndarray, ex_cols: np.ndarray) -> np.ndarray:
    """``s`` at ``cols`` (per row), with excluded (row, column) cells at -inf."""
    out = np.take_along_axis(s, cols, axis=1).astype(np.float64)
    if len(ex_rows):
        n = s.shape[1]
        bad = np.isin(np.arange(len(cols))[:, None] * n + cols, ex_rows * n + ex_cols)
        out[bad] = -np.inf
    return out


def graph_quota(
    fz: Featurizer, src: Sources, s: np.ndarray, top: np.ndarray, k0: int, g: int, ex_keys: np.ndarray
) -> np.ndarray:
    """Replace the filler slots ``k0 .. k0+g`` of ``top`` (the next cities by stage-1 score) by the cities with
    the highest Adamic-Adar score that are not yet shortlisted (then the filler, in stage-1 order)."""
    m, n = s.shape
    best, cold = top[:, : k0 + g], top[:, k0 + g :]  # the stage-1 best, then the cold quota (if any)
    order = np.argsort(-np.take_along_axis(s, best, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)  # stage-1 order: filler = positions k0 .. k0+g
    fill = best[:, k0:]
    base = np.concatenate([best[:, :k0], cold], axis=1)
    aa = sp.csr_matrix(src.adj @ fz.stats.aa_adj.T)
    rows = np.repeat(np.arange(m), np.diff(aa.indptr)).astype(np.int64)
    cols, vals = aa.indices.astype(np.int64), aa.data
    keys = rows * n + cols
    ok = ~np.isin(keys, ex_keys) & ~np.isin(keys, (np.arange(m)[:, None] * n + base).ravel())
    rows, cols, vals = rows[ok], cols[ok], vals[ok]
    o = np.lexsort((-s[rows, cols], -vals, rows))
    rows, cols = rows[o], cols[o]
    start = np.searchsorted(rows, np.arange(m))
    pos = np.arange(len(rows)) - start[rows]
    keep = pos < g
    graph = np.full((m, g), -1, np.int64)
    graph[rows[keep], pos[keep]] = cols[keep]
    dup = np.isin(np.arange(m)[:, None] * n + fill, (np.arange(m)[:, None] * n + graph)[graph >= 0])
    extra = np.concatenate([graph, fill], axis=1)
    valid = np.concatenate([graph >= 0, ~dup], axis=1)
    pick = np.argsort(~valid, axis=1, kind="stable")[:, :g]
    return np.concatenate([base, np.take_along_axis(extra, pick, axis=1)], axis=1)


# -------------------------------------------------------------- scoring
