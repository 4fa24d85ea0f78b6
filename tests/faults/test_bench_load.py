"""``twinning bench load``, tiny: real gunicorn, PostgreSQL, Redis and a Celery worker, PostgreSQL cut for a second
mid-run. Inside the window only 503, outside no 5xx, and the books balance afterwards."""

from __future__ import annotations

import json
import time

from api.cli.bench_load import run
from tests.conftest import REDIS_URL, TEST_DB


def test_a_tiny_load_run_with_a_database_cut_keeps_its_books() -> None:
    t0 = time.monotonic()
    r = run(
        requests_n=200,
        concurrency=8,
        fault="db",
        fault_seconds=1.0,
        time_limit=120,
        database=f"{TEST_DB}_bench",
        redis_url=REDIS_URL,
    )
    summary = json.dumps(
        {k: r[k] for k in ("accounting", "sent", "all", "fault", "errors_inside_window", "outside_examples", "ok")}
    )
    assert r["sent"] == 200 and not r["truncated"], summary
    assert r["fault"]["seconds"] >= 1.0 and r["inside_window"] > 0, summary
    assert r["five_xx_outside"] == 0 and r["no_answer"] == 0, summary
    assert set(r["errors_inside_window"]) <= {"503"}, summary
    accounting = r["accounting"]
    assert accounting["ok"], summary
    assert accounting["profiles"]["edited_cities"] > 0 and accounting["matches"]["acknowledged"] > 0, summary
    assert accounting["jobs"]["stuck"] == 0 and accounting["jobs"]["acknowledged"] > 0, summary
    assert r["ok"], summary
    assert time.monotonic() - t0 < 120
