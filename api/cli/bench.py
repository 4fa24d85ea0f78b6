"""``twinning bench …``: benchmarks that compare against the obvious alternative in the same run.

Each prints a table, or one JSON object with ``--json``; the README's benchmark tables come from these commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from api.config import GAZETTEER_LEVELS


def _level_option(help: str) -> Any:
    """``--level``: a GeoNames level (default cities1000), for the benchmarks that build or seed their own data."""
    return click.option(
        "--level", default="cities1000", show_default=True, type=click.Choice(GAZETTEER_LEVELS), help=help
    )


@click.group("bench")
def bench_group() -> None:
    """Benchmarks (a table, or JSON with --json); the README's figures come from these commands."""


@bench_group.command("scoring")
@click.option("--queries", default=20, show_default=True, type=click.IntRange(1, 1000), help="Query cities.")
@click.option(
    "--loop-candidates",
    default=3000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Candidates the Python loop scores per query (its time is extrapolated to all candidates).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_scoring(queries: int, loop_candidates: int, as_json: bool) -> None:
    """Vectorised scoring of one city against every candidate, against a Python loop over pairs."""
    from api.cli.bench_scoring import format_table, run

    result = run(queries=queries, loop_candidates=loop_candidates)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


@bench_group.command("conference")
@click.option(
    "--scale",
    "scales",
    type=click.Choice(["real", "5x"]),
    multiple=True,
    help="Instance sizes: real = 50 delegations, 8 slots, 15 tables; 5x = 250, 16, 60 (default: both).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the generated instances (reproducible).")
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 3600),
    help="Solver time limit in seconds (default: 10 s at the real scale, 60 s at 5x).",
)
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object {"runs": [...]} instead of a table.')
def bench_conference(scales: tuple[str, ...], seed: int, time_limit: float | None, as_json: bool) -> None:
    """Conference one-to-one scheduling: the MILP (HiGHS) against the greedy scheduler on seeded instances.

    Reports solve time, objective, the solver's bound and gap, the objective over greedy's (percent), and the share
    of mutual must-meet wishes met.
    """
    from matcher.conference.bench import format_table, run_benchmark

    result = run_benchmark(scales=scales or ("real", "5x"), time_limit=time_limit, seed=seed)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


