"""Grouped hold-outs (leave-country-pair-out, cold places) on small synthetic networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matcher.baselines import PopularityRanker, PopulationRanker, RandomRanker
from matcher.evaluate import evaluate_split
from matcher.holdouts import (
    cold_place_split,
    country_pair_split,
    evaluate_cold_places,
    evaluate_country_pairs,
    format_country_pairs,
    parse_country_pair,
    top_country_pairs,
)

COUNTRIES = ["DE", "FR", "PL", "US", "CN"]


def _world(n: int = 120, edges: int = 260, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + n)
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)]
    cities = pd.DataFrame(
        {
            "geonameid": ids,
            "name": [f"c{i}" for i in ids],
            "country": country,
            "admin1": ["01"] * n,
            "latitude": rng.uniform(-50, 60, n),
            "longitude": rng.uniform(-120, 140, n),
            "population": rng.integers(1_000, 2_000_000, n),
            "timezone": ["UTC"] * n,
        }
    )
    a = rng.integers(0, n, edges)
    b = rng.integers(0, n, edges)
    keep = a != b
    pairs = pd.DataFrame({"geonameid_a": ids[a[keep]], "geonameid_b": ids[b[keep]]}).drop_duplicates()
    return cities, pairs.reset_index(drop=True)


def _country_pairs_of(cities: pd.DataFrame, pairs: pd.DataFrame) -> set[tuple[str, str]]:
    c = dict(zip(cities.geonameid, cities.country, strict=True))
    return {tuple(sorted((c[a], c[b]))) for a, b in zip(pairs.geonameid_a, pairs.geonameid_b, strict=True)}  # type: ignore[misc]


def _rankers() -> dict:  # type: ignore[type-arg]
    return {"population": PopulationRanker(), "popularity": PopularityRanker(), "random": RandomRanker(1)}


def test_parse_country_pair() -> None:
    assert parse_country_pair("US-CN") == ("CN", "US") == parse_country_pair("cn–us")
    with pytest.raises(ValueError):
        parse_country_pair("USA-CN")


def test_top_country_pairs_counts_every_pair_once() -> None:
    cities, pairs = _world()
    top = top_country_pairs(cities, pairs, 4)
    counts = pd.Series([cp for cp in map(tuple, np.sort(_pair_country_array(cities, pairs), axis=1))]).value_counts()
    assert len(top) == 4
    assert [counts[cp] for cp in top] == sorted(counts.to_numpy(), reverse=True)[:4]


def _pair_country_array(cities: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    c = dict(zip(cities.geonameid, cities.country, strict=True))
    return np.array([[c[a], c[b]] for a, b in zip(pairs.geonameid_a, pairs.geonameid_b, strict=True)])


def test_leave_country_pair_out_keeps_the_held_out_country_pair_out_of_train() -> None:
    cities, pairs = _world()
    for cp in [("CN", "US"), ("DE", "DE"), ("FR", "PL")]:
        train, test = country_pair_split(cities, pairs, cp)
        assert len(train) + len(test) == len(pairs)
        assert len(test) > 0
        assert _country_pairs_of(cities, test) == {cp}
        assert cp not in _country_pairs_of(cities, train)


def test_cold_places_have_no_train_partner() -> None:
    _, pairs = _world()
    train, test, cold = cold_place_split(pairs, 0.2, seed=5)
    places = np.unique(pairs[["geonameid_a", "geonameid_b"]].to_numpy())
    assert len(cold) == round(0.2 * len(places))
    assert not np.isin(train[["geonameid_a", "geonameid_b"]].to_numpy(), cold).any()
    assert (np.isin(test.geonameid_a, cold) | np.isin(test.geonameid_b, cold)).all()
    assert len(train) + len(test) == len(pairs)
    _, _, other = cold_place_split(pairs, 0.2, seed=6)
    assert not np.array_equal(cold, other)


def test_pooled_numbers_are_the_concatenated_queries() -> None:
    cities, pairs = _world()
    todo = [("CN", "US"), ("DE", "FR"), ("PL", "PL")]
    res = evaluate_country_pairs(cities, None, pairs, todo, rankers=_rankers(), served_from=None, ks=(5, 20))
    assert [p["pair"] for p in res["country_pairs"]] == ["CN-US", "DE-FR", "PL-PL"]
    ranks: dict[str, list[np.ndarray]] = {}
    for cp in todo:  # the same splits, evaluated independently
        train, test = country_pair_split(cities, pairs, cp)
        one = evaluate_split(
            cities, None, train, test, rankers=_rankers(), served_from=None, ks=(5, 20), return_ranks=True
        )
        for name, row in one["rankers"].items():
            ranks.setdefault(name, []).append(row["ranks"])
    pooled = res["pooled"]
    assert pooled["queries"] == sum(p["queries"] for p in res["country_pairs"]) > 0
    for name, parts in ranks.items():
        r = np.concatenate(parts)
        row = pooled["rankers"][name]
        assert row["queries"] == len(r)
        assert row["hit@5"] == pytest.approx(np.mean(r <= 5))
        assert row["hit@20"] == pytest.approx(np.mean(r <= 20))
        assert row["mrr"] == pytest.approx(np.mean(1.0 / r))
        assert row["median_rank"] == pytest.approx(np.median(r))
    # "beats" counts the splits where twinning is strictly better: no twinning row here, so nothing is counted
    assert res["beats"] == {}
    assert "CN-US" in format_country_pairs(res)


def test_pair_folds_hold_out_part_of_a_pair_with_the_rest_of_it_in_train() -> None:
    cities, pairs = _world()
    cp = ("CN", "US")
    rest, whole = country_pair_split(cities, pairs, cp)
    assert len(whole) >= 6
    fold = np.random.default_rng(7).permutation(len(whole)) % 3
    ranks: dict[str, list[np.ndarray]] = {}
    for j in range(3):  # the same three splits, each with two thirds of the pair in TRAIN
        train = pd.concat([rest, whole[fold != j]], ignore_index=True)
        assert cp in _country_pairs_of(cities, train)
        one = evaluate_split(
            cities, None, train, whole[fold == j], rankers=_rankers(), served_from=None, ks=(5,), return_ranks=True
        )
        for name, row in one["rankers"].items():
            ranks.setdefault(name, []).append(row["ranks"])
    res = evaluate_country_pairs(
        cities, None, pairs, [cp], rankers=_rankers(), served_from=None, ks=(5,), pair_folds=3, seed=7
    )
    row = res["country_pairs"][0]
    assert row["pair"] == "CN-US" and row["pair_folds"] == 3 and "ranks" not in row["rankers"]["popularity"]
    for name, parts in ranks.items():
        r = np.concatenate(parts)
        assert row["rankers"][name]["queries"] == len(r) == res["pooled"]["rankers"][name]["queries"]
        assert row["rankers"][name]["mrr"] == pytest.approx(np.mean(1.0 / r))
    # popularity knows the held-out pair's other partnerships now: it differs from holding the whole pair out
    whole_out = evaluate_country_pairs(cities, None, pairs, [cp], rankers=_rankers(), served_from=None, ks=(5,))
    assert whole_out["country_pairs"][0]["rankers"]["popularity"]["mrr"] != row["rankers"]["popularity"]["mrr"]


def test_cold_subsets_split_the_queries_by_the_cold_end() -> None:
    cities, pairs = _world()
    res = evaluate_cold_places(cities, None, pairs, share=0.25, seed=2, rankers=_rankers(), served_from=None)
    _, test, cold = cold_place_split(pairs, 0.25, seed=2)
    a, b = test.geonameid_a.to_numpy(), test.geonameid_b.to_numpy()
    src = np.concatenate([a, b])
    tgt = np.concatenate([b, a])
    assert res["queries"] == len(src) and res["cold_places"] == len(cold)
    assert res["subsets"]["source_cold"]["queries"] == int(np.isin(src, cold).sum())
    assert res["subsets"]["target_cold"]["queries"] == int(np.isin(tgt, cold).sum())
    # a target-cold query's target has no TRAIN partner: popularity scores it 0, so it ties with most places
    sub = res["subsets"]["target_cold"]["rankers"]["popularity"]
    assert sub["median_rank"] > len(cities) / 2
    assert "population_under" not in res["subsets"]["source_cold"]
