"""The size prior and its blend with the learned ranking (matcher.size_prior)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from matcher.graph import CityIndex
from matcher.size_prior import BlendFit, SizePrior, log_missing, missing_pairs


def _stats(pairs: np.ndarray) -> Any:
    return SimpleNamespace(country_pairs=pairs, country_degree=pairs.sum(axis=1))


def _index() -> CityIndex:
    # countries (sorted codes) CN, DE, FR, US; populations chosen so every country has a big and a small place
    cities = pd.DataFrame(
        {
            "geonameid": np.arange(1, 9),
            "country": ["CN", "CN", "DE", "DE", "FR", "FR", "US", "US"],
            "admin1": "01",
            "population": [20e6, 50e3, 3e6, 20e3, 2e6, 10e3, 8e6, 30e3],
            "latitude": 0.0,
            "longitude": 0.0,
        }
    )
    return CityIndex.from_frame(cities)


# CN-US twin little for what the two countries' propensities predict; DE-FR twin more than predicted
PAIRS = np.array(
    [
        [0, 5, 5, 0],  # CN
        [5, 0, 40, 10],  # DE
        [5, 40, 0, 10],  # FR
        [0, 10, 10, 0],  # US
    ],
    float,
)


def test_missing_pairs_are_what_the_propensities_predict_and_the_data_lacks() -> None:
    d = PAIRS.sum(axis=1)
    miss = missing_pairs(_stats(PAIRS))
    assert miss[0, 3] == pytest.approx(d[0] * d[3] / d.sum())  # CN-US: nothing known, all expected is missing
    assert miss[1, 2] == 0.0  # DE-FR: more than expected, nothing missing
    assert np.all(np.diag(miss) == 0.0)  # no prior at home
    assert np.allclose(miss, miss.T)
    assert np.isneginf(log_missing(_stats(PAIRS))[1, 2])


def test_the_prior_is_a_distribution_over_candidates_led_by_big_cities_of_missing_pairs() -> None:
    index = _index()
    prior = SizePrior(beta=1.0, t0=0.0, t1=0.0)
    q = np.exp(prior.log_prior(index, _stats(PAIRS), np.array([0, 3])))  # sources in CN and in US
    assert q.sum(axis=1) == pytest.approx([1.0, 1.0], rel=1e-5)
    assert int(np.argmax(q[1])) == 0  # for a US source: the biggest Chinese city
    assert int(np.argmax(q[0])) == 6  # for a Chinese source: the biggest US city
    assert q[0, 0] == 0.0 and q[0, 1] == 0.0  # nothing at home
    # within one country, proportional to population^beta
    assert q[1, 0] / q[1, 1] == pytest.approx(20e6 / 50e3, rel=1e-4)


def test_the_blend_weight_grows_with_the_source_and_is_off_by_default() -> None:
    assert not SizePrior().active
    lam = SizePrior(beta=1.0, t0=-3.0, t1=1.0).weight(np.array([1e4, 1e6, 1e7]))
    assert np.all(np.diff(lam) > 0) and np.all((lam > 0) & (lam < 1))


def _unblended(n: int, top: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.full((len(top), n), 1e-9, np.float32)
    np.put_along_axis(out, top, p.astype(np.float32), axis=1)
    return out


def test_the_blend_moves_a_big_city_of_a_missing_pair_up_and_keeps_scores_in_range() -> None:
    index = _index()
    stats = _stats(PAIRS)
    top = np.array([[2, 4, 3]])  # a US source's shortlist: German and French places
    p = np.array([[0.5, 0.3, 0.1]])
    unblended = _unblended(index.n, top, p)
    strong = SizePrior(beta=1.0, t0=2.0, t1=0.0)
    res = strong.blend(strong.log_prior(index, stats, np.array([3])), np.array([8e6]), p.sum(axis=1), unblended)
    assert res.min() >= 0.0 and res.max() <= 1.0
    assert int(np.argmax(res[0])) == 0  # Beijing-sized place first
    weak = SizePrior(beta=1.0, t0=-30.0, t1=0.0)
    res = weak.blend(weak.log_prior(index, stats, np.array([3])), np.array([8e6]), p.sum(axis=1), unblended)
    assert list(np.argsort(-res[0])[:3]) == [2, 4, 3]  # a negligible weight keeps the model's order


def test_blend_fit_takes_a_blend_only_when_it_helps_thin_partners_and_keeps_the_known_ones() -> None:
    index = _index()
    stats = _stats(PAIRS)
    top = np.array([[2, 4, 3], [2, 4, 3]])
    p = np.array([[0.5, 0.3, 0.1], [0.5, 0.3, 0.1]])
    unblended = _unblended(index.n, top, p)
    excluded = (np.array([0, 1]), np.array([6, 6]))  # the source (a US place) itself
    src_country, src_pop = np.array([3, 3]), np.array([8e6, 8e6])
    every_column = np.arange(index.n)

    def add(fit: BlendFit, rows: list[int], cols: list[int]) -> None:
        positives = (np.array(rows), np.array(cols), np.ones(len(rows)))
        fit.add(stats, src_country, src_pop, p.sum(axis=1), unblended, top, positives, excluded, every_column)

    # a thin partner (CN-US has no pair) that the model ranks low: some blend of the grid lifts it
    thin = BlendFit(index)
    add(thin, [0], [0])
    add(thin, [1], [2])
    m = thin.mrr()
    # unblended, Beijing (column 0) is below the 3 shortlisted places and tied with the 3 other places outside
    # the shortlist (the source itself is excluded): rank 7, ties counting against it
    assert m["thin_mrr_unblended"] == pytest.approx(1 / 7)
    assert m["known_mrr_unblended"] == pytest.approx(1.0)  # Berlin (column 2) is the model's first
    chosen = thin.best()
    assert chosen.active
    assert m["thin_mrr"] > m["thin_mrr_unblended"]
    assert m["known_mrr"] >= 0.98 * m["known_mrr_unblended"]
    # known partners only: nothing to gain where the data is thin, so no blend
    known = BlendFit(index)
    add(known, [0, 1], [2, 4])
    assert not known.best().active


def test_blend_fit_ranks_through_a_column_sample_scaled_to_the_gazetteer() -> None:
    index = _index()
    stats = _stats(PAIRS)
    top = np.array([[2, 4, 3]])
    p = np.array([[0.5, 0.3, 0.1]])
    unblended = _unblended(index.n, top, p)
    unblended[0, [1, 5]] = 1e-8  # two places outside the shortlist above the partner (1e-9)
    excluded = (np.array([0]), np.array([6]))
    positives = (np.array([0]), np.array([0]), np.ones(1))
    fits = []
    for columns in (np.arange(index.n), np.array([0, 1, 7])):  # every column; a sample of three
        fit = BlendFit(index)
        fit.add(stats, np.array([3]), np.array([8e6]), p.sum(axis=1), unblended, top, positives, excluded, columns)
        fits.append(fit.mrr()["thin_mrr_unblended"])
    # exact: 3 shortlisted + places 1 and 5 above + place 7 tied -> rank 7
    assert fits[0] == pytest.approx(1 / 7)
    # sampled: of the other places (8 - 3 shortlisted - 1 excluded = 4), the sample holds 1 (above), 7 (tied)
    # and the partner itself; 2 of the 3 sampled count, scaled by 4 / 3: rank 1 + 3 + 8 / 3
    assert fits[1] == pytest.approx(1 / (1 + 3 + 8 / 3))
