"""``twinning bench api``: stored suggestions over HTTP against a minimal Flask app, both under the same gunicorn.

It prepares a database whose newest complete score set covers N active cities (the app's own migrations, seed
loader and re-scoring job; a SQLite file under ``var/bench/`` kept between runs, or a throwaway PostgreSQL database
created and dropped here), starts Twinning under gunicorn on loopback, fetches each city's suggestions once (the
answers must come from the score set, not be computed live), then starts a minimal Flask app under the same
gunicorn settings that answers every one of those URLs with the same JSON document (so the same bytes, encoded per
request by Flask), and loads each with ``wrk`` for the same time, cycling through the N cities' URLs. It reports
requests/s and latency percentiles of both and the ratios, against the targets: over 1,000 requests/s, p99 within
2× the minimal app's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE = Path("var/bench/api-{level}.db")
PG_DATABASE = "twinning_bench_api"
TARGET_RPS = 1000.0
TARGET_P99_RATIO = 2.0
K = 10  # suggestions per request, as the measurement (the API's default k is 10)
WRK_INSTALL = "wrk is not installed: on Debian/Ubuntu run `apt-get install -y wrk` (scripts/test.sh installs it)"

# The minimal app: the same URLs, each answered with the JSON document Twinning answered for it (loaded once at
# start), encoded by Flask on every request, key order kept as Twinning's (sort_keys off).
MINIMAL_APP = '''"""A minimal Flask app for ``twinning bench api``: answers each suggestions URL with a fixed JSON document."""
import json
import os

from flask import Flask

app = Flask(__name__)
app.json.sort_keys = False
with open(os.environ["BENCH_DOCUMENTS"], encoding="utf-8") as f:
    DOCUMENTS = {int(k): v for k, v in json.load(f).items()}


@app.get("/api/v1/cities/<int:city_id>/suggestions")
def suggestions(city_id):
    return DOCUMENTS[city_id]
'''

# wrk: each connection takes the next URL of the list; done() prints the figures as one JSON line (``%(extra)s``: a
# Lua expression giving the JSON text of the script's own counts, ``"null"`` for none).
WRK_ROTATE = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect_errors": %%d, "read_errors": %%d, '
    .. '"write_errors": %%d, "status_errors": %%d, "timeouts": %%d, "p50_us": %%d, "p75_us": %%d, "p90_us": %%d, '
    .. '"p99_us": %%d, "max_us": %%d, "mean_us": %%.1f, "extra": %%s}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, %(extra)s))
end
"""
WRK_SCRIPT = WRK_ROTATE + WRK_DONE


class BenchError(RuntimeError):
    """The benchmark could not run (wrk missing, a server did not start, an answer was not stored…)."""


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(WRK_INSTALL)
    return path


# ---------------------------------------------------------------------------------------------------- database
def _engine(url: str) -> Any:
    from api.data.db import make_engine

    return make_engine(url)


def seed_database(url: str, level: str) -> float:
    """Migrate and, when empty, seed ``url`` at ``level`` (no demo conference needed; demo profiles kept so that
    cities have profiles). Returns the seconds the seed took (0 when it was there)."""
    from api.data.db import migrate
    from api.data.seeding import is_seeded, load_all

    engine = _engine(url)
    try:
        migrate(engine)
        if is_seeded(engine):
            return 0.0
        t0 = time.perf_counter()
        load_all(engine, level=level)
        return time.perf_counter() - t0
    finally:
        engine.dispose()


def pick_cities(url: str, n: int) -> list[int]:
    """The ``n`` most populous active cities (with a profile or a partnership): those users ask about."""
    from sqlmodel import Session

    from api.data import crud

    engine = _engine(url)
    try:
        with Session(engine) as session:
            active = crud.active_city_ids(session)
            pops = {c.id: c.population for c in crud.cities_by_id(session, ids=active).values()}
    finally:
        engine.dispose()
    ranked = sorted(pops, key=lambda i: (-(pops[i] or 0), i))
    if len(ranked) < n:
        raise BenchError(f"the database has only {len(ranked)} active cities, fewer than --cities {n}")
    return ranked[:n]


