"""``twinning serve``, ``twinning seed`` and ``twinning db``: run the service and prepare its database."""

from __future__ import annotations

import logging
import time

import click

from api.cli.context import make_app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.option("--no-seed", is_flag=True, help="Do not seed the demo data on first start.")
def serve(host: str, port: int, threads: int, no_seed: bool) -> None:
    """Start the web service (API, docs and console); seeds the data on first start."""
    from waitress import create_server

    from api.data.seeding import is_seeded, load_all, seeded_level
    from api.domain.bootstrap import build_prefix_pages, demo_accounts, first_start, schedule_demo_conference

    app = make_app()
    svc = app.extensions["twinning"]
    level = svc.settings.GAZETTEER
    seeded_now = False
    if not no_seed and svc.settings.SEED_ON_START and not is_seeded(svc.engine, level):
        if is_seeded(svc.engine):
            click.echo(
                f"The database holds the {seeded_level(svc.engine) or 'an earlier'} gazetteer; TWINNING_GAZETTEER="
                f"{level} asks for every place of {level}: loading the places it lacks (what is there is kept) …"
            )
        else:
            click.echo("First start: loading the gazetteer, real partnerships and demo profiles …")
        t0 = time.perf_counter()
        report = load_all(svc.engine, prefix_pages=False)  # stored in the background below: serving sooner
        seeded_now = True
        click.echo(
            f"  {report.cities} cities, {report.partnerships} partnerships, {report.profiles} demo profiles "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    first_start(app, echo=click.echo)
    demo_accounts(app, echo=click.echo)
    schedule_demo_conference(app, echo=click.echo)
    build_prefix_pages(svc.engine, echo=click.echo, force=seeded_now)
    logging.getLogger("waitress").setLevel(logging.WARNING)
    server = create_server(app, host=host, port=port, threads=threads, ident="twinning")  # bound from here on
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    click.echo(f"Twinning is running: open {url}  (API docs: {url}api/v1/swagger)  — Ctrl+C to stop")
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("stopped")


@click.command()
@click.option("--no-demo", is_flag=True, help="Skip the illustrative demo profiles.")
def seed(no_demo: bool) -> None:
    """Load the shipped data (countries, cities, real partnerships, demo profiles). Idempotent."""
    from api.data.seeding import load_all

    app = make_app()
    t0 = time.perf_counter()
    report = load_all(app.extensions["twinning"].engine, demo=not no_demo, progress=lambda m: click.echo(f"  {m}"))
    click.echo(
        f"seeded: {report.countries} countries, {report.cities} cities, {report.partnerships} partnerships "
        f"in {time.perf_counter() - t0:.1f}s"
    )


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations (idempotent)."""
    from api.config import Settings
    from api.data.db import make_engine, migrate

    settings = Settings.from_env()
    migrate(make_engine(settings.DATABASE_URL))
    click.echo("database schema is up to date")
