"""``twinning bench search``: city search over every name of the cities1000 gazetteer, under concurrent load.

Builds (once) a SQLite database of the chosen gazetteer level with the seed loader, serves Twinning as deployed
(gunicorn, 2 workers x 4 threads, the production entry point ``api.web.wsgi``; started by ``twinning bench api``'s
code) on loopback, and loads it with ``wrk`` (N keep-alive connections, no think time: a saturation test) cycling
through a fixed, seeded mix of queries, each wrk thread from its own place in the list. Four servers: the search
with its answer cache (``TWINNING_SEARCH_CACHE`` as configured; the hit rate is counted from each answer's
``X-Twinning-Cache`` header) and the edge cache that serves a repeated request before Flask
(:mod:`api.web.edge_cache`), measured twice: the first pass starts with nothing kept (each of the gunicorn workers
keeps its own answers, so every query is searched up to once per worker), the second runs the same queries again on
the same server (the steady state of a mix this size); the same without the edge cache (``TWINNING_EDGE_CACHE=0``:
a hit goes through Flask), without any cache (``TWINNING_SEARCH_CACHE=0``: every request searches), and the obvious
alternative, the search before the name index (``search_name LIKE '%q%'`` over the cities, exact match first, then
population; :mod:`api.cli.bench_search_like`), on the same queries.
"""

from __future__ import annotations

import random
import tempfile
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


# wrk: each thread starts at its own offset in the list (so that two threads do not send the same query at the same
# moment, which would make the second a cache hit), and counts the answers that came from the answer cache.
SEARCH_WRK = """
local paths = {%(paths)s}
local nthreads = %(threads)d
local started = 0
local all = {}
setup = function(thread)
  thread:set("offset", math.floor(#paths * started / nthreads))
  started = started + 1
  table.insert(all, thread)
end
init = function(args)
  i = offset
  hits = 0
  answers = 0
end
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  answers = answers + 1
  if headers["X-Twinning-Cache"] == "hit" then hits = hits + 1 end
end
function cache_counts()
  local h, n = 0, 0
  for _, t in ipairs(all) do
    h = h + t:get("hits")
    n = n + t:get("answers")
  end
  return string.format('{"cache_hits": %%d, "answers": %%d}', h, n)
end
"""

# (name, settings, WSGI app, name of a second pass over the same queries on the same server, or None)
ROWS: tuple[tuple[str, dict[str, str], str, str | None], ...] = (
    ("name index, answer cache and edge cache", {}, "api.web.wsgi:app", "the same, second pass"),
    ("name index, answer cache, no edge cache", {"TWINNING_EDGE_CACHE": "0"}, "api.web.wsgi:app", None),
    ("name index, answer cache off", {"TWINNING_SEARCH_CACHE": "0"}, "api.web.wsgi:app", None),
    ("LIKE '%q%' scan (before)", {"TWINNING_SEARCH_CACHE": "0"}, "api.cli.bench_search_like:app", None),
)


def _paths(queries: list[str], per_page: int = 10) -> list[str]:
    return [f"/api/v1/cities?per_page={per_page}&q=" + urllib.parse.quote(q) for q in queries]


def run(
    *,
    level: str,
    db: Path | None,
    clients: int,
    requests: int,
    seconds: float,
    seed: int,
    workers: int = 2,
    threads: int = 4,
) -> dict[str, Any]:
    from api.cli.bench_api import WRK_DONE, _machine, require_wrk, run_wrk, start_twinning, twinning_env
    from api.cli.bench_load import _stop

    wrk = require_wrk()
    path = db or Path(str(DEFAULT_DB).format(level=level))
    _, seed_s = build_database(path, level)
    url = f"sqlite:///{path.resolve()}"  # the servers run in the project's folder
    queries = query_mix(url, requests, seed)
    paths = _paths(queries)
    warm = _paths(query_mix(url, 200, seed + 1))  # other queries: the code is warm, the cache holds none of these
    runs: list[dict[str, Any]] = []
    procs: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="twinning-bench-search-") as tmp:
        work = Path(tmp)
        try:
            for name, settings, module, again in ROWS:
                env = twinning_env(url, level, work / "no-model.joblib", **settings)
                base = start_twinning(procs, env, workers, threads, work / "server.log", module=module)
                run_wrk(wrk, base, warm, min(1.0, seconds), clients, work)
                for row in (name, again) if again else (name,):
                    res = run_wrk(
                        wrk, base, paths, seconds, clients, work, template=SEARCH_WRK + WRK_DONE, extra="cache_counts()"
                    )
                    counts = res.pop("extra") or {}
                    answered = counts.get("answers") or 0
                    res["cache_hit_rate"] = round(counts.get("cache_hits", 0) / answered, 3) if answered else None
                    runs.append({"name": row, **res})
                _stop(procs.pop())
        finally:
            for proc in reversed(procs):
                _stop(proc)
    return {
        "level": level,
        "database": str(path),
        "seed_seconds": round(seed_s, 1),
        "clients": clients,
        "queries": len(queries),
        "seconds": seconds,
        "server": f"gunicorn {workers} workers x {threads} threads (api.web.wsgi), loopback; wrk, "
        f"{min(2, clients)} threads, {clients} connections, cycling through the queries",
        "runs": runs,
        "machine": _machine(),
    }


def format_table(result: dict[str, Any]) -> str:
    head = (
        f"city search, {result['level']} ({result['database']}), {result['clients']} concurrent clients, "
        f"{result['queries']} queries, {result['seconds']:g} s per row; {result['server']}"
    )
    lines = [
        head,
        f"{'search':<30} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'hits':>6}  "
        "load avg (1 min) before/after  errors",
    ]
    for r in result["runs"]:
        hits = "-" if r["cache_hit_rate"] is None else f"{r['cache_hit_rate']:.0%}"
        lines.append(
            f"{r['name']:<30} {r['requests']:>8} {r['requests_per_s']:>8} {r['p50_ms']:>8} {r['p90_ms']:>8} "
            f"{r['p99_ms']:>8} {hits:>6}  {r['load_average_before'][0]:>5} / {r['load_average_after'][0]:<22} "
            f"non-2xx {r['non_2xx']}, socket {r['socket_errors']}"
        )
    return "\n".join(lines)
