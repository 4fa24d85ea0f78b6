"""``twinning bench search``: city search over every name of the cities1000 gazetteer, under concurrent load.

Builds (once) a SQLite database of the chosen gazetteer level with the seed loader, serves the real Flask app with
waitress on loopback, and drives it from a separate process with N client threads (keep-alive HTTP connections, no
think time: a saturation test) over a fixed, seeded mix of queries. The same run measures the obvious alternative:
the search before the name index (``search_name LIKE '%q%'`` over the cities, exact match first, then population),
patched into the same app, on the same queries.
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import statistics
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("var/bench/search-{level}.db")


def build_database(path: Path, level: str) -> tuple[str, float]:
    """A migrated and seeded SQLite database at ``path`` (kept between runs); the seconds the seed took (0 when
    it was there)."""
    from api.data.db import make_engine, migrate
    from api.data.seeding import is_seeded, load_all

    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    took = 0.0
    if not is_seeded(engine):
        t0 = time.perf_counter()
        load_all(engine, level=level, demo=False)
        took = time.perf_counter() - t0
    engine.dispose()
    return url, took


def query_mix(url: str, n: int, seed: int) -> list[str]:
    """``n`` queries: 40% a city's name as written, 20% another of its names (any script), 20% its name without
    accents, 20% the first 3–5 letters of a name (type-ahead); cities drawn uniformly, so mostly small towns."""
    from sqlalchemy import text

    from api.data.db import make_engine
    from api.data.text import fold

    rng = random.Random(seed)
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM city WHERE NOT is_custom"))]
        picked = rng.sample(ids, min(n, len(ids)))
        names: dict[int, list[tuple[str, int]]] = {}
        for start in range(0, len(picked), 500):
            chunk = picked[start : start + 500]
            for city_id, name, kind in conn.execute(
                text(
                    f"SELECT city_id, name, kind FROM cityname WHERE kind < 2 AND city_id IN ({','.join(map(str, chunk))})"
                )
            ):
                names.setdefault(city_id, []).append((name, kind))
    engine.dispose()
    out = []
    for city_id in picked:
        own = names.get(city_id) or []
        main = next((nm for nm, kind in own if kind == 0), None)
        alternates = [nm for nm, kind in own if kind == 1]
        if main is None:
            continue
        r = rng.random()
        if r < 0.4 or (r < 0.6 and not alternates):
            out.append(main)
        elif r < 0.6:
            out.append(rng.choice(alternates))
        elif r < 0.8:
            out.append(fold(main))
        else:
            out.append(main[: rng.randint(3, 5)])
    return out


def _client_process(port: int, queries: list[str], clients: int, seconds: float, out: Any) -> None:
    """Closed-loop clients: each thread sends its next query as soon as the last answer arrived."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(len(queries)))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            path = "/api/v1/cities?per_page=10&q=" + urllib.parse.quote(queries[i])
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"latencies": latencies, "errors": errors[0], "wall": time.perf_counter() - t0})


def _old_search(session: Any, **kw: Any) -> Any:
    """The search before this change: a substring scan of the cities' folded names (``LIKE '%q%'``)."""
    from sqlmodel import col, func, select

    from api.data.crud import CitySearch
    from api.data.models import City
    from api.data.text import fold

    needle = fold(kw.get("q") or "")
    stmt = select(City).where(col(City.search_name).contains(needle, autoescape=True))
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    order: list[Any] = [(col(City.search_name) == needle).desc(), col(City.population).desc(), col(City.id)]
    per_page = kw.get("per_page", 20)
    rows = session.exec(stmt.order_by(*order).offset((kw.get("page", 1) - 1) * per_page).limit(per_page)).all()
    return CitySearch(list(rows), int(count))


def _summary(name: str, res: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(res["latencies"])
    if not lat:
        return {"name": name, "requests": 0}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
    return {
        "name": name,
        "requests": len(lat),
        "errors": res["errors"],
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "requests_per_s": round(len(lat) / res["wall"], 1),
    }


def run(*, level: str, db: Path | None, clients: int, requests: int, seconds: float, seed: int) -> dict[str, Any]:
    import logging

    from waitress import create_server

    from api.data import crud
    from api.web.app import create_app

    path = db or Path(str(DEFAULT_DB).format(level=level))
    url, seed_s = build_database(path, level)
    queries = query_mix(url, requests, seed)
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "JOBS_MODE": "sync",
            "REDIS_URL": None,
            "MIGRATE_ON_START": False,
            "MODEL_PATH": str(path.with_suffix(".no-model")),
        }
    )
    logging.getLogger("waitress").setLevel(logging.ERROR)  # a saturation test: the queue is deep on purpose
    server = create_server(app, host="127.0.0.1", port=0, threads=8, ident="twinning-bench")
    port = server.socket.getsockname()[1]
    threading.Thread(target=server.run, daemon=True).start()
    runs: list[dict[str, Any]] = []
    original = crud.search_cities
    try:
        ctx = multiprocessing.get_context("spawn")
        for name, search in (("name index (this version)", original), ("LIKE '%q%' scan (before)", _old_search)):
            crud.search_cities = search  # the route calls crud.search_cities
            out = ctx.Queue()
            proc = ctx.Process(target=_client_process, args=(port, queries, clients, seconds, out))
            proc.start()
            res = out.get()
            proc.join()
            runs.append(_summary(name, res))
    finally:
        crud.search_cities = original
        server.close()
        app.extensions["twinning"].engine.dispose()
    return {
        "level": level,
        "database": str(path),
        "seed_seconds": round(seed_s, 1),
        "clients": clients,
        "queries": len(queries),
        "seconds_limit": seconds,
        "server": "waitress, 8 threads, loopback; clients in another process, closed loop",
        "runs": runs,
    }


def format_table(result: dict[str, Any]) -> str:
    head = (
        f"city search, {result['level']} ({result['database']}), {result['clients']} concurrent clients, "
        f"{result['queries']} queries (at most {result['seconds_limit']:g} s per row); {result['server']}"
    )
    lines = [head, f"{'search':<28} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}"]
    for r in result["runs"]:
        if not r["requests"]:
            lines.append(f"{r['name']:<28} {0:>8}")
            continue
        lines.append(
            f"{r['name']:<28} {r['requests']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} "
            f"{r['requests_per_s']:>8}"
        )
    return "\n".join(lines)
