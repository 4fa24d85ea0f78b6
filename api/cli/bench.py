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
