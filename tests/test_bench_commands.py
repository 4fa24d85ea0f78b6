"""The benchmark commands run and print what the README's tables are made of (small, bounded runs)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main


def test_bench_scoring_json() -> None:
    r = CliRunner().invoke(main, ["bench", "scoring", "--queries", "2", "--loop-candidates", "50", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["candidates"] == 34006
    names = [m["method"] for m in out["methods"]]
    assert names[0].startswith("Python loop") and len(names) == 3
    assert all(m["ms_per_city"] > 0 for m in out["methods"])


def test_bench_conference_json_real_scale() -> None:
    r = CliRunner().invoke(main, ["bench", "conference", "--scale", "real", "--time-limit", "3", "--json"])
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.output)["runs"]
    assert (run["delegations"], run["slots"], run["tables"]) == (50, 8, 15)
    assert run["feasible"] and run["objective"] >= run["greedy_objective"]
    assert 0 <= run["gap"] <= 1 and run["objective"] <= run["bound"] + 1e-6


def test_bench_search_json(tmp_path: Any) -> None:
    """Five rows (the answer cache with the edge cache, twice on one server, and without it, no cache, the former
    LIKE scan), four gunicorn servers loaded by wrk; with a cache on, the 20 queries come round again and are
    answered from it, on the second pass nearly every one; off, never."""
    db = tmp_path / "search.db"
    args = ["bench", "search", "--level", "cities15000", "--db", str(db), "--clients", "2", "--requests", "20"]
    r = CliRunner().invoke(main, [*args, "--seconds", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["level"] == "cities15000" and out["queries"] == 20 and db.exists()
    cached, again, inside, uncached, old = out["runs"]
    assert cached["name"].endswith("edge cache") and inside["name"].endswith("no edge cache")
    # nearly every one: a gunicorn worker that got no connection in the first pass starts the second one cold
    assert again["name"].endswith("second pass") and again["cache_hit_rate"] > 0.9
    assert uncached["name"].endswith("cache off")
    assert old["name"].startswith("LIKE") and "gunicorn 2 workers x 4 threads" in out["server"]
    for row in out["runs"]:
        assert row["requests"] > 0 and row["non_2xx"] == 0 and row["socket_errors"] == 0, row
        assert row["p99_ms"] >= row["p50_ms"] > 0 and len(row["load_average_before"]) == 3
    assert cached["requests"] > 40 and cached["cache_hit_rate"] > 0.5 and inside["cache_hit_rate"] > 0.5
    assert uncached["cache_hit_rate"] == 0 and old["cache_hit_rate"] == 0


def test_bench_api_json(tmp_path: Any) -> None:
    """A tiny run: 3 cities of cities15000 re-scored into a SQLite file, 2 s of wrk per app; every answer read from
    the score set (the command refuses to go on otherwise), both apps answered every request with the same body."""
    db = tmp_path / "api.db"
    args = ["bench", "api", "--level", "cities15000", "--sqlite-path", str(db), "--cities", "3", "--rescore", "cities"]
    r = CliRunner().invoke(main, [*args, "--seconds", "2", "--clients", "4", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["stored"] is True and out["rescore"] == "cities" and len(out["cities"]) == 3 and db.exists()
    assert out["stored_rows"] == 3 * 20 and out["body_bytes"]["same"] and out["valid"]
    for app in ("twinning", "minimal"):
        s = out[app]
        assert s["requests"] > 0 and s["non_2xx"] == 0 and s["socket_errors"] == 0
        assert s["p99_ms"] >= s["p50_ms"] > 0 and s["requests_per_s"] > 0
    assert set(out["targets"]) == {"requests_per_s", "p99_vs_minimal"}
    assert out["ratios"]["p99"] > 0 and out["machine"]["cpus"] == os.cpu_count()


@pytest.mark.slow
def test_bench_first_start_json() -> None:
    """Two real starts of `twinning serve` in an empty folder (cities15000, the smallest whole level): the first
    seeds and serves, then stores the search's prefix pages in the background; the second finds the data there."""
    r = CliRunner().invoke(main, ["bench", "first-start", "--level", "cities15000", "--timeout", "180", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    first, second = out["first"], out["second"]
    assert out["valid"] and out["level"] == "cities15000"
    assert first["first_start"] and not second["first_start"]
    assert first["seed_s"] > 0 and second["seed_s"] is None
    assert 0 < first["serving_s"] < 180 and 0 < second["serving_s"] < 180
    assert first["prefix_pages_s"] is not None  # stored in the background after the seed
    assert any("Twinning is running" in line for _, line in first["lines"] + second["lines"])