def ensure_score_set(url: str, level: str, city_ids: list[int], model_path: Path, scope: str) -> tuple[int, float]:
    """A complete score set covering every city of ``city_ids`` (re-scored with the app's own job when the newest
    set misses one): of every active city (``scope="active"``, what a deployment reads from: the suggestion table
    holds ~20 rows per active city) or of just these cities (``"cities"``: quick). Returns the score set's id and
    the seconds the re-scoring took (0 when none was needed)."""
    from sqlmodel import Session

    from api.config import Settings
    from api.data import crud
    from api.domain import jobs
    from api.domain.scoring import MatcherService

    settings = Settings.from_env(
        DATABASE_URL=url, MODEL_PATH=str(model_path), REDIS_URL=None, JOBS_MODE="sync", GAZETTEER=level
    )
    engine = _engine(url)
    try:

        def covering() -> set[int | None]:
            with Session(engine) as session:
                sets = [crud.latest_score_set_for_city(session, city_id=c) for c in city_ids]
            return {s.id if s is not None and s.k >= K else None for s in sets}

        found = covering()
        if None not in found and len(found) == 1:
            return int(next(iter(found)) or 0), 0.0
        t0 = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            ids = city_ids if scope == "cities" else None
            job = jobs.create_job(session, kind="rescore", city_ids=ids, scope="active")
            session.commit()
            job_id = job.id
        jobs.run_inline(engine, settings, MatcherService(settings, engine), job_id)
        took = time.perf_counter() - t0
        with Session(engine) as session:
            job = crud.get_job(session, job_id=job_id)
            if job.state != "succeeded" or job.score_set_id is None:
                raise BenchError(f"the re-scoring job ended {job.state}: {job.error}")
            set_id = int(job.score_set_id)
        if covering() != {set_id}:
            raise BenchError("the new score set does not cover every benchmark city")
        return set_id, took
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------- servers
def _gunicorn(module: str, port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        module,
    ]


def twinning_env(url: str, level: str, model_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a Twinning server on ``url`` (``settings``: more ``TWINNING_…`` variables): no start-up
    work (the database is ready), jobs in-process, no Redis."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url,
            "SECRET_KEY": secrets.token_hex(16),
            "TWINNING_GAZETTEER": level,
            "TWINNING_MODEL_PATH": str(model_path),
            "TWINNING_MIGRATE_ON_START": "0",
            "TWINNING_SEED_ON_START": "0",
            "TWINNING_TRAIN_ON_START": "0",
            "TWINNING_JOBS_MODE": "sync",
            **settings,
        }
    )
    return env


def start_twinning(
    procs: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    workers: int,
    threads: int,
    log: Path,
    module: str = "api.web.wsgi:app",
) -> str:
    """Start Twinning under gunicorn on a free loopback port, as deployed (``module``: the production entry point,
    which freezes start-up's objects out of the collector), and wait until it answers; appends the process to
    ``procs`` (the caller stops it) and returns the base URL."""
    from api.cli.bench_load import _start, free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs.append(_start(_gunicorn(module, port, workers, threads), env, log))
    _wait_ready(base + "/healthz", procs[-1], log)
    return base


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    from api.cli.bench_load import BenchError as LoadError
    from api.cli.bench_load import _wait_http

    try:
        _wait_http(url, proc, log, timeout)
    except LoadError as e:
        raise BenchError(str(e)) from e


