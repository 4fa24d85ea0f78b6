"""``twinning bench …``: benchmarks that compare against the obvious alternative in the same run.

Each prints a table, or one JSON object with ``--json``; the README's benchmark tables come from these commands.
"""

from __future__ import annotations

import json

import click


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
    help="Partnerships to fit the model on (default: the shipped seed/partnerships_train.csv).",
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_rescore(
    gazetteer: str,
    n_cities: int | None,
    pairs_path: str | None,
    workers: tuple[int, ...],
    sources: int,
    k: int,
    batch: int,
    as_json: bool,
) -> None:
    """Re-scoring throughput at the matcher level (suggest_many in W forked processes) and live suggest latency.

    Fits the partnership-likelihood model, then times suggest() for single places (p50/p99) and suggest_many()
    over --sources places split over --workers processes: sources/s, ms per source, peak memory per worker, and
    the extrapolated time of a full re-score; compared with suggest() called once per source. No database writes.
    """
    from api.cli.bench_rescore import format_table, run
    from api.cli.model import read_gazetteer
    from seed.readers import PARTNERSHIPS_FILE, read_pairs

    cities = read_gazetteer(gazetteer)
    pairs = read_pairs(pairs_path or PARTNERSHIPS_FILE)
    result = run(cities, pairs, n_cities=n_cities, sources=sources, workers=workers or (1, 2), k=k, batch=batch)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
