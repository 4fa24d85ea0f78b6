from __future__ import annotations

import numpy as np

from matcher.rank import top_k


def test_top_k_orders_by_score_then_index() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    assert top_k(scores, 3).tolist() == [1, 4, 0]


def test_top_k_respects_mask_and_short_lists() -> None:
    scores = np.array([0.5, 0.9, 0.7])
    assert top_k(scores, 5, mask=np.array([True, False, True])).tolist() == [2, 0]
    assert top_k(scores, 0).tolist() == []


def test_group_cap_and_fill() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.05])
    groups = np.array([0, 0, 0, 0, 1, 2])
    # k=3: cap = floor(3/3) = 1 per group while others remain; k=6: cap 2, then filled by score
    assert top_k(scores, 3, groups=groups, max_group_share=1 / 3).tolist() == [0, 4, 5]
    assert top_k(scores, 6, groups=groups, max_group_share=1 / 3).tolist() == [0, 1, 2, 3, 4, 5]


def test_pick_diverse_on_a_ranked_list() -> None:
    from matcher.rank import pick_diverse

    ranked = ["US", "US", "US", "US", "CN", "US", "FR", "CN"]
    assert pick_diverse(ranked, 3, 1 / 3) == [0, 4, 6]  # cap 1
    # cap 2 leaves five; the best skipped item (position 2) fills the sixth place, in rank order
    assert pick_diverse(ranked, 6, 1 / 3) == [0, 1, 2, 4, 6, 7]
    assert pick_diverse(["US"] * 5, 3, 1 / 3) == [0, 1, 2]  # one group only: filled by rank


def test_top_k_rows_is_the_argpartition_set() -> None:
    from matcher.rank import top_k_rows

    rng = np.random.default_rng(3)
    s = (rng.standard_normal((40, 5000)) + rng.integers(0, 30, 5000)[None, :] * 0.3).astype(np.float32)
    s[:, ::9] = -np.inf
    s[5, :] = -np.inf  # a row that is nearly all excluded: falls back to argpartition
    s[5, :3] = 1.0
    s[7, 100] = np.nan
    for k in (1, 20, 60):
        got = top_k_rows(s, k, sample=64)
        assert got.shape == (40, k)
        ref = np.argpartition(np.nan_to_num(s, nan=-np.inf), s.shape[1] - k, axis=1)[:, -k:]
        for q in range(40):
            if q == 5:
                assert np.count_nonzero(s[q, got[q]] == 1.0) == min(k, 3)
                continue
            assert sorted(s[q, got[q]].tolist()) == sorted(s[q, ref[q]].tolist())


def test_pick_diverse_spreads_within_the_preferred_countries_instead_of_evicting_them() -> None:
    from matcher.rank import pick_diverse

    ranked = ["US", "US", "RU", "US", "TH", "NZ", "US", "IL", "US", "US"]
    assert pick_diverse(ranked, 5, 1 / 3) == [0, 2, 4, 5, 7]  # cap 1 per country: one US city
    # the city seeks US partners: US is not capped at 1, the list keeps its order
    assert pick_diverse(ranked, 5, 1 / 3, preferred={"US"}) == [0, 1, 2, 3, 4]
    # inside the US, at most ceil(5/3) = 2 per size band (first code) and per area (second code)
    sub = [(7, 1), (7, 1), (0, 0), (7, 2), (0, 0), (0, 0), (6, 1), (0, 0), (6, 3), (5, 4)]
    assert pick_diverse(ranked, 5, 1 / 3, preferred={"US"}, subgroups=sub) == [0, 1, 2, 4, 5]
    usa_only = ["US"] * 6 + ["RU"]
    sub = [(1, i) for i in range(3)] + [(2, i) for i in range(3)] + [(9, 9)]
    assert pick_diverse(usa_only, 5, 1 / 3, preferred={"US"}, subgroups=sub) == [0, 1, 3, 4, 6]
    # two countries sought: each at most ceil(5/2) = 3, the others still capped at 1
    two = ["US", "US", "US", "US", "DE", "DE", "RU", "RU"]
    assert pick_diverse(two, 5, 1 / 3, preferred={"US", "DE"}) == [0, 1, 2, 4, 5]


def test_group_caps_keep_a_group_out_unless_it_is_sought_or_needed_to_fill() -> None:
    from matcher.rank import pick_diverse

    ranked = ["FR", "DE", "FR", "IT", "ES", "DE"]
    assert pick_diverse(ranked, 3, 1 / 3, group_caps={"FR": 0}) == [1, 3, 4]
    assert pick_diverse(ranked, 3, 1 / 3) == [0, 1, 3]
    # a city that seeks its own country gets it: the preferred cap wins
    assert pick_diverse(ranked, 3, 1 / 3, preferred={"FR"}, group_caps={"FR": 0}) == [0, 1, 2]
    # too few others: the best skipped items fill k, in rank order
    assert pick_diverse(["FR", "FR", "DE"], 3, 1 / 3, group_caps={"FR": 0}) == [0, 1, 2]
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    groups = np.array([0, 1, 0, 2, 3, 1])
    assert top_k(scores, 3, groups=groups, group_caps={0: 0}).tolist() == [1, 3, 4]


def test_rare_home_groups_need_enough_partnerships_mostly_abroad() -> None:
    from matcher.rank import HOME_MIN_ENDS, rare_home_groups

    # group 0: rows 0-9, group 1: rows 10-19, group 2: rows 20-29, group 3: rows 30-31
    groups = np.repeat([0, 1, 2, 3], [10, 10, 10, 2])
    abroad = [(i, 20 + i) for i in range(10)] + [(i, 20 + (i + 1) % 10) for i in range(10)]  # 20 ends of group 0
    at_home = [(10 + i, 10 + (i + 1) % 10) for i in range(10)]  # 20 ends of group 1, all at home
    few = [(30, 31)]  # group 3: one partnership, at home
    rare = rare_home_groups(groups, np.array(abroad + at_home + few), 5)
    # 0: 20 ends, none at home; 1: all at home; 2: 20 ends abroad too; 3: too few ends to say; 4: none
    assert rare.tolist() == [True, False, True, False, False]
    assert HOME_MIN_ENDS == 20
    # one home partnership in 20 ends of group 0 (10 %): no longer rare
    rare = rare_home_groups(groups, np.array(abroad[:-1] + [(0, 1)] + at_home), 5)
    assert rare[0] == (2 / 20 < 0.05)
    assert rare_home_groups(groups, np.zeros((0, 2), np.int64), 5).tolist() == [False] * 5
