"""The inner folds of the likelihood's training: each fold's features come from the other folds' edges, its own
edges are the held-out positives; the (fold, source) queries that build the training sets are drawn here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .pair_features import Featurizer
from .sources import Sources


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