def fetch_documents(base: str, city_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each city's suggestions as Twinning answers them (also the warm-up of the connection pools)."""
    import requests

    out: dict[int, dict[str, Any]] = {}
    for city in city_ids:
        for _ in range(2):  # once per gunicorn worker, likely
            r = requests.get(f"{base}/api/v1/cities/{city}/suggestions?k={K}", timeout=120)
            if r.status_code != 200:
                raise BenchError(f"city {city}: suggestions answered {r.status_code}: {r.text[:300]}")
        doc = r.json()
        if doc["score_set"].get("live", True):
            raise BenchError(f"city {city}: the answer was computed live, not read from the score set")
        out[city] = doc
    return out


def body_sizes(base: str, city_ids: list[int]) -> dict[int, int]:
    import requests

    return {c: len(requests.get(f"{base}/api/v1/cities/{c}/suggestions?k={K}", timeout=30).content) for c in city_ids}


def wrk_threads(clients: int) -> int:
    return max(1, min(2, clients))


def run_wrk(
    wrk: str,
    base: str,
    paths: list[str],
    seconds: float,
    clients: int,
    script_dir: Path,
    template: str = WRK_SCRIPT,
    extra: str = '"null"',
) -> dict[str, Any]:
    """Load ``base`` with wrk for ``seconds`` through ``clients`` connections, cycling through ``paths`` by the
    Lua ``template`` (``%(paths)s``: the quoted paths; ``%(threads)d``: wrk's threads; ``%(extra)s``: the Lua
    expression ``extra``); the figures, with the template's own counts (``extra``'s JSON) under ``extra``."""
    script = script_dir / "rotate.lua"
    threads = wrk_threads(clients)
    quoted = ", ".join(json.dumps(p) for p in paths)
    script.write_text(template % {"paths": quoted, "threads": threads, "extra": extra})
    load_before = [round(x, 2) for x in os.getloadavg()]
    cmd = [wrk, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--latency"]
    cmd += ["--timeout", "10s", "-s", str(script), base]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "requests": raw["requests"],
        "seconds": round(duration, 2),
        "requests_per_s": round(raw["requests"] / duration, 1) if duration else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p75_ms": round(raw["p75_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "non_2xx": raw["status_errors"],
        "socket_errors": errors,
        "bytes_per_answer": round(raw["bytes"] / raw["requests"]) if raw["requests"] else 0,  # with the headers
        "extra": raw.get("extra"),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------------------------------- the run
def run(
    *,
    seconds: float = 20.0,
    clients: int = 50,
    n_cities: int = 10,
    level: str = "cities1000",
    db: str = "sqlite",
    rescore: str = "active",
    sqlite_path: Path | None = None,
    workers: int = 2,
    threads: int = 4,
    logs_dir: str | None = None,
) -> dict[str, Any]:
    """Prepare, serve, load both apps, clean up; the result as a dict."""
    from api.cli.bench_load import _admin_exec, _start, _stop, admin_user, free_port

    wrk = require_wrk()
    t_begin = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory(prefix="twinning-bench-api-")
    work = Path(tmp.name)
    logs = Path(logs_dir) if logs_dir else work
    logs.mkdir(parents=True, exist_ok=True)
    pg_user: str | None = None
    # SIGTERM (and SIGHUP) end the run like Ctrl-C does: through the clean-up below.
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for s in previous:
        signal.signal(s, interrupted)
    try:
        if db == "postgres":
            pg_user = admin_user()
            _admin_exec(pg_user, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            _admin_exec(pg_user, f'CREATE DATABASE "{PG_DATABASE}"')
            url = f"postgresql+psycopg://{pg_user}@127.0.0.1:5432/{PG_DATABASE}"
            where = f"PostgreSQL {PG_DATABASE} (throwaway)"
        else:
            path = sqlite_path or Path(str(DEFAULT_SQLITE).format(level=level))
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{path.resolve()}"
            where = f"SQLite {path}"
        seed_s = seed_database(url, level)
        model_path = work / "no-model.joblib"  # the profile and gazetteer components only: stored reads are alike
        city_ids = pick_cities(url, n_cities)
        score_set_id, rescore_s = ensure_score_set(url, level, city_ids, model_path, rescore)
        t_ready = time.monotonic()

        env = twinning_env(url, level, model_path)
        paths = [f"/api/v1/cities/{c}/suggestions?k={K}" for c in city_ids]
        warm = min(2.0, seconds)
        gunicorn = f"{workers} workers x {threads} threads (gthread), loopback"

        base = start_twinning(procs, env, workers, threads, logs / "twinning.log")
        documents = fetch_documents(base, city_ids)
        run_wrk(wrk, base, paths, warm, clients, work)  # warm-up, not counted
        twinning = run_wrk(wrk, base, paths, seconds, clients, work)
        sizes = body_sizes(base, city_ids)
        _stop(procs.pop())

        (work / "documents.json").write_text(json.dumps({str(c): d for c, d in documents.items()}))
        (work / "bench_minimal_app.py").write_text(MINIMAL_APP)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        minimal_env = {**env, "PYTHONPATH": str(work), "BENCH_DOCUMENTS": str(work / "documents.json")}
        minimal_cmd = _gunicorn("bench_minimal_app:app", port, workers, threads)
        procs.append(_start(minimal_cmd, minimal_env, logs / "minimal.log"))
        _wait_ready(base + paths[0].split("?")[0], procs[-1], logs / "minimal.log")
        minimal_sizes = body_sizes(base, city_ids)
        run_wrk(wrk, base, paths, warm, clients, work)
        minimal = run_wrk(wrk, base, paths, seconds, clients, work)
        _stop(procs.pop())

        rps_ratio = twinning["requests_per_s"] / minimal["requests_per_s"] if minimal["requests_per_s"] else 0.0
        p99_ratio = twinning["p99_ms"] / minimal["p99_ms"] if minimal["p99_ms"] else float("inf")
        valid = not (twinning["non_2xx"] or twinning["socket_errors"] or minimal["non_2xx"] or minimal["socket_errors"])
        return {
            "command": "twinning bench api",
            "level": level,
            "database": where,
            "cities": city_ids,
            "score_set": score_set_id,
            "rescore": rescore,
            "stored_rows": _count_rows(url),
            "stored": all(d["score_set"]["live"] is False for d in documents.values()),  # (else fetch_documents raised)
            "k": K,
            "seconds": seconds,
            "clients": clients,
            "gunicorn": gunicorn,
            "client": f"wrk, {min(2, clients)} threads, {clients} connections, cycling through the cities' URLs",
            "setup_s": round(t_ready - t_begin, 1),
            "seed_s": round(seed_s, 1),
            "rescore_s": round(rescore_s, 1),
            "body_bytes": {"twinning": sizes, "minimal": minimal_sizes, "same": sizes == minimal_sizes},
            "twinning": twinning,
            "minimal": minimal,
            "ratios": {"requests_per_s": round(rps_ratio, 3), "p99": round(p99_ratio, 2)},
            "targets": {
                "requests_per_s": {"target": f"> {TARGET_RPS:g}", "pass": twinning["requests_per_s"] > TARGET_RPS},
                "p99_vs_minimal": {"target": f"<= {TARGET_P99_RATIO:g}x", "pass": p99_ratio <= TARGET_P99_RATIO},
            },
            "valid": valid and sizes == minimal_sizes,
            "machine": _machine(),
        }
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if pg_user is not None:
            with contextlib.suppress(Exception):
                _admin_exec(pg_user, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        tmp.cleanup()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _count_rows(url: str) -> int:
    from sqlalchemy import func, select

    from api.data.models import Suggestion

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Suggestion)).scalar_one())
    finally:
        engine.dispose()


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": model, "load_average": [round(x, 2) for x in os.getloadavg()]}


def format_table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"stored suggestions (k={r['k']}) of {len(r['cities'])} cities ({r['level']}, {r['database']}, score set "
        f"{r['score_set']} of {r['rescore']} cities, {r['stored_rows']:,} stored rows), {r['clients']} concurrent clients, {r['seconds']:g} s per app; gunicorn {r['gunicorn']}",
        f"{r['client']}; machine: {m['cpus']} CPUs ({m['cpu']})",
        "",
        f"{'app':<34} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'bytes':>7}  {'load avg (1 min) before/after':<30} errors",
    ]
    for name, s in (("Twinning (stored suggestions)", r["twinning"]), ("minimal Flask app, same JSON", r["minimal"])):
        lines.append(
            f"{name:<34} {s['requests']:>8} {s['requests_per_s']:>8} {s['p50_ms']:>8} {s['p90_ms']:>8} "
            f"{s['p99_ms']:>8} {s['bytes_per_answer']:>7}  "
            f"{s['load_average_before'][0]:>5} / {s['load_average_after'][0]:<22} non-2xx {s['non_2xx']}, socket {s['socket_errors']}"
        )
    t = r["targets"]
    lines += [
        "",
        f"Twinning / minimal: requests/s {r['ratios']['requests_per_s']:.2f}x, p99 {r['ratios']['p99']:.2f}x",
        f"target requests/s {t['requests_per_s']['target']}: {'pass' if t['requests_per_s']['pass'] else 'FAIL'}; "
        f"target p99 {t['p99_vs_minimal']['target']} the minimal app's: "
        f"{'pass' if t['p99_vs_minimal']['pass'] else 'FAIL'}",
    ]
    if not r["valid"]:
        lines.append("INVALID RUN: errors or different body sizes (see --json)")
    return "\n".join(lines)
