"""The benchmark commands run and print what the README's tables are made of (small, bounded runs)."""

from __future__ import annotations

import json
from typing import Any

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
    db = tmp_path / "search.db"
    args = ["bench", "search", "--level", "cities15000", "--db", str(db), "--clients", "2", "--requests", "20"]
    r = CliRunner().invoke(main, [*args, "--seconds", "5", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["level"] == "cities15000" and out["queries"] == 20 and db.exists()
    new, old = out["runs"]
    assert new["name"].startswith("name index") and old["name"].startswith("LIKE")
    assert new["requests"] == 20 and new["errors"] == 0 and new["p99_ms"] >= new["p50_ms"] > 0
