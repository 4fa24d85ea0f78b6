"""The ``twinning`` command line.

Each command lives in a module of this package and is imported only when it is run (or when ``--help`` lists it);
those modules import the web app, the matcher or pandas inside their functions, so a command that needs none of
them answers in a fraction of a second.
"""

from __future__ import annotations

import importlib
import logging

import click

# command name → "module:attribute"
COMMANDS = {
    "serve": "api.cli.service:serve",
    "seed": "api.cli.service:seed",
    "db": "api.cli.service:db_group",
    "rescore": "api.cli.jobs:rescore",
    "suggest": "api.cli.suggest:suggest",
    "train": "api.cli.model:train",
    "evaluate": "api.cli.model:evaluate",
    "users": "api.cli.users:users_group",
    "matches": "api.cli.users:matches_group",
    "bench": "api.cli.bench:bench_group",
    "conference": "api.cli.conference:conference_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log more (DEBUG).")
def main(verbose: bool) -> None:
    """Twinning: partner suggestions for sister-city partnerships.

    Configuration comes from environment variables (DATABASE_URL, REDIS_URL, SECRET_KEY, TWINNING_*); with none
    set, Twinning runs embedded: a SQLite file ./twinning.db, jobs in-process, demo data seeded on first start.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
