"""The inner folds of the likelihood's training: each fold's features come from the other folds' edges, its own
edges are the held-out positives; the (fold, source) queries that build the training sets are drawn here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np
import scipy.sparse as sp

from .pair_features import Featurizer
from .sources import Sources

T = TypeVar("T")


class InnerFold(NamedTuple):
    """Features on the graph without one edge fold (``fz``), the held-out edges and their endpoints."""

    fz: Featurizer
    held: sp.csr_matrix
    sources: np.ndarray


def sample_queries(
    folds: list[InnerFold],
    rng: np.random.Generator,
    limit: int | None,
    exclude: list[np.ndarray] | None = None,
    weight: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Per fold, its sources; with ``limit``, a sample of at most that many (fold, source) in all, drawn from
    those not in ``exclude`` (per fold), uniformly or with probabilities proportional to ``weight[source]``."""
    keep = [f.sources for f in folds]
    if exclude is not None:
        keep = [k[~np.isin(k, e)] for k, e in zip(keep, exclude, strict=True)]
    total = sum(len(k) for k in keep)
    if limit is not None and total > limit:
        chosen = np.zeros(total, bool)
        prob = None
        if weight is not None and total:
            w = weight[np.concatenate(keep)]
            prob = w / w.sum()
        chosen[rng.choice(total, int(limit), replace=False, p=prob)] = True
        bounds = np.cumsum([0] + [len(k) for k in keep])
        keep = [k[chosen[bounds[i] : bounds[i + 1]]] for i, k in enumerate(keep)]
    return keep


def inner_batches(
    folds: list[InnerFold], batch_size: int, keep: list[np.ndarray] | None = None
) -> Iterator[tuple[InnerFold, np.ndarray, Sources]]:
    """Batches of (fold, source rows): every fold's sources, or those in ``keep`` (per fold)."""
    for fold, sources in zip(folds, keep if keep is not None else [f.sources for f in folds], strict=True):
        for start in range(0, len(sources), batch_size):
            rows = sources[start : start + batch_size]
            yield fold, rows, fold.fz.sources(rows)
        fold.fz.release()  # this fold's cached tables are not needed again


def available_threads(n_jobs: int | None) -> int:
    """Threads for ``n_jobs`` as scikit-learn reads it: ``None`` one, ``-1`` one per CPU this process may use,
    ``-2`` all but one, and so on."""
    if n_jobs is None:
        return 1
    if n_jobs > 0:
        return int(n_jobs)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus + 1 + int(n_jobs))


def map_folds(
    fn: Callable[[InnerFold, np.ndarray, Sources, np.random.Generator], T],
    folds: list[InnerFold],
    batch_size: int,
    rng: np.random.Generator,
    keep: list[np.ndarray] | None = None,
    threads: int = 1,
) -> Iterator[T]:
    """``fn(fold, rows, sources, fold_rng)`` over the batches of :func:`inner_batches`, in that order.

    The folds are spread over ``threads`` threads, each fold's batches in order in one thread, so that no
    featurizer's caches are shared between threads (NumPy, SciPy and the k-d tree release the GIL in their loops).
    Each fold draws from its own generator, spawned from ``rng``: the results are the same whatever ``threads``.
    """
    keep = keep if keep is not None else [f.sources for f in folds]
    rngs = rng.spawn(len(folds))

    def one(i: int) -> list[T]:
        return [
            fn(fold, rows, src, rngs[i])
            for fold, rows, src in inner_batches(folds[i : i + 1], batch_size, keep[i : i + 1])
        ]

    if threads <= 1 or len(folds) <= 1:
        for i in range(len(folds)):
            yield from one(i)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(folds)), thread_name_prefix="twinning-fold") as pool:
        for results in pool.map(one, range(len(folds))):
            yield from results
