"""The re-scoring fast path (``TwinningMatcher.suggest_many`` ranking on the model's raw scores) gives exactly the
suggestions of the full path (``suggest``: every served score of the row, then ``top_k``), on a world large enough
for the diversity head to be a partial selection, with ties at its boundary, scores clipped to 1, profiles and
preferences of every kind, and a model whose columns are not in table order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from matcher import CityTable, CountryTable, ProfileData, TwinningMatcher
from matcher.rank import top_k, top_k_among

COUNTRIES = CountryTable.from_records(
    [
        {"code": "CN", "continent": "AS", "languages": "zh-CN"},
        {"code": "US", "continent": "NA", "languages": "en-US,es-US"},
        {"code": "FR", "continent": "EU", "languages": "fr-FR"},
        {"code": "DE", "continent": "EU", "languages": "de"},
    ]
)
PER_COUNTRY = 120  # 480 places: the head of k = 5 (200 places) is a partial selection


def _cities() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = []
    for c, (cc, (lat, lon)) in enumerate({"CN": (31, 120), "US": (38, -90), "FR": (47, 2), "DE": (51, 10)}.items()):
        for i in range(PER_COUNTRY):
            rows.append(
                {
                    "geonameid": 1000 + c * PER_COUNTRY + i,
                    "name": f"{cc}-{i}",
                    "country": cc,
                    "latitude": lat + rng.normal(0, 3),
                    "longitude": lon + rng.normal(0, 3),
                    "population": int(rng.integers(1_000, 3_000_000)),
                }
            )
    return pd.DataFrame(rows)


class Designed:
    """A likelihood double (float32, like the model) whose scores make the fast path's hard cases: a few levels
    shared by many places (ties), scores of 1 and just below (the served score clips them to 1: the raw order no
    longer decides), zeros and scores far below the log scale's floor. Every fifth source gives most places a
    score of about 1, so its head's boundary falls in the clipped range; every third gives every German place
    1e-9, below every other place, so its head (k = 20) ends inside that tie and the diversity pass takes the
    first places of the tie. Scores are low enough (at most 0.01) for a good profile match to outrank
    them whatever the likelihood of the pair. The model's columns are its geonameids in a shuffled order, and it
    does not know the last ``unknown`` places."""

    def __init__(self, geonameids: np.ndarray, unknown: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.geonameids_ = rng.permutation(np.asarray(geonameids)[: len(geonameids) - unknown])

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        n = len(self.geonameids_)
        german = (self.geonameids_ - 1000) // PER_COUNTRY == 3
        out = np.empty((len(geonameids), n), np.float32)
        levels = np.array([0.0, 1e-30, 1e-12, 3e-9, 1e-4, 1e-3, 0.01], np.float32)
        for q, g in enumerate(geonameids):
            rng = np.random.default_rng(int(g))
            row = (10.0 ** rng.uniform(-12, -2, n)).astype(np.float32)
            tied = rng.random(n) < 0.4
            row[tied] = levels[rng.integers(0, len(levels), int(tied.sum()))]
            if int(g) % 3 == 0:  # the head (k = 20: 400 places) ends inside a tie of German places
                row[~german] = (10.0 ** rng.uniform(-6, -2, int((~german).sum()))).astype(np.float32)
                row[german] = 1e-9
            if int(g) % 5 == 0:
                high = rng.random(n) < 0.7
                row[high] = np.float32(1.0) - rng.integers(0, 3, int(high.sum())).astype(np.float32) * 1e-7
            out[q] = row
        return out

    def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray:
        return self.score_sources([int(population)])[0]


def _profiles(ids: list[int]) -> dict[int, ProfileData]:
    """Profiles on every 9th place, all of them a good match for each other, with every kind of preference."""
    kinds: list[dict[str, Any]] = [
        {},
        {"pref_countries": frozenset({"CN", "FR"})},
        {"pref_min_population": 50_000},
        {"pref_max_population": 500_000},
        {"pref_languages": frozenset({"de"})},
        {"seeking_partners": False},
    ]
    sectors = ["tourism", "culture_arts", "maritime_ports", "trade_investment"]
    return {
        g: ProfileData(
            offers={"education": 1.0, sectors[i % 4]: 0.5}, seeks={"education": 1.0}, **kinds[i % len(kinds)]
        )
        for i, g in enumerate(ids[::9])
    }


@pytest.fixture(scope="module")
def matcher() -> TwinningMatcher:
    cities = _cities()
    ids = cities.geonameid.tolist()
    table = CityTable.build(cities, _profiles(ids), COUNTRIES)
    rng = np.random.default_rng(5)
    pairs = rng.choice(len(table), size=(150, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    # the likelihood weighs no more than a profile component: two profiled places outrank any other pair
    lik = Designed(table.geonameids, unknown=7, seed=3)
    return TwinningMatcher(likelihood=lik, weights={"likelihood": 1.0}).fit(table, pairs)


@pytest.mark.parametrize("k", [5, 20])
def test_suggest_many_equals_the_full_path(matcher: TwinningMatcher, k: int) -> None:
    rows = np.arange(len(matcher.table_))
    many = matcher.suggest_many(rows, k=k, batch=48)
    assert len(many) == len(rows)
    for row, got in zip(rows.tolist(), many, strict=True):
        assert got == matcher.suggest(row, k=k), row  # ids, order, scores, components and reasons


def test_the_fast_path_ranks_on_raw_scores(matcher: TwinningMatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Most rows take the fast path (served scores only for their head) and some fall back to the full row:
    both branches are exercised by the test above."""
    calls = {"full": 0}
    top = matcher._top

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls["full"] += 1
        return top(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(matcher, "_top", counting)
    n = len(matcher.table_)
    matcher.suggest_many(np.arange(n), k=5)
    assert 0 < calls["full"] < n // 2


def test_top_k_among_the_head_equals_top_k() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 6, 3000)
    for trial in range(40):
        scores = rng.choice(np.linspace(0, 1, 50 + trial * 20), 3000)  # many ties
        mask = rng.random(3000) < 0.9
        k = int(rng.integers(1, 30))
        want = top_k(scores, k, mask, groups=groups, max_group_share=1 / 3)
        allowed = np.flatnonzero(mask)
        m = min(len(allowed), max(k * 20, 200))
        kth = np.sort(scores[allowed])[::-1][m - 1]
        extra = allowed[scores[allowed] < kth][: int(rng.integers(0, 50))]  # more than the head is harmless
        cols = rng.permutation(np.concatenate([allowed[scores[allowed] >= kth], extra]))
        got = top_k_among(cols, scores[cols], k, len(allowed), groups=groups, max_group_share=1 / 3)
        assert got is not None
        assert cols[got].tolist() == want.tolist()
        short = cols[scores[cols] > kth]  # a tied member of the head missing: not a complete head
        if len(short) < m:
            assert top_k_among(short, scores[short], k, len(allowed), groups=groups) is None
