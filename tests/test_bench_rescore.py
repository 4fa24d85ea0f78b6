"""`twinning bench rescore` runs end to end on a small slice and prints the figures the README's table uses."""

from __future__ import annotations

import json

from click.testing import CliRunner

from api.cli import main


def test_bench_rescore_json_small_slice() -> None:
    args = ["bench", "rescore", "--gazetteer", "cities15000", "--cities", "1500", "--sources", "60", "--workers", "2"]
    r = CliRunner().invoke(main, [*args, "--k", "5", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["cities"] == 1500 and out["workers"] == [2] and out["k"] == 5
    assert out["level"].startswith("matcher")
    (run,) = out["rescore"]
    assert run["sources"] == 60 and run["workers"] == 2 and len(run["peak_rss_mb_per_worker"]) == 2
    assert out["live_suggest_ms"]["p99"] >= out["live_suggest_ms"]["p50"] > 0
    assert out["one_at_a_time"]["suggest_ms_per_source"] > 0
    assert out["machine"]["cores"] >= 1 and out["train"]["seconds"] > 0
