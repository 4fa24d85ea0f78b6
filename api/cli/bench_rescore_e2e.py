"""``twinning bench rescore --through celery``: a whole re-scoring job as production runs it.

A throwaway PostgreSQL database (created, migrated and seeded with the app's own functions, dropped afterwards), a
partnership-likelihood model (trained here on the seeded network, or ``--model``), and a real Celery worker on a
throwaway Redis database with W pool processes. The job is submitted as the API submits it, fans out in chunks over
the queue, and writes every place's top k into a new score set (``COPY`` on PostgreSQL). Measured per W: wall time
from submission to the published set, places and rows per second, the peak resident memory of each worker
process, and the time a re-score of every place of the level would take at that rate. Run with W = 1 and 2, the
rows show how the work scales with workers (the obvious alternative: one worker).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from api.cli.bench_load import (
    PG_HOST,
    PG_PORT,
    ROOT,
    BenchError,
    _admin_exec,
    _start,
    _stop,
    _tail,
    _wait_worker,
    admin_user,
)
from api.cli.bench_rescore import _rss_peak_mb, machine

POLL_S = 1.0


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def run(
    *,
    gazetteer: str,
    n_cities: int | None,
    workers: tuple[int, ...],
    k: int,
    model: Path | None,
    time_limit: float,
    database: str,
    redis_url: str,
    logs_dir: str | None,
    progress: bool = True,
) -> dict[str, Any]:
    """Seed, train (unless ``model``), then one re-scoring job per worker count; returns a JSON-ready dict."""
    import redis as redis_lib
    from sqlmodel import Session
    from tqdm import tqdm

    from api.config import Settings
    from api.data import crud
    from api.data.db import make_engine, migrate
    from api.data.seeding import load_all
    from api.domain.services import build_services
    from api.domain.training import train

    t_begin = time.monotonic()
    user = admin_user()
    url = f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{database}"
    tmp = tempfile.TemporaryDirectory(prefix="twinning-bench-rescore-")
    logs = Path(logs_dir or tmp.name)
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-rescore",
        "TWINNING_GAZETTEER": gazetteer,
        "TWINNING_MODEL_PATH": str(model or (Path(tmp.name) / "model.joblib")),
        "TWINNING_STORED_SUGGESTIONS": str(k),
        "TWINNING_JOBS_MODE": "celery",
        "TWINNING_MIGRATE_ON_START": "0",
        "TWINNING_SEED_ON_START": "0",
        "TWINNING_TRAIN_ON_START": "0",
    }
    overrides = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "GAZETTEER": gazetteer,
        "MODEL_PATH": env["TWINNING_MODEL_PATH"],
        "STORED_SUGGESTIONS": k,
        "JOBS_MODE": "celery",
    }
    settings = Settings.from_env(**overrides)
    rclient = redis_lib.Redis.from_url(redis_url, socket_timeout=5)
    engine = None
    result: dict[str, Any] = {
        "level": "end to end: a re-scoring job through Celery and PostgreSQL (COPY writes), as the API submits it",
        "machine": machine(),
        "gazetteer": gazetteer,
        "k": k,
        "chunk": settings.RESCORE_CHUNK,
        "runs": [],
    }
    try:
        _admin_exec(user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _admin_exec(user, f'CREATE DATABASE "{database}"')
        engine = make_engine(url)
        migrate(engine)
        t0 = time.perf_counter()
        report = load_all(engine, level=gazetteer)
        result["seed_s"] = round(time.perf_counter() - t0, 1)
        result["places"] = report.cities
        if model is None:
            meta = train(engine, settings)
            result["train_s"] = meta.get("fit_seconds")
        with Session(engine) as session:
            ids: list[int] | None = None  # every place: the job's scope "all"
            n_sources = len(crud.all_city_ids(session))
            if n_cities is not None and n_cities < n_sources:
                rows = session.execute(
                    text("SELECT id FROM city ORDER BY population DESC, id LIMIT :n"), {"n": n_cities}
                ).all()
                ids = sorted(int(r[0]) for r in rows)
                n_sources = len(ids)
        result["sources"] = n_sources
        svc = build_services(settings, engine)
        for w in workers:
            if time.monotonic() - t_begin > time_limit:
                result["runs"].append({"workers": w, "skipped": "the time limit was reached"})
                continue
            rclient.flushdb()
            log = logs / f"worker-{w}.log"
            cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "twinning"]
            cmd += ["-P", "prefork", "-c", str(w), "-n", f"bench-rescore-{w}@%h", "--without-gossip"]
            cmd += ["--without-mingle", "-l", "INFO"]
            proc = _start(cmd, env, log)
            try:
                _wait_worker(proc, log, timeout=120)
                with Session(engine) as session:
                    t0 = time.perf_counter()
                    job_id = svc.submit(session, kind="rescore", city_ids=ids, scope="all").id
                bar = tqdm(total=n_sources, desc=f"{w} worker(s)", unit="place", disable=not progress, file=sys.stderr)
                state, done, score_set, error = "queued", 0, None, None
                while time.monotonic() - t_begin < time_limit:
                    time.sleep(POLL_S)
                    with Session(engine) as session:
                        job = crud.get_job(session, job_id=job_id)
                        state, score_set, error = job.state, job.score_set_id, job.error
                        bar.update(job.done - done)
                        done = job.done
                    if state in {"succeeded", "failed"}:
                        break
                    if proc.poll() is not None:
                        raise BenchError(f"the Celery worker exited ({proc.returncode}):\n{_tail(log)}")
                seconds = time.perf_counter() - t0
                bar.close()
                peaks = sorted((_rss_peak_mb(p) for p in _descendants(proc.pid)), reverse=True)
                with engine.connect() as conn:
                    n_rows = conn.execute(
                        text("SELECT count(*) FROM suggestion WHERE score_set_id = :s"), {"s": score_set}
                    ).scalar_one()
            finally:
                _stop(proc)
            rate = done / seconds if seconds else 0.0
            result["runs"].append(
                {
                    "workers": w,
                    "state": state,
                    "places": done,
                    "rows": int(n_rows),
                    "seconds": round(seconds, 1),
                    "places_per_s": round(rate, 1),
                    "rows_per_s": round(n_rows / seconds, 1) if seconds else 0.0,
                    "peak_rss_mb_per_process": [round(p) for p in peaks],
                    "full_level_minutes": round(report.cities / rate / 60, 1) if rate else None,
                    **({"error": error} if error else {}),
                }
            )
        done_runs = [r for r in result["runs"] if r.get("state") == "succeeded"]
        if len(done_runs) >= 2:
            one, most = done_runs[0], done_runs[-1]
            result["speedup"] = round(most["places_per_s"] / one["places_per_s"], 2)
            per_worker = most["places_per_s"] / most["workers"]
            result["on_paper_10_machines_x_2_workers_minutes"] = round(report.cities / (per_worker * 20) / 60, 1)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        result["ok"] = bool(done_runs) and len(done_runs) == len(result["runs"])
        return result
    finally:
        rclient.flushdb()
        rclient.close()
        if engine is not None:
            engine.dispose()
        _admin_exec(user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        tmp.cleanup()


def format_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        result["level"],
        f"{result['places']} places ({result['gazetteer']}), {result['sources']} re-scored, top {result['k']} each, "
        f"chunks of {result['chunk']}; seed {result.get('seed_s')} s, train {result.get('train_s', '-')} s",
        f"machine: {m.get('cpu')}, {m.get('cores')} cores; load average at the start {m.get('load_average')}, at the end {result.get('load_average')}",
        "",
        f"{'workers':>7}  {'state':<9} {'places':>8} {'rows':>10} {'seconds':>8} {'places/s':>9} {'rows/s':>9} "
        f"{'peak MB/process':<22} {'all places, min':>15}",
    ]
    for r in result["runs"]:
        if "skipped" in r:
            lines.append(f"{r['workers']:>7}  skipped: {r['skipped']}")
            continue
        peaks = ",".join(str(p) for p in r["peak_rss_mb_per_process"][:4])
        lines.append(
            f"{r['workers']:>7}  {r['state']:<9} {r['places']:>8} {r['rows']:>10} {r['seconds']:>8} "
            f"{r['places_per_s']:>9} {r['rows_per_s']:>9} {peaks:<22} {r['full_level_minutes']!s:>15}"
        )
        if r.get("error"):
            lines.append(f"         the job failed: {r['error']}")
    if "speedup" in result:
        lines += [
            "",
            f"speed-up from 1 to {result['runs'][-1]['workers']} workers: {result['speedup']}x; on paper, 10 machines "
            f"x 2 workers at the same rate per worker: {result['on_paper_10_machines_x_2_workers_minutes']} min for "
            "every place (PostgreSQL's write rate then bounds it)",
        ]
    return "\n".join(lines)