@bench_group.command("rescore")
@click.option(
    "--gazetteer",
    type=click.Choice(["cities1000", "cities15000"]),
    default="cities1000",
    show_default=True,
    help="GeoNames level to score over (cities1000: 170,391 places; cities15000: 34,006).",
)
@click.option("--cities", "n_cities", type=click.IntRange(100), help="Only the N most populous places of the level.")
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Partnerships to fit the model on (default: the level's network from seed/: 13,594 towns pairs for "
    "cities1000, 8,666 for cities15000).",
)
@click.option(
    "--workers",
    multiple=True,
    type=click.IntRange(1, 64),
    help="Forked scoring processes; repeatable to measure the scaling (default: 1 and 2).",
)
@click.option(
    "--sources",
    default=4000,
    show_default=True,
    type=click.IntRange(0),
    help="Sources re-scored (0 = every place); the full re-score time is extrapolated from their rate.",
)
@click.option("--k", default=20, show_default=True, type=click.IntRange(1, 200), help="Suggestions per source.")
@click.option("--batch", default=32, show_default=True, type=click.IntRange(1, 1024), help="Sources per batch.")
@click.option(
    "--through",
    type=click.Choice(["matcher", "celery"]),
    default="matcher",
    show_default=True,
    help="matcher: the scoring alone, in forked processes. celery: a whole re-scoring job of --cities places "
    "(default: every place) through a real Celery worker with W pool processes and a throwaway PostgreSQL "
    "database, written as a new score set.",
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="--through celery: a trained model to use (default: train one on the seeded network first).",
)
@click.option(
    "--time-limit",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(60),
    help="--through celery: stop waiting for the jobs after this many seconds in all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_rescore(
    gazetteer: str,
    n_cities: int | None,
    pairs_path: str | None,
    workers: tuple[int, ...],
    sources: int,
    k: int,
    batch: int,
    through: str,
    model: Path | None,
    time_limit: float,
    as_json: bool,
) -> None:
    """Re-scoring throughput and live suggest latency.

    --through matcher (default): fits the partnership-likelihood model, then times suggest() for single places
    (p50/p99) and suggest_many() over --sources places split over --workers processes: sources/s, ms per source,
    peak memory per worker, and the extrapolated time of a full re-score; compared with suggest() called once per
    source, and (with the re-ranker's trees compiled, as the service scores: TWINNING_COMPILED_TREES=1) with
    suggest_many() scoring the trees through scikit-learn. No database writes.

    --through celery: the production path end to end. Seeds a throwaway PostgreSQL database (twinning_bench_rescore,
    dropped afterwards) with the level, trains the model (or takes --model), then for each --workers W starts a
    Celery worker with W processes on Redis database 12 and times one re-scoring job of the --cities most populous
    places (default: all), top --k each, until its score set is published: places/s, rows/s, peak memory per
    process, minutes for every place, the speed-up from 1 to W workers and the same on paper for 10 machines.
    """
    if through == "celery":
        from api.cli.bench_rescore_e2e import format_table as e2e_table
        from api.cli.bench_rescore_e2e import run as e2e_run

        e2e = e2e_run(
            gazetteer=gazetteer,
            n_cities=n_cities,
            workers=workers or (1, 2),
            k=k,
            model=model,
            time_limit=time_limit,
            database="twinning_bench_rescore",
            redis_url="redis://127.0.0.1:6379/12",
            logs_dir=None,
        )
        click.echo(json.dumps(e2e, indent=2) if as_json else e2e_table(e2e))
        if not e2e["ok"]:
            raise SystemExit(1)
        return
    from api.cli.bench_rescore import format_table, run
    from api.cli.model import read_gazetteer
    from api.config import Settings
    from api.domain.training import likelihood_params
    from seed.readers import partnerships_file, read_pairs

    cities = read_gazetteer(gazetteer)
    pairs = read_pairs(pairs_path or partnerships_file(gazetteer))
    settings = Settings.from_env()
    compiled = settings.COMPILED_TREES  # as the service scores
    result = run(
        cities,
        pairs,
        model_params=likelihood_params(settings),
        n_cities=n_cities,
        sources=sources,
        workers=workers or (1, 2),
        k=k,
        batch=batch,
        compile_trees=compiled,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


@bench_group.command("load")
@click.option("--requests", "requests_n", default=10_000, show_default=True, type=click.IntRange(10, 1_000_000))
@click.option("--concurrency", default=50, show_default=True, type=click.IntRange(1, 500), help="Concurrent clients.")
@click.option(
    "--fault",
    type=click.Choice(["db", "redis", "none"]),
    default="db",
    show_default=True,
    help="The service cut for a while once a third of the requests are answered.",
)
@click.option("--fault-seconds", default=3.0, show_default=True, type=click.FloatRange(0.1, 60), help="How long.")
@click.option(
    "--time-limit",
    default=600.0,
    show_default=True,
    type=click.FloatRange(60, 3600),
    help="Hard limit in seconds for the whole run (set-up, load, drain, clean-up).",
)
@click.option("--database", default="twinning_bench_load", show_default=True, help="Throwaway database (dropped).")
@click.option(
    "--redis-url", default="redis://127.0.0.1:6379/13", show_default=True, help="Throwaway Redis database (emptied)."
)
@click.option("--logs", "logs_dir", type=click.Path(file_okay=False), help="Keep the servers' logs in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_load(
    requests_n: int,
    concurrency: int,
    fault: str,
    fault_seconds: float,
    time_limit: float,
    database: str,
    redis_url: str,
    logs_dir: str | None,
    as_json: bool,
) -> None:
    """A bounded load test: gunicorn, PostgreSQL, Redis and a Celery worker on loopback, mixed requests from
    concurrent clients, PostgreSQL or Redis cut mid-run; then the accounting of every write.

    Reports per request kind the count, statuses and p50/p95/p99 latency, requests/s, the 5xx inside and outside
    the fault window, and whether every write answered 2xx is stored, no refused write left a row and every
    re-scoring job finished. Exits 1 when any of that fails. PostgreSQL must accept user postgres or root on
    127.0.0.1:5432 without a password (the database given is created and dropped).
    """
    from api.cli.bench_load import format_table, run

    result = run(
        requests_n=requests_n,
        concurrency=concurrency,
        fault=fault,
        fault_seconds=fault_seconds,
        time_limit=time_limit,
        database=database,
        redis_url=redis_url,
        logs_dir=logs_dir,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
    if not result["ok"]:
        raise SystemExit(1)


@bench_group.command("search")
@_level_option("Gazetteer level of the benchmark database.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file (default var/bench/search-LEVEL.db; built once, then reused).",
)
@click.option("--clients", default=50, show_default=True, type=click.IntRange(1, 200), help="Concurrent clients.")
@click.option(
    "--requests", default=3000, show_default=True, type=click.IntRange(10, 100_000), help="Queries in the mix."
)
@click.option("--seconds", default=20.0, show_default=True, type=click.FloatRange(1, 600), help="Load time per row.")
@click.option("--seed", default=0, show_default=True, help="Seed of the query mix.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_search(
    level: str, db: Path | None, clients: int, requests: int, seconds: float, seed: int, as_json: bool
) -> None:
    """City search over every name (the name index) with its answer cache and the edge cache (a repeated read
    answered before Flask), measured twice (a first pass with nothing kept, then a second pass over the same
    queries: the steady state), with the answer cache alone, without either, and the former LIKE '%q%' scan:
    Twinning under gunicorn (2 workers x 4 threads) on loopback, loaded by wrk with concurrent connections cycling
    through the queries: p50/p90/p99, requests/s, the cache's hit rate, the load average."""
    from api.cli.bench_search import format_table, run

    result = run(level=level, db=db, clients=clients, requests=requests, seconds=seconds, seed=seed)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


@bench_group.command("first-start")
@_level_option("Gazetteer level the start seeds (TWINNING_GAZETTEER).")
@click.option(
    "--timeout", default=300.0, show_default=True, type=click.FloatRange(5, 3600), help="Give up on a start after."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_first_start(level: str, timeout: float, as_json: bool) -> None:
    """How soon `twinning serve` answers a city search on an empty folder (the embedded default's first start:
    seed, then serve; target under 30 s), against a second start on the same folder (the data there). Also the
    seed's own seconds and when the search's prefix pages, stored in the background, are there. Exits 1 when a
    start never served."""
    from api.cli.bench_first_start import format_table, run

    result = run(level=level, timeout=timeout)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
    if not result["valid"]:
        raise SystemExit(1)


@bench_group.command("api")
@click.option("--seconds", default=20.0, show_default=True, type=click.FloatRange(1, 600), help="Load time per app.")
@click.option("--clients", default=50, show_default=True, type=click.IntRange(1, 1000), help="Concurrent connections.")
@click.option(
    "--cities", "n_cities", default=10, show_default=True, type=click.IntRange(1, 1000), help="Cities asked in turn."
)
@click.option(
    "--level",
    default="cities1000",
    show_default=True,
    type=click.Choice(["cities1000", "cities15000"]),
    help="Gazetteer level of the benchmark database.",
)
@click.option(
    "--db",
    "db_kind",
    default="sqlite",
    show_default=True,
    type=click.Choice(["sqlite", "postgres"]),
    help="sqlite: a file under var/bench/ (built once, then reused); postgres: a throwaway database "
    "twinning_bench_api on 127.0.0.1:5432 (user postgres or root, created and dropped).",
)
@click.option(
    "--rescore",
    default="active",
    show_default=True,
    type=click.Choice(["active", "cities"]),
    help="The score set read: of every active city (as deployed; minutes to build, once per SQLite file) or of "
    "the --cities cities only (seconds).",
)
@click.option(
    "--sqlite-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file for --db sqlite (default var/bench/api-LEVEL.db).",
)
@click.option("--logs", "logs_dir", type=click.Path(file_okay=False), help="Keep the servers' logs in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_api(
    seconds: float,
    clients: int,
    n_cities: int,
    level: str,
    db_kind: str,
    rescore: str,
    sqlite_path: Path | None,
    logs_dir: str | None,
    as_json: bool,
) -> None:
    """Stored suggestions over HTTP against a minimal Flask app, both under gunicorn (2 workers x 4 threads) on
    loopback, loaded by wrk for --seconds each with --clients connections cycling through --cities cities' URLs.

    Prepares a database whose newest complete score set covers the N most populous active cities (seeded and
    re-scored with the app's own functions), checks each answer comes from that score set, then serves the same
    JSON documents from a minimal Flask app. Reports requests/s and p50/p75/p90/p99 of both, the ratios, and the
    targets (over 1,000 requests/s; p99 at most 2x the minimal app's). Needs wrk (apt-get install -y wrk). Exits
    1 when the run is invalid (errors, non-2xx answers, different body sizes), not when a target is missed.
    """
    from api.cli.bench_api import BenchError, format_table, run

    try:
        result = run(
            seconds=seconds,
            clients=clients,
            n_cities=n_cities,
            level=level,
            db=db_kind,
            rescore=rescore,
            sqlite_path=sqlite_path,
            logs_dir=logs_dir,
        )
    except BenchError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
    if not result["valid"]:
        raise SystemExit(1)
