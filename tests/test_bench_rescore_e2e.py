"""`twinning bench rescore --through celery`: a whole re-scoring job through a real Celery worker and PostgreSQL,
on a small slice (a small model trained here, 300 places re-scored), and the figures the README's table uses."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from api.cli import main
from matcher.likelihood import PartnershipLikelihood
from seed.readers import partnerships_file, read_gazetteer, read_pairs


def test_bench_rescore_through_celery_small(tmp_path: Path) -> None:
    cities = read_gazetteer("cities15000", names=False).cities.sort_values("population", ascending=False).head(1500)
    pairs = read_pairs(partnerships_file("cities15000"))
    ids = set(cities["geonameid"].tolist())
    pairs = pairs[pairs.geonameid_a.isin(ids) & pairs.geonameid_b.isin(ids)]
    model = tmp_path / "model.joblib"
    PartnershipLikelihood().fit(cities, pairs).save(model)

    args = ["bench", "rescore", "--through", "celery", "--gazetteer", "cities15000", "--cities", "300"]
    r = CliRunner().invoke(main, [*args, "--workers", "1", "--k", "5", "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{") :])
    assert out["ok"] and out["sources"] == 300 and out["k"] == 5 and out["places"] >= 34_000
    (run,) = out["runs"]
    assert run["state"] == "succeeded" and run["places"] == 300 and run["rows"] == 300 * 5
    assert run["workers"] == 1 and len(run["peak_rss_mb_per_process"]) == 2  # the worker's main and pool process
    assert all(p > 50 for p in run["peak_rss_mb_per_process"]) and run["places_per_s"] > 0
