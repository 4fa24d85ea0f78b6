"""The features and grouped training folds that let the likelihood model transfer to thin regions."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from matcher.graph import CityIndex
from matcher.transfer_features import continent_ratio_without_pair, grouped_fold_assignment, log_gravity


def _f(p: np.ndarray, continents: list[str]) -> SimpleNamespace:
    cont = np.array(continents)
    return SimpleNamespace(
        stats=SimpleNamespace(country_pairs=p, country_degree=p.sum(axis=1)),
        meta=SimpleNamespace(same_continent=cont[:, None] == cont[None, :]),
    )


def test_continent_ratio_leaves_the_pair_itself_out() -> None:
    # countries A, B in Europe, C in Asia; pairs A-C: 2, B-C: 3, A-B: 1
    p = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], float)
    f = _f(p, ["EU", "EU", "AS"])
    d = p.sum(axis=1)  # 3, 4, 5
    total = d.sum()
    expected_eu_as = (d[0] + d[1]) * d[2] / total
    by_hand = math.log((5 - 2 + 1) / (expected_eu_as - d[0] * d[2] / total + 1))
    assert continent_ratio_without_pair(f)[0, 2] == pytest.approx(by_hand)
    # the pair's own count does not enter: with A-C unknown the observed part stays 3 (B-C)
    q = p.copy()
    q[0, 2] = q[2, 0] = 0
    g = _f(q, ["EU", "EU", "AS"])
    dq = q.sum(axis=1)
    expected = ((dq[0] + dq[1]) * dq[2] - dq[0] * dq[2]) / dq.sum()
    assert continent_ratio_without_pair(g)[0, 2] == pytest.approx(math.log(4 / (expected + 1)))
    assert log_gravity(f)[0, 2] == pytest.approx(math.log1p(d[0] * d[2] / total))


def _index(n: int = 60, seed: int = 0) -> tuple[CityIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    cities = pd.DataFrame(
        {
            "geonameid": np.arange(n) + 1,
            "country": rng.choice(["DE", "FR", "PL", "US"], n),
            "admin1": "01",
            "population": 1000.0,
            "latitude": 0.0,
            "longitude": 0.0,
        }
    )
    e = rng.integers(0, n, (400, 2))
    e = e[e[:, 0] != e[:, 1]]
    e = np.unique(np.sort(e, axis=1), axis=0)
    return CityIndex.from_frame(cities), e


def test_grouped_folds_hold_out_whole_country_pairs_and_places() -> None:
    index, edges = _index()
    rng = np.random.default_rng(1)
    base = rng.permutation(len(edges)) % 5
    same = grouped_fold_assignment(index, edges, base, 5, np.random.default_rng(2))
    assert np.array_equal(same, base)
    folds = grouped_fold_assignment(index, edges, base, 5, np.random.default_rng(2), country_pair_share=0.5)
    ca, cb = index.country[edges[:, 0]], index.country[edges[:, 1]]
    key = np.minimum(ca, cb) * 10 + np.maximum(ca, cb)
    whole = [k for k in np.unique(key) if len(np.unique(folds[key == k])) == 1 and (key == k).sum() > 5]
    share = sum((key == k).sum() for k in whole) / len(edges)
    assert 0 < share <= 0.5  # some country pairs lie in one fold each, at most half of the edges
    assert (folds != base).any() and folds.min() >= 0 and folds.max() < 5
    places = grouped_fold_assignment(index, edges, base, 5, np.random.default_rng(3), place_share=1.0)
    # every place is grouped: an edge takes the fold of its first end, so each place's first-end edges share one
    for v in np.unique(edges[:, 0]):
        assert len(np.unique(places[edges[:, 0] == v])) == 1
