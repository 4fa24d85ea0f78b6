"""``twinning evaluate`` and ``twinning train`` on a tiny real fixture (four countries of the shipped data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pytest
from click.testing import CliRunner

from api.cli import main
from seed.readers import read_cities, read_pairs
from tests.conftest import set_cli_env

FAST = '{"inner_folds": 2, "max_iter": 15, "n_candidates": 60, "cold_candidates": 20, "neg_per_source": 20}'


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval")
    cities = read_cities()
    cities = cities[cities.country.isin(["FR", "DE", "PL", "CZ"])]
    pairs = read_pairs()
    ids = set(cities.geonameid)
    pairs = pairs[pairs.geonameid_a.isin(ids) & pairs.geonameid_b.isin(ids)].sample(frac=1.0, random_state=1)
    cut = int(len(pairs) * 0.8)
    out = {"cities": d / "cities.csv", "train": d / "train.csv", "test": d / "test.csv", "pairs": d / "pairs.csv"}
    cities.to_csv(out["cities"], index=False)
    pairs.iloc[:cut].to_csv(out["train"], index=False)
    pairs.iloc[cut:].to_csv(out["test"], index=False)
    pairs.iloc[:300].to_csv(out["pairs"], index=False)
    return out


def test_evaluate_json_has_twinning_and_served_rows(
    fixture_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWINNING_TRAIN_PARAMS", FAST)
    f = fixture_files
    args = ["evaluate", "--train", str(f["train"]), "--test", str(f["test"]), "--cities", str(f["cities"])]
    r = CliRunner().invoke(main, [*args, "--max-test-pairs", "25", "--k", "10", "--k", "50", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{") :])
    rankers = out["rankers"]
    expected = {"twinning", "served", "random", "population", "popularity", "nearest", "adamic_adar"}
    assert expected <= set(rankers)
    assert out["queries"] == 50  # 25 held-out pairs, both directions
    for row in rankers.values():
        assert 0 <= row["hit@10"] <= row["hit@50"] <= 1 and 0 < row["mrr"] <= 1
    table = CliRunner().invoke(main, [*args, "--max-test-pairs", "10", "--ranker", "served", "--ranker", "population"])
    assert table.exit_code == 0, table.output
    assert "served" in table.output and "twinning" in table.output and "population" in table.output
    assert "adamic_adar" not in table.output


def test_evaluate_folds_reports_mean_and_std(fixture_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINNING_TRAIN_PARAMS", FAST)
    f = fixture_files
    r = CliRunner().invoke(
        main,
        ["evaluate", "--folds", "2", "--pairs", str(f["pairs"]), "--cities", str(f["cities"]), "--json"]
        + ["--ranker", "twinning", "--ranker", "population", "--max-test-pairs", "15"],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{") :])
    assert set(out["rankers"]) == {"twinning", "served", "population"}
    assert set(out["rankers"]["served"]["mrr"]) == {"mean", "std"} and len(out["per_fold"]) == 2
    # a line on stderr per fold as it lands (a fold of the towns network takes minutes), with the fold's figures
    lines = [ln for ln in r.stderr.splitlines() if " fold " in ln]
    assert [ln.split(" fold ")[1].split(" (")[0] for ln in lines] == ["0 of 0-1", "1 of 0-1"]
    first = out["per_fold"][0]["rankers"]["twinning"]
    assert f"twinning hit@10={first['hit@10']:.4f} hit@50={first['hit@50']:.4f} mrr={first['mrr']:.4f}" in lines[0]


def test_evaluate_refuses_unclear_input(fixture_files: dict[str, Path]) -> None:
    r = CliRunner().invoke(main, ["evaluate", "--train", str(fixture_files["train"])])
    assert r.exit_code == 2 and "--train and --test" in r.output
    r = CliRunner().invoke(main, ["evaluate", "--folds", "2", "--pairs", str(fixture_files["cities"])])
    assert r.exit_code == 2 and "lacks the column" in r.output


def test_train_saves_one_artifact_with_its_version(
    db_engine: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_cli_env(monkeypatch, database_url, tmp_path, TWINNING_TRAIN_PARAMS=FAST, TWINNING_JOBS_MODE="sync")
    out = tmp_path / "model.joblib"
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--no-rescore"])
    assert r.exit_code == 0, r.output
    meta = json.loads(r.output[r.output.index("{") :])
    assert out.exists() and meta["path"] == str(out)
    assert meta["version"].startswith("lk-") and meta["version"] != "lk-"
    loaded = joblib.load(out)
    assert loaded is not None


def test_evaluate_over_a_gazetteer_level_reports_the_small_place_subset() -> None:
    args = ["evaluate", "--gazetteer", "cities15000", "--folds", "5", "--fold", "1", "--max-test-pairs", "20"]
    r = CliRunner().invoke(main, [*args, "--ranker", "adamic_adar", "--small-population", "100000", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # the JSON alone on stdout; the fold's line goes to stderr
    assert out["folds_run"] == [1] and out["queries_per_fold"] == [40]
    sub = out["subsets"]["under_100000"]
    assert sub["population_under"] == 100000 and 0 < sub["queries_per_fold"][0] < 40
    assert set(sub["rankers"]) == {"adamic_adar"}
    bad = CliRunner().invoke(main, ["evaluate", "--gazetteer", "cities15000", "--cities", "x.csv", "--folds", "2"])
    assert bad.exit_code != 0


def test_evaluate_grouped_holdouts(fixture_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINNING_TRAIN_PARAMS", FAST)
    f = fixture_files
    args = ["evaluate", "--pairs", str(f["pairs"]), "--cities", str(f["cities"]), "--holdout", "country-pairs"]
    args += ["--holdout", "cold", "--pairs-top", "1", "--country-pair", "PL-DE", "--ranker", "served"]
    r = CliRunner().invoke(main, [*args, "--ranker", "population", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{") :])["holdouts"]
    cp = out["country-pairs"]
    assert [p["pair"] for p in cp["country_pairs"]][1:] == ["DE-PL"]
    assert cp["pooled"]["queries"] == sum(p["queries"] for p in cp["country_pairs"]) > 0
    assert set(cp["pooled"]["rankers"]) == {"twinning", "served", "population"}
    assert 0 <= cp["beats"]["hit@50"]["population"] <= 2
    cold = out["cold"]
    assert cold["share"] == 0.2 and cold["queries"] > 0
    assert {"source_cold", "target_cold", "under_15000"} <= set(cold["subsets"])
    table = CliRunner().invoke(main, [a for a in args if a != "--json"] + ["--ranker", "population"])
    assert table.exit_code == 0, table.output
    assert "DE-PL" in table.output and "pooled" in table.output and "subset target_cold" in table.output
    bad = CliRunner().invoke(main, [*args, "--folds", "2"])
    assert bad.exit_code == 2 and "--holdout replaces" in bad.output
    bad = CliRunner().invoke(main, [*args, "--country-pair", "USA"])
    assert bad.exit_code == 2
