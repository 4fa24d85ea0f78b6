"""Evaluation harness for partnership link prediction.

Protocol (see docs/evaluation.md):

* every ranker is fitted on TRAIN only;
* each TEST pair ``(a, b)`` whose two cities are in the gazetteer gives two
  queries, ``a -> b`` and ``b -> a``;
* for a query ``a -> b`` every gazetteer city is a candidate except ``a`` itself
  and ``a``'s TRAIN partners;
* ``rank(b) = 1 + #{candidates scored strictly higher than b}
  + #{other candidates scored exactly equal to b}`` (ties are broken against b);
* per ranker we report ``hit@k`` (share of queries with ``rank <= k``), the
  MRR (mean of ``1 / rank``), the median rank and the number of queries.

A query whose target is already a TRAIN partner of its source (the pair is in
both tables) has no defined rank and is skipped; ``skipped`` counts them.
Scoring is vectorised: each ranker scores a batch of sources against all
cities at once and ranks are computed with matrix comparisons.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from matcher.baselines import (
    AdamicAdarRanker,
    CountryAffinityRanker,
    NearestRanker,
    PopularityRanker,
    PopulationRanker,
    RandomRanker,
    Ranker,
)
from matcher.graph import CityIndex, adjacency, pair_positions

__all__ = ["Ranker", "build_queries", "default_rankers", "evaluate", "format_table", "ranks_for"]


def default_rankers(random_state: int = 0) -> dict[str, Ranker]:
    """The learned ``twinning`` model plus the six baselines, unfitted."""
    from matcher.likelihood import PartnershipLikelihood

    return {
        "twinning": PartnershipLikelihood(random_state=random_state),
        "random": RandomRanker(random_state=random_state),
        "population": PopulationRanker(),
        "popularity": PopularityRanker(),
        "nearest": NearestRanker(),
        "adamic_adar": AdamicAdarRanker(),
        "country_affinity": CountryAffinityRanker(),
    }


def build_queries(index: CityIndex, train_edges: np.ndarray, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Directed ``(source, target)`` gazetteer positions for the TEST pairs.

    Returns ``(sources, targets, skipped)``. Pairs with a city outside the
    gazetteer or a self-pair are dropped; queries whose target is a TRAIN
    partner of the source are dropped and counted in ``skipped``.
    """
    a = index.positions(test["geonameid_a"].to_numpy(), strict=False)
    b = index.positions(test["geonameid_b"].to_numpy(), strict=False)
    ok = (a >= 0) & (b >= 0) & (a != b)
    a, b = a[ok], b[ok]
    src = np.concatenate([a, b])
    tgt = np.concatenate([b, a])
    if len(src) == 0:
        return src, tgt, 0
    adj = adjacency(index.n, train_edges)
    known = np.asarray(adj[src, tgt]).ravel() > 0
    return src[~known], tgt[~known], int(known.sum())


def ranks_for(scores: np.ndarray, sources: np.ndarray, targets: np.ndarray, excluded: list[np.ndarray]) -> np.ndarray:
    """Protocol ranks of ``targets`` given a ``(m, n)`` score matrix.

    ``excluded[i]`` are the candidate positions removed for query ``i`` (TRAIN
    partners); the source itself is always removed. Non-finite scores count as
    the lowest possible score.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    s[~np.isfinite(s)] = -np.inf
    m = len(sources)
    rows = np.repeat(np.arange(m), [len(e) for e in excluded])
    cols = np.concatenate(excluded) if excluded else np.zeros(0, dtype=np.int64)
    s[rows, cols.astype(np.int64)] = np.nan  # NaN compares False: drops the candidate
    s[np.arange(m), sources] = np.nan
    t = s[np.arange(m), targets][:, None]
    higher = (s > t).sum(axis=1)
    equal = (s == t).sum(axis=1) - 1  # minus the target itself
    return (1 + higher + equal).astype(np.int64)


def _summary(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = float(np.mean(ranks <= k)) if len(ranks) else float("nan")
    out["mrr"] = float(np.mean(1.0 / ranks)) if len(ranks) else float("nan")
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["queries"] = int(len(ranks))
    return out


def evaluate(
    cities: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    ks: tuple[int, ...] = (10, 50),
    rankers: Mapping[str, Ranker] | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 256,
    return_ranks: bool = False,
) -> dict:
    """Fit every ranker on ``train`` and rank the ``test`` pairs (both directions).

    Returns ``{"queries": N, "skipped": S, "rankers": {name: {"hit@k": ...,
    "mrr": ..., "median_rank": ..., "queries": N, "fit_seconds": ...,
    "score_seconds": ...}}}``; with ``return_ranks`` also ``"sources"``,
    ``"targets"`` (gazetteer geonameids) and a ``"ranks"`` array per ranker.
    ``progress(done, total)`` is called after every batch, where ``total`` is
    the number of queries times the number of rankers.
    """
    ks = tuple(int(k) for k in ks)
    if rankers is None:
        rankers = default_rankers()
    index = CityIndex.from_frame(cities)
    train_edges = pair_positions(index, train)
    src, tgt, skipped = build_queries(index, train_edges, test)
    adj = adjacency(index.n, train_edges)
    excluded_all = [adj.indices[adj.indptr[r] : adj.indptr[r + 1]] for r in src]
    src_ids = index.geonameids[src]
    total = len(src) * len(rankers)
    done = 0
    result: dict = {"queries": int(len(src)), "skipped": skipped, "rankers": {}}
    if return_ranks:
        result["sources"] = src_ids
        result["targets"] = index.geonameids[tgt]
    for name, ranker in rankers.items():
        t0 = time.perf_counter()
        ranker.fit(cities, train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ranks = np.zeros(len(src), dtype=np.int64)
        for start in range(0, len(src), batch_size):
            sl = slice(start, start + batch_size)
            scores = np.asarray(ranker.score_sources(src_ids[sl].tolist()))
            if scores.shape != (len(src_ids[sl]), index.n):
                raise ValueError(f"{name}: score_sources returned shape {scores.shape}")
            ranks[sl] = ranks_for(scores, src[sl], tgt[sl], excluded_all[sl])
            done += len(src_ids[sl])
            if progress is not None:
                progress(done, total)
        summary: dict[str, Any] = dict(_summary(ranks, ks))
        summary["fit_seconds"] = fit_s
        summary["score_seconds"] = time.perf_counter() - t0
        if return_ranks:
            summary["ranks"] = ranks
        result["rankers"][name] = summary
    return result


def format_table(result: dict) -> str:
    """Readable fixed-width table, one row per ranker (metrics as columns)."""
    rankers: dict = result["rankers"]
    if not rankers:
        return "(no rankers)"
    first = next(iter(rankers.values()))
    metrics = [k for k in first if k.startswith("hit@")] + ["mrr", "median_rank"]
    header = f"{'ranker':<18}" + "".join(f"{m:>13}" for m in metrics)
    lines = [f"queries: {result.get('queries', '?')}", header, "-" * len(header)]
    for name, vals in rankers.items():
        cells = []
        for m in metrics:
            v = vals.get(m, float("nan"))
            cells.append(f"{v:>13.1f}" if m == "median_rank" else f"{v:>13.4f}")
        lines.append(f"{name:<18}" + "".join(cells))
    return "\n".join(lines)
