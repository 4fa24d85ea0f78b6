"""Known country-pair totals and what the lists miss there (matcher.known_gaps)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from matcher.graph import CityIndex, PartnerGraph, pair_positions
from matcher.known_gaps import KnownGaps, known_totals

# countries (sorted codes) CN, DE, US; CN and US each with a big, a middle and a small place
CITIES = pd.DataFrame(
    {
        "geonameid": np.arange(1, 10),
        "country": ["CN", "CN", "CN", "DE", "DE", "DE", "US", "US", "US"],
        "admin1": "01",
        "population": [20e6, 2e6, 20e3, 3e6, 300e3, 10e3, 8e6, 800e3, 30e3],
        "latitude": 0.0,
        "longitude": 0.0,
    }
)
# listed: one CN-US pair (the two biggest), DE twins with both
PAIRS = pd.DataFrame({"geonameid_a": [1, 4, 4, 5, 6, 2], "geonameid_b": [7, 7, 1, 8, 9, 5]})


def _fit(totals: dict[str, int] | None) -> tuple[CityIndex, PartnerGraph, KnownGaps | None]:
    index = CityIndex.from_frame(CITIES)
    edges = pair_positions(index, PAIRS)
    stats = PartnerGraph.build(index, edges)
    return index, stats, KnownGaps.fit(index, edges, stats.country_pairs, totals)


def test_a_known_total_above_the_listed_count_is_a_gap_shared_by_the_places_by_size() -> None:
    index, stats, gaps = _fit({"US-CN": 21})  # either order of the codes
    assert gaps is not None
    cn, de, us = (index.country_code(c) for c in ("CN", "DE", "US"))
    assert gaps.gaps[cn, us] == gaps.gaps[us, cn] == 20.0  # 21 known, 1 listed
    assert gaps.gaps[cn, de] == 0.0 and gaps.per_person[de] == 0.0  # no known total: untouched
    us_pop = index.population[index.country == us].sum()
    assert gaps.per_person[us] == pytest.approx(20.0 / us_pop)
    # mu = g / (g + listed partners + 1), g = the gap's share by population
    country = np.array([us, us, us, de])
    population = np.array([8e6, 30e3, 8e6, 3e6])
    degree = np.array([2.0, 0.0, 0.0, 2.0])
    mu = gaps.share(country, population, degree)
    g = 20.0 * 8e6 / us_pop
    assert mu[0] == pytest.approx(g / (g + 3.0)) and mu[2] == pytest.approx(g / (g + 1.0))
    assert 0.0 < mu[1] < mu[2] / 10  # a town gets far less of it than a big city
    assert mu[3] == 0.0


def test_no_gaps_without_totals_or_when_the_lists_hold_the_total() -> None:
    assert _fit(None)[2] is None and _fit({})[2] is None
    assert _fit({"CN-US": 1})[2] is None  # as many listed as known
    assert _fit({"CN-JP": 50})[2] is None  # no Japanese place in the gazetteer


def test_the_prior_of_a_source_country_goes_to_the_big_places_of_the_gap_country() -> None:
    index, _, gaps = _fit({"CN-US": 21})
    assert gaps is not None
    us, de = index.country_code("US"), index.country_code("DE")
    q = gaps.prior(index, us)
    assert q.sum() == pytest.approx(1.0)
    assert np.all(q[index.country != index.country_code("CN")] == 0.0)  # only China's places
    cn_rows = np.flatnonzero(index.country == index.country_code("CN"))
    assert list(cn_rows[np.argsort(-q[cn_rows])]) == list(cn_rows[np.argsort(-index.population[cn_rows])])
    assert np.all(gaps.prior(index, de) == 0.0)
    # the exponent is fitted on the listed partners: positive here (big places twin abroad)
    assert gaps.beta[us, index.country_code("CN")] > 0.0


def test_apply_moves_the_gap_countrys_big_places_up_for_its_sources_only() -> None:
    index, _, gaps = _fit({"CN-US": 200})
    assert gaps is not None
    us, de = index.country_code("US"), index.country_code("DE")
    n = index.n
    scores = np.full((2, n), 0.01, np.float32)
    scores[:, 3] = 0.2  # the model's favourite: a German city
    before = scores.copy()
    src_country = np.array([us, de])
    out = gaps.apply(index, src_country, np.array([8e6, 3e6]), np.array([1.0, 1.0]), np.array([1.0, 1.0]), scores)
    assert np.array_equal(out[1], before[1])  # a German source: untouched
    assert int(np.argmax(out[0])) == 0  # a US source: China's biggest place first
    assert out.min() >= 0.0 and out.max() <= 1.0
    # a US town of 1,000 people: its own list
    town = np.full((1, n), 0.01, np.float32)
    town[0, 3] = 0.2
    out = gaps.apply(index, np.array([us]), np.array([1e3]), np.array([1.0]), np.array([1.0]), town)
    assert int(np.argmax(out[0])) == 3
    # the per-country priors are cached for the process, not saved with the model
    assert "_priors" in gaps.__dict__
    again = pickle.loads(pickle.dumps(gaps))
    assert "_priors" not in again.__dict__
    fresh = np.full((1, n), 0.01, np.float32)
    same = np.full((1, n), 0.01, np.float32)
    args = (index, np.array([us]), np.array([8e6]), np.array([1.0]), np.array([1.0]))
    assert np.array_equal(gaps.apply(*args, fresh), again.apply(*args, same))


def test_known_totals_are_checked() -> None:
    index = CityIndex.from_frame(CITIES)
    for bad in ({"CNUS": 3}, {"CN-CN": 3}, {"CN-US": -1}):
        with pytest.raises(ValueError, match="country_pair_totals"):
            known_totals(index, bad)
