"""The stage-1 shortlist that stage 2 re-ranks (:func:`shortlist`), and its quotas: slots that stage 1's order
alone would not fill.

* :func:`top_columns` / :func:`masked_take`: the best columns of a score matrix among some columns, with cells
  excluded (the cold quota: rarely-twinned cities);
* :func:`sparse_quota`: the cities with the most shared partners (Adamic–Adar) that stage 1 left out, and those
  whose area twins most with the source's (:func:`area_ties`);
* :func:`size_quota`: the best cities of the size prior (:func:`~matcher.transfer_features.size_prior_order`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .pair_features import Featurizer
from .place_features import neighbourhood_ties
from .rank import top_k_rows
from .sources import Sources
from .transfer_features import size_prior_order


class Quotas(NamedTuple):
    """The shortlist's parts: the ``k`` best cities by stage-1 score, ``graph`` slots for the best by shared
    partners, ``cold`` slots for the best cities with at most ``cold_max_degree`` partners."""

    k: int
    graph: int
    cold: int
    cold_max_degree: int
    area: int = 0


def shortlist(
    fz: Featurizer, src: Sources, s: np.ndarray, excluded: tuple[np.ndarray, np.ndarray], q: Quotas, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage-1 shortlist per source from the stage-1 scores ``s`` of every city, the ``excluded`` (row, column)
    cells left out (:func:`excluded_cells`).

    The ``q.k`` best cities by stage-1 score, the graph and area quotas (:func:`sparse_quota`), plus the ``q.cold``
    best cities among those with at most ``q.cold_max_degree`` partners: the linear score is dominated by candidate
    degree, so without this reserved quota rarely-twinned partners would never reach the re-ranker; then ``size``
    slots of the size prior (:func:`size_quota`).

    Returns ``(top, score, rank)``, each ``(m, shortlist length)``, sorted by stage-1 score; ``rank`` is the 0-based
    position in that order.
    """
    ex_rows, ex_cols = excluded
    k0 = q.k
    g = int(max(0, min(q.graph, s.shape[1] - k0 - 1)))
    a = int(max(0, min(q.area, s.shape[1] - k0 - g - 1)))
    k = k0 + g + a  # the graph and area quotas' filler: the next g + a cities by stage-1 score
    cold = q.cold
    low = fz.stats.degree <= q.cold_max_degree
    if cold > 0:
        cold = min(cold, int(low.sum()) - k - 1)
    if cold > 0:
        # the best k overall are among the best k of the well-linked and the best k + cold of the others; the
        # cold quota is the best `cold` of the others that did not make the top k (one partial selection each)
        lo_cols, hi_cols = fz.column_split(q.cold_max_degree)
        cand = np.concatenate(
            [
                top_columns(s, hi_cols, k, ex_rows, ex_cols),
                top_columns(s, lo_cols, k + cold, ex_rows, ex_cols, other=hi_cols),
            ],
            axis=1,
        )
        cs = masked_take(s, cand, ex_rows, ex_cols)
        order = np.argsort(-cs, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        pos = np.broadcast_to(np.arange(cand.shape[1]), cand.shape)
        key = np.where(low[cand] & (pos >= k), pos, cand.shape[1] + pos)
        pick = np.argsort(key, axis=1, kind="stable")[:, :cold]
        top = np.concatenate([cand[:, :k], np.take_along_axis(cand, pick, axis=1)], axis=1)
    else:
        top = top_k_rows(s, k, skip_cells=(ex_rows, ex_cols))
    ex_keys = ex_rows * s.shape[1] + ex_cols
    if a > 0:  # filler positions k0+g .. k (the graph quota's stay stage-1 cities until it runs)
        top = sparse_quota(s, top, k0 + g, a, ex_keys, area_ties(fz, src))
    if g > 0:
        top = sparse_quota(s, top, k0, g, ex_keys, sp.csr_matrix(src.adj @ fz.stats.aa_adj.T))
    if size > 0:
        top = size_quota(fz, src, top, size, ex_keys)
    ts = np.take_along_axis(s, top, axis=1).astype(np.float64)
    order = np.argsort(-ts, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    ts = np.take_along_axis(ts, order, axis=1)
    rank = np.broadcast_to(np.arange(top.shape[1], dtype=float), top.shape)
    return top, ts, np.array(rank)


def excluded_cells(src: Sources) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column) cells no source may be offered: itself (a gazetteer row) and its partners."""
    coo = src.adj.tocoo()
    real = np.flatnonzero(src.rows >= 0)
    return (
        np.concatenate([coo.row, real]).astype(np.int64),
        np.concatenate([coo.col, src.rows[real]]).astype(np.int64),
    )


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


def area_ties(fz: Featurizer, src: Sources) -> sp.csr_matrix:
    """``(m, n)``: the partnerships between the places around each source and those around every city (the
    stage-1 feature's matrix, :func:`~matcher.place_features.neighbourhood_ties`, computed once per batch)."""
    return neighbourhood_ties(fz.batch(src))


def sparse_quota(
    s: np.ndarray, top: np.ndarray, k0: int, g: int, ex_keys: np.ndarray, scores: sp.csr_matrix
) -> np.ndarray:
    """Replace the filler slots ``k0 .. k0+g`` of ``top`` (the next cities by stage-1 score ``s``) by the cities
    with the highest ``scores`` (a sparse ``(m, n)`` matrix: shared partners, the areas' ties) that are not yet
    shortlisted (then the filler, in stage-1 order). The slots after ``k0+g`` (other quotas) are kept."""
    m, n = s.shape
    best, cold = top[:, : k0 + g], top[:, k0 + g :]  # the stage-1 best, then the other quotas (if any)
    order = np.argsort(-np.take_along_axis(s, best, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)  # stage-1 order: filler = positions k0 .. k0+g
    fill = best[:, k0:]
    base = np.concatenate([best[:, :k0], cold], axis=1)
    aa = sp.csr_matrix(scores)
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
