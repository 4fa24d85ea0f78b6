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
