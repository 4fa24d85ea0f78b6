"""The saved form of a fitted model (:mod:`matcher.artifact`): what an older artifact gets on load, what is refused,
and the training pairs' fingerprint."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from matcher.artifact import loaded_state, pairs_sha256, saved_state


def test_an_artifact_of_an_older_layout_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="older matcher version"):
        loaded_state({"index_": object(), "booster_": None})
    other_features = SimpleNamespace(feature_names_in_=np.array(["stage1_score", "log_pop_src"]))
    with pytest.raises(ValueError, match="other re-ranking features"):
        loaded_state({"index_": object(), "stage1_weights_": {}, "booster_": other_features})


def test_parameters_added_later_take_the_values_that_keep_an_old_artifacts_behaviour() -> None:
    saved = {"n_candidates": 300, "cold_candidates": 100, "graph_candidates": 40}
    state = loaded_state(saved)
    assert state["graph_candidates"] == 40 and state["n_candidates"] == 300  # what was saved stays
    assert state["area_candidates"] == 0 == state["size_candidates"] == state["blend_sources"]
    assert state["stage2_sources"] is None and state["country_pair_totals"] is None and state["n_jobs"] is None
    assert state["country_pair_folds"] == 0.0 == state["place_folds"]
    assert not state["size_prior_"].active
    assert "area_candidates" not in saved  # the caller's dict is not changed


def test_what_one_process_built_is_not_saved() -> None:
    state = {"featurizer_": object(), "_booster_predict": print, "booster_": 1, "n_candidates": 300}
    assert saved_state(state) == {"booster_": 1, "n_candidates": 300}
    assert "featurizer_" in state  # the model keeps its own


def test_the_pairs_fingerprint_ignores_order_and_direction_but_not_the_pairs() -> None:
    index = SimpleNamespace(geonameids=np.array([10, 20, 30, 40], np.int64))
    edges = np.array([[0, 1], [2, 3], [1, 2]])
    same = np.array([[2, 1], [1, 0], [3, 2]])
    other = np.array([[0, 1], [2, 3], [0, 2]])
    assert pairs_sha256(index, edges) == pairs_sha256(index, same)  # type: ignore[arg-type]
    assert pairs_sha256(index, edges) != pairs_sha256(index, other)  # type: ignore[arg-type]
    assert len(pairs_sha256(index, np.zeros((0, 2), np.int64))) == 64  # type: ignore[arg-type]
