"""What a place is and where it lies, as stage-1 features: namesakes, neighbours and the ties of its area.

Small towns are where the partnership graph says least (most have one partner or none), and where the
towns network's partnerships follow their own patterns (measured on its 13,594 pairs):

* **namesakes** — Boston GB and Boston US, Mérida ES and MX, Valencia ES and VE — and places that share a
  distinctive word of their name (Neu-Ulm and New Ulm, Lucca and Lucca Sicula): 117 pairs (:mod:`matcher.names`);
* **neighbours across a border** — Görlitz and Zgorzelec, Strasbourg and Kehl: 409 pairs of two countries less
  than 100 km apart (181 less than 50 km), and 170 pairs of one country (:class:`matcher.geo.NearIndex`);
* **areas that twin** — the towns of one district twin with the towns of another, so a partnership between the
  places around the source (within :data:`matcher.geo.AREA_KM`) and the places around the candidate counts:
  13 % of the pairs (20 % of those with a place under 15,000 people) have one besides their own, against 1 % of
  random candidates.

Names and coordinates are a place's own attributes, so the first two carry over to places and country pairs
without known partnerships. Each feature is a sparse ``(m, n)`` matrix per batch of sources (a k-d tree query, a
slice or a sparse product, never a scan over all pairs), registered by name with :func:`place_stage1` and cached
on the batch, so the pairwise form and the matrix form read the same matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import scipy.sparse as sp

from .geo import AREA_KM

if TYPE_CHECKING:  # pragma: no cover
    from .pair_features import Pairs
    from .sources import Batch

F = TypeVar("F")


def place_stage1(feature: Callable[..., F]) -> tuple[F, ...]:
    """The place features, built with :class:`matcher.pair_features.Stage1Feature` (``feature``)."""
    return (
        feature("same_name", pair=_pairs(same_name), source=same_name),
        feature("shared_name_words", pair=_pairs(shared_name_words), source=shared_name_words),
        feature("near_foreign", pair=_pairs(near_foreign), source=near_foreign),
        feature("near_domestic", pair=_pairs(near_domestic), source=near_domestic),
        feature(
            "log_neighbourhood_ties",
            pair=lambda p: np.log1p(p.lookup(neighbourhood_ties(p.b))),
            source=lambda b: neighbourhood_ties(b).log1p(),
        ),
    )


def _pairs(matrix: Callable[[Batch], sp.csr_matrix]) -> Callable[[Pairs], np.ndarray]:
    return lambda p: p.lookup(matrix(p.b))


def _cached(b: Batch, key: str, build: Callable[[], sp.csr_matrix]) -> sp.csr_matrix:
    """One matrix per batch and key: the pairwise and the matrix forms (and both near features) share it."""
    cache: dict[str, sp.csr_matrix] = b.__dict__.setdefault("_place_features", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def same_name(b: Batch) -> sp.csr_matrix:
    """``(m, n)``: 1 where the candidate is the source's namesake (none for a virtual source)."""
    return _cached(b, "same_name", lambda: b.index.name_index().same_name(b.src.rows))


def shared_name_words(b: Batch) -> sp.csr_matrix:
    """``(m, n)``: inverse frequency of the distinctive name words the two places share."""
    return _cached(b, "shared_name_words", lambda: b.index.name_index().shared_words(b.src.rows))


def _near(b: Batch, domestic: bool) -> sp.csr_matrix:
    near = _cached(b, "closeness", lambda: b.index.near_index().closeness(b.src.lat, b.src.lon))
    rows = np.repeat(np.arange(near.shape[0]), np.diff(near.indptr))
    same = b.index.country[near.indices] == b.src.country[rows]
    keep = same if domestic else ~same
    # copies: eliminate_zeros works in place, and the cached closeness must keep its own index arrays
    data = np.where(keep, near.data, 0).astype(np.float32)
    out = sp.csr_matrix((data, near.indices.copy(), near.indptr.copy()), near.shape)
    out.eliminate_zeros()
    return out


def near_foreign(b: Batch) -> sp.csr_matrix:
    """``(m, n)``: closeness (``log1p(100) - log1p(km)``) of the places of other countries within 100 km."""
    return _cached(b, "near_foreign", lambda: _near(b, domestic=False))


def near_domestic(b: Batch) -> sp.csr_matrix:
    """``(m, n)``: closeness of the places of the source's own country within 100 km."""
    return _cached(b, "near_domestic", lambda: _near(b, domestic=True))


def neighbourhood_ties(b: Batch) -> sp.csr_matrix:
    """``(m, n)``: partnerships between the places within :data:`matcher.geo.AREA_KM` of the source (the source
    included) and those within it of the candidate (the candidate included)."""
    return _cached(
        b,
        "neighbourhood_ties",
        lambda: sp.csr_matrix(b.index.near_index(AREA_KM).within(b.src.lat, b.src.lon) @ b.s.near_partners),
    )
