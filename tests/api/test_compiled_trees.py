"""The re-ranker compiled to machine code (api/domain/compiled_trees.py): the same probabilities and suggestions as
scikit-learn's trees, built once per booster, and scikit-learn again whenever it cannot be built or disagrees."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from api.config import Settings
from api.domain import compiled_trees
from api.domain.compiled_trees import compiled_predictor, probe_rows
from api.domain.scoring import load_likelihood
from matcher.likelihood import PartnershipLikelihood
from tests.matcher.test_likelihood import SMALL, _synthetic


@pytest.fixture(scope="module")
def model() -> PartnershipLikelihood:
    cities, pairs = _synthetic()
    return PartnershipLikelihood(**SMALL, random_state=0).fit(cities, pairs)


def _stage2_rows(model: PartnershipLikelihood) -> pd.DataFrame:
    fz = model.featurizer_
    src = fz.sources(np.arange(40))
    top, ts, rank = model._shortlist(fz, src)
    qi = np.repeat(np.arange(40), top.shape[1])
    return fz.stage2_frame(src, qi, top.ravel(), ts.ravel(), rank.ravel())


def test_compiled_trees_give_scikit_learns_probabilities_and_scores(
    model: PartnershipLikelihood, tmp_path: Path
) -> None:
    predict = compiled_predictor(model.booster_, tmp_path)
    assert predict is not None
    x = _stage2_rows(model)
    np.testing.assert_allclose(predict(x.to_numpy()), model.booster_.predict_proba(x)[:, 1], rtol=0, atol=1e-12)
    probe = probe_rows(model.booster_)
    assert np.isnan(probe).any() and len(probe) == 4096
    frame = pd.DataFrame(probe, columns=model.booster_.feature_names_in_)
    np.testing.assert_allclose(predict(probe), model.booster_.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)

    ids = model.geonameids_[:50].tolist()
    before = model.score_sources(ids)
    model.use_booster_predict(predict)
    try:
        after = model.score_sources(ids)
    finally:
        model.use_booster_predict(None)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-7)  # float32 scores
    assert (
        np.argsort(-after, axis=1, kind="stable")[:, :20] == np.argsort(-before, axis=1, kind="stable")[:, :20]
    ).all()


def test_values_the_compiled_code_would_read_as_missing_are_scored_by_scikit_learn(
    model: PartnershipLikelihood, tmp_path: Path
) -> None:
    """A double whose low 32 bits are all ones reads as TL2cgen's missing marker (-1) in its ``union Entry``:
    such rows must still get scikit-learn's probabilities."""
    predict = compiled_predictor(model.booster_, tmp_path)
    assert predict is not None
    x = _stage2_rows(model)
    rows = x.to_numpy().copy()
    finite = np.isfinite(rows) & (rows != 0)
    bits = rows.view(np.uint64)
    bits[finite] |= np.uint64(0xFFFFFFFF)  # the same values to ~1e-6, each one now "missing" to the compiled code
    assert ((rows.view(np.uint64) & np.uint64(0xFFFFFFFF)) == np.uint64(0xFFFFFFFF)).any(axis=1).all()
    want = model.booster_.predict_proba(pd.DataFrame(rows, columns=x.columns))[:, 1]
    np.testing.assert_allclose(predict(rows), want, rtol=0, atol=1e-12)
    assert np.abs(want - model.booster_.predict_proba(x)[:, 1]).max() > 0  # the change reached the trees


def test_the_library_is_built_once_per_booster(model: PartnershipLikelihood, tmp_path: Path) -> None:
    assert compiled_predictor(model.booster_, tmp_path) is not None
    libs = list(tmp_path.glob("reranker-*.so"))
    assert len(libs) == 1
    built = libs[0].stat().st_mtime_ns
    assert compiled_predictor(model.booster_, tmp_path) is not None
    assert list(tmp_path.glob("reranker-*.so")) == libs and libs[0].stat().st_mtime_ns == built
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # the build's temporary directory is gone


