"""Factored stage-1 terms (matcher.row_terms) add exactly what their (m, n) matrices would."""

from __future__ import annotations

import numpy as np

from matcher.row_terms import CountryRows, OuterRows


def test_outer_rows_add_the_same_float32_sums_as_the_outer_product() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(size=5).astype(np.float32)
    b = rng.normal(size=1000).astype(np.float32)
    base = rng.normal(size=(5, 1000)).astype(np.float32)
    weight = -0.37
    dense = base.copy()
    dense += np.multiply(np.float32(weight), np.multiply.outer(a, b))  # the (m, n) form
    rows = base.copy()
    OuterRows(a, b).add_to(rows, weight)
    assert np.array_equal(rows, dense)  # bit for bit, not approximately
    assert not np.array_equal(rows, base)


def test_country_rows_add_each_source_its_countrys_row() -> None:
    rng = np.random.default_rng(8)
    table = rng.normal(size=(3, 200)).astype(np.float32)  # one row per source country
    which = np.array([2, 0, 2, 1])  # the country row of each of four sources
    base = rng.normal(size=(4, 200)).astype(np.float32)
    dense = base + np.float32(1.5) * table[which]
    rows = base.copy()
    CountryRows(table, which).add_to(rows, 1.5)
    assert np.array_equal(rows, dense)
