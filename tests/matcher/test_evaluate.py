"""The evaluation protocol on tiny hand-made graphs with ranks computed by hand."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from matcher.baselines import (
    AdamicAdarRanker,
    CountryAffinityRanker,
    NearestRanker,
    PopularityRanker,
    PopulationRanker,
    RandomRanker,
)
from matcher.evaluate import default_rankers, evaluate_kfold, evaluate_split, format_table, ranks_for

IDS = [10, 20, 30, 40, 50, 60]


def _cities(ids: Sequence[int], countries: Sequence[str] | None = None) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "geonameid": list(ids),
            "name": [f"c{i}" for i in ids],
            "country": list(countries) if countries is not None else ["DE"] * n,
            "admin1": ["01"] * n,
            "latitude": np.linspace(40.0, 50.0, n),
            "longitude": np.linspace(0.0, 10.0, n),
            "population": [100_000 * (i + 1) for i in range(n)],
            "timezone": ["Europe/Berlin"] * n,
        }
    )


def _pairs(rows: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["geonameid_a", "geonameid_b"])


class FixedRanker:
    """Returns a hand-written score row per source (columns in IDS order)."""

    def __init__(self, rows: dict[int, list[float]]) -> None:
        self.rows = rows
        self.fitted = False

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> FixedRanker:
        self.fitted = True
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        return np.array([self.rows[int(g)] for g in geonameids], dtype=float)


SCORES = {
    # candidates of 10: 40, 50, 60 (self, 20 and 30 = TRAIN partners excluded,
    # although they score higher). 40 has 1 higher (60) and 1 tie (50) -> rank 3
    10: [9, 8, 7, 3, 3, 5],
    # candidates of 40: 10, 20, 30, 50, 60 (self excluded despite its 9):
    # 20 and 30 score higher than 10 -> rank 3
    40: [1, 2, 2, 9, 0, 0],
    # 60 is the best candidate of 50 -> rank 1
    50: [0, 0, 0, 0, 100, 4],
    # all five candidates of 60 tie at 5: ties break against the target -> rank 5
    60: [5, 5, 5, 5, 5, 9],
}


def _fixed(train: list[tuple[int, int]], test: list[tuple[int, int]], ranker: FixedRanker | None = None, **kw):  # type: ignore[no-untyped-def]
    """Evaluate the hand-written SCORES (one ranker, "fixed", no served row) on the IDS cities."""
    rankers = {"fixed": ranker or FixedRanker(SCORES)}
    return evaluate_split(_cities(IDS), None, _pairs(train), _pairs(test), served_from=None, rankers=rankers, **kw)


def test_protocol_ranks_by_hand() -> None:
    calls: list[tuple[int, int]] = []
    ranker = FixedRanker(SCORES)
    res = _fixed(
        [(10, 20), (30, 10)],
        [(10, 40), (50, 60), (10, 999)],  # 999 is not in the gazetteer
        ranker,
        ks=(1, 3),
        progress=lambda d, t: calls.append((d, t)),
        batch_size=3,
        return_ranks=True,
    )
    assert ranker.fitted
    # both directions of the two valid pairs
    assert res["queries"] == 4
    assert list(res["sources"]) == [10, 50, 40, 60]
    assert list(res["targets"]) == [40, 60, 10, 50]
    expected = [3, 1, 3, 5]
    r = res["rankers"]["fixed"]
    assert list(r["ranks"]) == expected
    assert r["hit@1"] == pytest.approx(1 / 4)
    assert r["hit@3"] == pytest.approx(3 / 4)
    assert r["mrr"] == pytest.approx((1 / 3 + 1 + 1 / 3 + 1 / 5) / 4)
    assert r["median_rank"] == pytest.approx(3.0)
    assert r["queries"] == 4
    assert calls[-1] == (4, 4) and len(calls) == 2  # batches of 3: 3 then 4
    table = format_table(res)
    assert "fixed" in table and "hit@3" in table and "mrr" in table


def test_pair_already_in_train_is_skipped() -> None:
    res = _fixed([(10, 20)], [(20, 10), (50, 60)], ks=(1,))
    assert res["queries"] == 2
    assert res["skipped"] == 2


def test_exclusion_uses_train_partners_of_the_source_only() -> None:
    # 20 is a TRAIN partner of 10, not of 40: it is a candidate for 40
    res = _fixed([(10, 20)], [(40, 10)], ks=(1,), return_ranks=True)
    ranks = dict(zip(res["sources"], res["rankers"]["fixed"]["ranks"], strict=True))
    # 40 -> 10: 20 and 30 (2 each) beat 10 (1): rank 3
    assert ranks[40] == 3
    # 10 -> 40: candidates 30 (7), 40 (3), 50 (3), 60 (5) -> 2 higher + 1 tie = 4
    assert ranks[10] == 4


# --------------------------------------------------------------- baselines
# Graph: A-B, A-C, D-B, D-C, D-E ; countries A,B: X(DE)  C,D,F: Y(FR)  E: Z(PL)  G: W(IT)
G_IDS = [1, 2, 3, 4, 5, 6, 7]  # A B C D E F G
G_COUNTRIES = ["DE", "DE", "FR", "FR", "PL", "FR", "IT"]
G_EDGES = [(1, 2), (1, 3), (4, 2), (4, 3), (4, 5)]


def _fit(ranker):  # type: ignore[no-untyped-def]
    return ranker.fit(_cities(G_IDS, G_COUNTRIES), _pairs(G_EDGES))


def test_adamic_adar_by_hand() -> None:
    s = _fit(AdamicAdarRanker()).score_sources([1, 2, 5])
    # A-D share B (deg 2) and C (deg 2)
    assert s[0, 3] == pytest.approx(2 / math.log(2))
    assert s[0, 4] == 0.0  # E's only partner D is not A's partner
    # B-C share A (deg 2) and D (deg 3)
    assert s[1, 2] == pytest.approx(1 / math.log(2) + 1 / math.log(3))
    # E-B share D (deg 3)
    assert s[2, 1] == pytest.approx(1 / math.log(3))


def test_country_affinity_by_hand() -> None:
    s = _fit(CountryAffinityRanker()).score_sources([1, 5, 7])
    # pairs(DE, FR) = 2 (A-C, D-B); share(D) = 3 / (2 + 3 + 0)
    assert s[0, 3] == pytest.approx(2 * 3 / 5)
    assert s[0, 1] == pytest.approx(1 * 2 / 4)  # pairs(DE, DE) = 1; share(B) = 2/4
    assert s[0, 5] == 0.0  # F has no partners
    assert s[0, 4] == 0.0  # pairs(DE, PL) = 0
    assert s[1, 3] == pytest.approx(1 * 3 / 5)  # pairs(PL, FR) = 1
    assert s[0, 6] == 0.0 and s[2].sum() == 0.0  # IT has no TRAIN endpoints


def test_simple_baselines() -> None:
    pop = _fit(PopulationRanker()).score_sources([1])
    assert list(np.argsort(-pop[0])) == [6, 5, 4, 3, 2, 1, 0]
    deg = _fit(PopularityRanker()).score_sources([1, 2])
    assert list(deg[0]) == [2, 2, 2, 3, 1, 0, 0] and list(deg[1]) == list(deg[0])
    near = _fit(NearestRanker()).score_sources([4])
    assert np.argmax(np.where(np.arange(7) == 3, -np.inf, near[0])) in (2, 4)
    assert near[0, 3] == pytest.approx(0.0)
    r1 = _fit(RandomRanker(random_state=7)).score_sources([1, 2])
    r2 = _fit(RandomRanker(random_state=7)).score_sources([1, 2])
    assert r1.shape == (2, 7) and np.array_equal(r1, r2)


def test_popularity_ties_are_broken_against_the_target() -> None:
    # popularity: for source E (partner D): candidates A, B, C (deg 2), F, G (0)
    res = evaluate_split(
        _cities(G_IDS, G_COUNTRIES),
        None,
        _pairs(G_EDGES),
        _pairs([(5, 1)]),
        ks=(1, 3),
        rankers={"popularity": PopularityRanker()},
        served_from=None,
        return_ranks=True,
    )
    ranks = dict(zip(res["sources"], res["rankers"]["popularity"]["ranks"], strict=True))
    assert ranks[5] == 3  # A ties with B and C -> 1 + 0 + 2
    # A -> E: A's partners B, C excluded; D (3) higher; F, G (0) lower -> 2
    assert ranks[1] == 2


def test_default_rankers_names() -> None:
    assert set(default_rankers()) == {
        "twinning",
        "random",
        "population",
        "popularity",
        "nearest",
        "adamic_adar",
        "country_affinity",
    }


# ----------------------------------------------------- served list, k-fold
S_IDS = [1, 2, 3, 4, 5, 6, 7, 8]
S_COUNTRIES = ["DE", "US", "US", "US", "FR", "CN", "US", "FR"]
S_SCORES = {
    # candidates of 1 by score: 2 (US), 3 (US), 4 (US), 5 (FR), 6 (CN), 7 (US), 8 (FR)
    1: [0, 9, 8, 7, 6, 5, 4, 3],
    3: [5, 0, 0, 0, 0, 0, 0, 0],
    6: [1, 0, 0, 0, 0, 0, 0, 0],
}


def _served(test: list[tuple[int, int]], ks: tuple[int, ...], scores: dict, **kw: float) -> dict:  # type: ignore[type-arg]
    return evaluate_split(
        _cities(S_IDS, S_COUNTRIES),
        None,
        _pairs([]),
        _pairs(test),
        ks=ks,
        rankers={"twinning": FixedRanker(scores)},
        return_ranks=True,
        **kw,
    )


def test_served_row_applies_the_country_cap() -> None:
    res = _served([(1, 3), (1, 6)], (1, 3), S_SCORES)
    assert list(res["rankers"]) == ["twinning", "served"]
    assert list(res["sources"]) == [1, 1, 3, 6] and list(res["targets"]) == [3, 6, 1, 1]
    tw, served = res["rankers"]["twinning"], res["rankers"]["served"]
    assert list(tw["ranks"]) == [2, 5, 1, 1]
    # top-3 served to 1, one city per country (cap floor(3/3) = 1): [2 (US), 5 (FR), 6 (CN)]:
    # 3 is beyond the list: 3 + its rank among the others by score (first) = 4; 6 is third on the list
    assert list(served["ranks"]) == [4, 3, 1, 1]
    assert tw["hit@3"] == served["hit@3"] == pytest.approx(3 / 4)
    assert served["mrr"] == pytest.approx((1 / 4 + 1 / 3 + 1 + 1) / 4)
    assert served["mrr"] < tw["mrr"]
    assert res["served_from"] == "twinning" and res["max_country_share"] == pytest.approx(1 / 3)
    # without a cap the served list is the twinning list
    same = _served([(1, 3), (1, 6)], (1, 3), S_SCORES, max_country_share=1.0)["rankers"]
    assert list(same["served"]["ranks"]) == list(same["twinning"]["ranks"])


def test_served_hit_at_k_uses_the_list_served_for_that_k() -> None:
    # k=1: cap 1 -> [2]; k=6: cap 2 -> 2, 3, 5, 6, 8 and 4 fills the sixth place (only US cities are left);
    # the list is shown in score order: [2, 3, 4, 5, 6, 8]
    served = _served([(1, 4)], (1, 6), {**S_SCORES, 4: [1, 0, 0, 0, 0, 0, 0, 0]})["rankers"]["served"]
    assert list(served["ranks"]) == [3, 1] and served["hit@6"] == 1.0 and served["hit@1"] == 0.5


def test_unknown_served_ranker_is_refused() -> None:
    with pytest.raises(ValueError, match="served_from"):
        evaluate_split(_cities(IDS), None, _pairs([]), _pairs([(10, 40)]), rankers={"fixed": FixedRanker(SCORES)})


def test_kfold_reports_mean_and_std_and_a_table() -> None:
    pairs = _pairs([(1, 3), (1, 6), (3, 6), (1, 2)])
    scores = {g: list(np.linspace(1, 0, 8)) for g in S_IDS}
    folds: list[int] = []
    res = evaluate_kfold(
        _cities(S_IDS, S_COUNTRIES),
        None,
        pairs,
        folds=2,
        seed=3,
        ks=(1, 3),
        rankers={"twinning": FixedRanker(scores), "random": RandomRanker(0)},
        on_fold=lambda i, r: folds.append(i),
    )
    assert folds == [0, 1] and res["folds_run"] == [0, 1] and len(res["per_fold"]) == 2
    assert set(res["rankers"]) == {"twinning", "served", "random"}
    for name, metrics in res["rankers"].items():
        for m in ("hit@1", "hit@3", "mrr", "median_rank"):
            values = [r["rankers"][name][m] for r in res["per_fold"]]
            assert metrics[m]["mean"] == pytest.approx(np.mean(values))
            assert metrics[m]["std"] == pytest.approx(np.std(values))
    json.dumps(res)  # JSON-ready
    table = format_table(res)
    assert "2-fold CV (seed 3)" in table and "served" in table and "±" in table


def test_small_place_subset_and_float32_scores() -> None:
    """The subset of queries whose pair involves a small place is summarised on its own; float32 scores rank
    exactly as their float64 values (no extra ties: comparisons stay in float32)."""
    full = _fixed([(10, 20), (30, 10)], [(10, 40), (50, 60)], ks=(1, 3), return_ranks=True, subsets={"small": 250_000})
    # populations 100k, 200k, ... by IDS order: the pair (10, 40) involves 10 (100k); (50, 60) does not
    sub = full["subsets"]["small"]
    assert sub["queries"] == 2 and sub["population_under"] == 250_000
    ranks = full["rankers"]["fixed"]["ranks"]
    small = np.array([True, False, True, False])  # sources 10, 50, 40, 60
    assert sub["rankers"]["fixed"]["mrr"] == pytest.approx(np.mean(1.0 / ranks[small]))
    json.dumps({k: v for k, v in sub.items()})
    f32 = {g: np.asarray(v, np.float32).tolist() for g, v in SCORES.items()}
    as32 = _fixed([(10, 20), (30, 10)], [(10, 40), (50, 60)], FixedRanker(f32), ks=(1, 3), return_ranks=True)
    assert list(as32["rankers"]["fixed"]["ranks"]) == list(ranks)


def test_ranks_for_float32_equals_float64_reference() -> None:
    rng = np.random.default_rng(0)
    s64 = rng.standard_normal((20, 300))
    s64[:, ::7] = np.round(s64[:, ::7])  # ties
    s32 = s64.astype(np.float32)
    sources = np.arange(20)
    targets = (sources + 5) % 300
    excluded = [np.array([(q + 1) % 300, (q + 2) % 300]) for q in range(20)]
    r32 = ranks_for(s32, sources, targets, excluded)
    ref = ranks_for(s32.astype(np.float64), sources, targets, excluded)  # same values in float64
    assert np.array_equal(r32, ref)
    # reference definition: 1 + higher + other equal
    s = s32.astype(np.float64).copy()
    for q in range(20):
        row = s[q].copy()
        row[excluded[q]] = np.nan
        row[sources[q]] = np.nan
        t = row[targets[q]]
        assert r32[q] == 1 + np.sum(row > t) + np.sum(row == t) - 1


def test_served_row_leaves_out_the_home_country_where_train_says_it_rarely_twins_at_home() -> None:
    from matcher.evaluate import served_ranks

    # the source (0) is in group 0; by score its candidates are 1 (group 0), 2 (group 1), 3 (group 0), 4 (group 2),
    # 5 (group 3)
    scores = np.array([[0.0, 0.9, 0.8, 0.7, 0.6, 0.5]])
    groups = np.array([0, 0, 1, 0, 2, 3])
    args = (scores, np.array([0]), np.array([4]), [np.zeros(0, np.int64)], groups, (3,), 1.0)
    hits, rank = served_ranks(*args)
    assert not hits[3][0] and rank[0] == 4  # served [1, 2, 3]: 4 is next
    hits, rank = served_ranks(*args, np.array([True, False, False, False]))  # group 0 rarely twins at home
    assert hits[3][0] and rank[0] == 2  # served [2, 4, 5]