def test_only_the_newest_libraries_are_kept(model: PartnershipLikelihood, tmp_path: Path) -> None:
    old = []
    for i in range(4):  # libraries of earlier models, built an hour ago and more
        lib = tmp_path / f"reranker-old{i}-tl2cgen1.0.0.so"
        lib.write_bytes(b"")
        lib.with_suffix(".lock").write_text("")
        os.utime(lib, (time.time() - 3600 * (i + 1),) * 2)
        old.append(lib)
    assert compiled_predictor(model.booster_, tmp_path) is not None
    kept = sorted(p.name for p in tmp_path.glob("reranker-*.so"))
    assert len(kept) == compiled_trees.KEEP and old[0].name in kept and old[1].name in kept
    assert not old[2].exists() and not old[3].exists() and not old[3].with_suffix(".lock").exists()


def test_processes_starting_together_build_it_once(model: PartnershipLikelihood, tmp_path: Path) -> None:
    """Pool processes of a Celery worker load the model at the same moment: one builds, the others wait for the
    lock and load what it built (new processes here: a fork of this one could inherit OpenMP's threads)."""
    ctx = multiprocessing.get_context("spawn")
    builds = tmp_path / "builds"
    start = ctx.Barrier(3)  # all three ask at once
    args = (model.booster_, tmp_path / "cache", builds, start)
    procs = [ctx.Process(target=_load_in_child, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert builds.read_text() == "x"
    assert len(list((tmp_path / "cache").glob("reranker-*.so"))) == 1


def _load_in_child(booster: object, cache: Path, builds: Path, start: Any) -> None:
    real = compiled_trees._build

    def counted(tl_model, lib):  # type: ignore[no-untyped-def]
        with open(builds, "a") as f:
            f.write("x")
        time.sleep(1.0)  # a slow build: without the lock, the others would start their own meanwhile
        real(tl_model, lib)

    compiled_trees._build = counted  # type: ignore[assignment]
    start.wait(60)
    sys.exit(0 if compiled_predictor(booster, cache) is not None else 1)


def test_a_predictor_that_disagrees_is_not_used(
    model: PartnershipLikelihood, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = compiled_trees._per_thread

    def off_by_a_little(lib: str, booster):  # type: ignore[no-untyped-def]
        predict = real(lib, booster)
        return lambda x: predict(x) + 1e-6

    monkeypatch.setattr(compiled_trees, "_per_thread", off_by_a_little)
    with caplog.at_level(logging.WARNING, logger="api.domain.compiled_trees"):
        assert compiled_predictor(model.booster_, tmp_path) is None
    assert "differs from scikit-learn" in caplog.text


def test_without_a_place_to_build_it_scikit_learn_scores(
    model: PartnershipLikelihood, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="api.domain.compiled_trees"):
        assert compiled_predictor(model.booster_, blocked / "compiled") is None
    assert "could not compile the re-ranker" in caplog.text


def test_the_service_loads_the_model_with_compiled_trees_unless_turned_off(
    model: PartnershipLikelihood, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.joblib"
    model.use_booster_predict(lambda x: np.zeros(len(x)))  # a process's own: never saved
    try:
        model.save(path)
    finally:
        model.use_booster_predict(None)
    plain = load_likelihood(path, compiled=False)
    assert plain is not None and getattr(plain, "_booster_predict", None) is None
    fast = load_likelihood(path, compiled=True)
    assert fast is not None and getattr(fast, "_booster_predict", None) is not None
    assert list((tmp_path / "compiled").glob("reranker-*.so"))
    ids = model.geonameids_[:10].tolist()
    np.testing.assert_allclose(fast.score_sources(ids), plain.score_sources(ids), rtol=0, atol=1e-7)

    monkeypatch.setenv("TWINNING_COMPILED_TREES", "0")
    assert Settings.from_env().COMPILED_TREES is False
    monkeypatch.setenv("TWINNING_COMPILED_TREES", "1")
    assert Settings.from_env().COMPILED_TREES is True
