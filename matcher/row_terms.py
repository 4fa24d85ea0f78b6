"""Dense ``(m, n)`` stage-1 terms kept in a factored form and added to the score matrix row by row.

A term of the stage-1 matrix (:meth:`matcher.pair_features.Featurizer.stage1_matrix`) that is an outer product, or
whose row depends only on the source's country, needs no ``(m, n)`` array of its own: adding it row by row keeps
each row in cache and gives the same float32 sums, operation for operation, as building the matrix and adding it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

F32 = np.float32


class RowTerm(Protocol):
    """An ``(m, n)`` term that adds itself, times a weight, to an ``(m, n)`` float32 matrix."""

    def add_to(self, out: np.ndarray, weight: float) -> None: ...


class CountryRows(NamedTuple):
    """Row ``i`` is ``table[rows[i]]`` (float32): one row per source country."""

    table: np.ndarray
    rows: np.ndarray

    def add_to(self, out: np.ndarray, weight: float) -> None:
        """``out += weight · (this term)`` in float32, row by row."""
        table = F32(weight) * np.asarray(self.table, F32)
        for i, j in enumerate(self.rows.tolist()):
            out[i] += table[j]


class OuterRows(NamedTuple):
    """The outer product ``a[i] · b[j]`` of an ``(m,)`` and an ``(n,)`` vector, in float32."""

    a: np.ndarray
    b: np.ndarray

    def add_to(self, out: np.ndarray, weight: float) -> None:
        """``out += weight · outer(a, b)``: per row ``(a[i] · b) · weight`` in float32, as the matrix form computes."""
        a, b, w = np.asarray(self.a, F32), np.asarray(self.b, F32), F32(weight)
        row = np.empty(len(b), F32)
        for i in range(len(a)):
            np.multiply(a[i], b, out=row)
            row *= w
            out[i] += row
