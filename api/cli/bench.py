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
