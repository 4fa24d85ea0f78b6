"""The ``twinning`` command line: serve, seed, rescore, suggest, train, evaluate, db."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from api.config import ConfigError, Settings


def _app(**overrides: Any) -> Any:
    from api import create_app

    try:
        return create_app(overrides)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log more (DEBUG).")
def main(verbose: bool) -> None:
    """Twinning: partner suggestions for sister-city partnerships.

    Configuration comes from environment variables (DATABASE_URL, REDIS_URL, SECRET_KEY, TWINNING_*); with none
    set, Twinning runs embedded: a SQLite file ./twinning.db, jobs in-process, demo data seeded on first start.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.option("--no-seed", is_flag=True, help="Do not seed the demo data on first start.")
def serve(host: str, port: int, threads: int, no_seed: bool) -> None:
    """Start the web service (API, docs and console); seeds the data on first start."""
    from waitress import create_server

    from api.data.seeding import is_seeded, load_all
    from api.domain.bootstrap import demo_accounts, first_start

    app = _app()
    svc = app.extensions["twinning"]
    if not no_seed and svc.settings.SEED_ON_START and not is_seeded(svc.engine):
        click.echo("First start: loading the gazetteer, real partnerships and demo profiles …")
        t0 = time.perf_counter()
        report = load_all(svc.engine)
        click.echo(
            f"  {report.cities} cities, {report.partnerships} partnerships, {report.profiles} demo profiles "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    first_start(app, echo=click.echo)
    demo_accounts(app, echo=click.echo)
    logging.getLogger("waitress").setLevel(logging.WARNING)
    server = create_server(app, host=host, port=port, threads=threads, ident="twinning")  # bound from here on
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    click.echo(f"Twinning is running: open {url}  (API docs: {url}api/v1/swagger)  — Ctrl+C to stop")
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("stopped")


@main.command()
@click.option("--no-demo", is_flag=True, help="Skip the illustrative demo profiles.")
def seed(no_demo: bool) -> None:
    """Load the shipped data (countries, 34,006 cities, real partnerships, demo profiles). Idempotent."""
    from api.data.seeding import load_all

    app = _app()
    t0 = time.perf_counter()
    report = load_all(app.extensions["twinning"].engine, demo=not no_demo, progress=lambda m: click.echo(f"  {m}"))
    click.echo(
        f"seeded: {report.countries} countries, {report.cities} cities, {report.partnerships} partnerships "
        f"in {time.perf_counter() - t0:.1f}s"
    )


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations (idempotent)."""
    from api.data.db import make_engine, migrate

    settings = Settings.from_env()
    migrate(make_engine(settings.DATABASE_URL))
    click.echo("database schema is up to date")


@main.command()
@click.option("--city", "cities", multiple=True, help="Only this city (name or id); repeatable.")
@click.option(
    "--scope",
    type=click.Choice(["active", "all"]),
    default="active",
    show_default=True,
    help="Without --city: 'active' = cities with a profile or partnership; 'all' = every city.",
)
@click.option("--queue", is_flag=True, help="Send the job to the Celery workers (needs REDIS_URL) and follow it.")
def rescore(cities: tuple[str, ...], scope: str, queue: bool) -> None:
    """Recompute and store suggestions as a new score set, with a progress bar."""
    from tqdm import tqdm

    from api.data import crud
    from api.domain import jobs

    app = _app(JOBS_MODE="celery" if queue else "sync")
    svc = app.extensions["twinning"]
    from sqlmodel import Session

    with Session(svc.engine, expire_on_commit=False) as session:
        ids = None
        if cities:
            try:
                ids = [crud.find_city(session, c).id for c in cities]
            except crud.NotFound as e:
                raise click.BadParameter(str(e), param_hint="--city") from e
        job = jobs.create_job(session, kind="rescore", city_ids=ids, scope=scope)
        session.commit()
        job_id, total = job.id, job.total
    click.echo(f"job {job_id}: {total} cities")
    if queue:
        from api.domain.queue import QueueUnavailable, ping, send

        try:
            ping(svc.settings.REDIS_URL, svc.settings.REDIS_TIMEOUT_S)
            send(svc.celery, "twinning.rescore_all", [job_id], svc.settings.REDIS_TIMEOUT_S)
        except QueueUnavailable as e:
            jobs.fail(svc.engine, job_id, str(e))
            raise click.ClickException(str(e)) from e
        _follow(svc.engine, job_id, total)
        return
    bar = tqdm(total=total, unit="city", file=sys.stderr, desc="rescoring")

    def dispatch(j: str, n: int, ids: list[int]) -> None:
        before = bar.n
        done = jobs.run_chunk(svc.engine, svc.matchers, j, n, ids)
        bar.update(max(0, done - before))

    jobs.start(svc.engine, svc.settings, svc.matchers, job_id, dispatch)
    bar.close()
    _report_job(svc.engine, job_id)


def _follow(engine: Any, job_id: str, total: int) -> None:
    from sqlmodel import Session
    from tqdm import tqdm

    from api.data.models import Job

    bar = tqdm(total=total, unit="city", file=sys.stderr, desc="rescoring (workers)")
    while True:
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            bar.update(job.done - bar.n)
            if job.state in {"succeeded", "failed"}:
                break
        time.sleep(0.5)
    bar.close()
    _report_job(engine, job_id)


def _report_job(engine: Any, job_id: str) -> None:
    from sqlmodel import Session

    from api.data.models import Job

    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.state != "succeeded":
            raise click.ClickException(f"job {job_id} {job.state}: {job.error}")
        click.echo(f"job {job_id} succeeded: score set {job.score_set_id}, {job.total} cities")


@main.command()
@click.argument("city")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 100), help="How many suggestions.")
@click.option("--country", multiple=True, help="Only candidates in this country (ISO code); repeatable.")
@click.option("--sector", multiple=True, help="Only candidates whose profile names this sector; repeatable.")
@click.option("--max-distance-km", type=float, help="Only candidates within this distance.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of a table.")
def suggest(
    city: str, k: int, country: tuple[str, ...], sector: tuple[str, ...], max_distance_km: float | None, as_json: bool
) -> None:
    """Partner suggestions for CITY (a name such as "Suzhou", or a geonameid), computed live."""
    from sqlmodel import Session

    from api.data import crud
    from matcher import Filters
    from matcher.model import describe
    from matcher.sectors import SECTOR_KEYS

    bad = [s for s in sector if s not in SECTOR_KEYS]
    if bad:
        raise click.BadParameter(f"unknown sector {bad[0]!r}; one of: {', '.join(SECTOR_KEYS)}", param_hint="--sector")
    app = _app()
    svc = app.extensions["twinning"]
    with Session(svc.engine) as session:
        try:
            c = crud.find_city(session, city)
        except crud.NotFound as e:
            raise click.BadParameter(str(e), param_hint="CITY") from e
        built = svc.matchers.get(session)
        filters = Filters(
            countries=frozenset(x.upper() for x in country), sectors=frozenset(sector), max_distance_km=max_distance_km
        )
        results = built.matcher.suggest(built.table.row(c.id), k, filters)
        names = {r.city_id: crud.get_city(session, r.city_id) for r in results}
    if as_json:
        out = {
            "city": {"id": c.id, "name": c.name, "country": c.country},
            "model_version": built.model_version,
            "data": [
                {
                    "rank": i,
                    "city": {"id": r.city_id, "name": names[r.city_id].name, "country": names[r.city_id].country},
                    **describe(r),
                }
                for i, r in enumerate(results, start=1)
            ],
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"Suggestions for {c.name} ({c.country}, id {c.id}) — model {built.model_version}")
    click.echo(f"{'#':>3}  {'city':<28} {'cc':<3} {'score':>6}  {'top components':<44} top sector")
    for i, r in enumerate(results, start=1):
        comps = sorted(((v, n) for n, v in r.components.items() if n != "preference"), reverse=True)[:3]
        comp = ", ".join(f"{n} {v:.2f}" for v, n in comps)
        sec = r.sectors[0].reason if r.sectors else ""
        nm = names[r.city_id]
        click.echo(f"{i:>3}  {nm.name[:28]:<28} {nm.country:<3} {r.score:>6.3f}  {comp:<44} {sec}")


# ---------------------------------------------------------------- accounts and the match workflow (issue 4)
@contextmanager
def _session() -> Iterator[tuple[Any, Any]]:
    """The app's services and a session; the engine is disposed afterwards (no pooled connections left open)."""
    from sqlmodel import Session

    svc = _app().extensions["twinning"]
    try:
        with Session(svc.engine) as session:
            yield svc, session
    finally:
        svc.engine.dispose()


@main.group("users")
def users_group() -> None:
    """Accounts: officials (bound to cities), coordinators (optionally scoped to countries), admins."""


def _city_id(session: Any, text: str) -> int:
    from api.data import crud

    try:
        return crud.find_city(session, text).id
    except crud.NotFound as e:
        raise click.BadParameter(str(e), param_hint="--city") from e


@users_group.command("create")
@click.option("--name", required=True, help="Login name (letters, digits, . _ - @).")
@click.option("--role", required=True, type=click.Choice(["official", "coordinator", "admin"]), help="The role.")
@click.option("--city", "cities", multiple=True, help="An official's city: geonameid or name; repeatable.")
@click.option("--country", "countries", multiple=True, help="A coordinator's country (ISO code); repeatable.")
@click.option("--display-name", default="", help="The name shown in the console.")
@click.option("--password", help="Console password (or use --prompt-password); without one, API tokens only.")
@click.option("--prompt-password", is_flag=True, help="Ask for the console password.")
def users_create(
    name: str,
    role: str,
    cities: tuple[str, ...],
    countries: tuple[str, ...],
    display_name: str,
    password: str | None,
    prompt_password: bool,
) -> None:
    """Create a user and print a new API token (shown once: store it now)."""

    from api.web.auth import AuthError, create_user, issue_token

    if prompt_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as (_svc, session):
        try:
            user = create_user(
                session,
                name=name,
                role=role,
                password=password,
                cities=[_city_id(session, c) for c in cities],
                countries=countries,
                display_name=display_name,
            )
            token = issue_token(session, user, label="created with the user")
            session.commit()
        except AuthError as e:
            raise click.UsageError(str(e)) from e
        click.echo(
            f"created {user.role} {user.name!r} (id {user.id})" + (f", cities {user.cities}" if user.cities else "")
        )
    click.echo("API token (shown once; send it as 'Authorization: Bearer <token>'):")
    click.echo(token)


@users_group.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
def users_token(name: str, label: str) -> None:
    """Issue another API token for user NAME (shown once)."""

    from api.web.auth import get_user, issue_token

    with _session() as (_svc, session):
        user = get_user(session, name)
        if user is None:
            raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        token = issue_token(session, user, label=label)
        session.commit()
    click.echo(token)


@users_group.command("revoke")
@click.argument("name", required=False)
@click.option("--token", "prefix", help="Revoke only the token starting with this (its first 10 characters).")
def users_revoke(name: str | None, prefix: str | None) -> None:
    """Revoke every API token of user NAME, or one token by its prefix (--token tw_abc1234)."""

    from api.web.auth import AuthError, get_user, revoke_tokens

    with _session() as (_svc, session):
        user = None
        if name:
            user = get_user(session, name)
            if user is None:
                raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        try:
            n = revoke_tokens(session, user=user, prefix=prefix)
        except AuthError as e:
            raise click.UsageError(str(e)) from e
        session.commit()
    click.echo(f"revoked {n} token(s)")


@users_group.command("password")
@click.argument("name")
@click.password_option(help="The new console password.")
def users_password(name: str, password: str) -> None:
    """Set user NAME's console password (logs out their other console sessions)."""

    from api.web.auth import get_user, set_password

    with _session() as (_svc, session):
        user = get_user(session, name)
        if user is None:
            raise click.BadParameter(f"no user {name!r}", param_hint="NAME")
        set_password(session, user, password)
        session.commit()
    click.echo(f"password of {name!r} changed")


@users_group.command("list")
def users_list() -> None:
    """List the users with their roles, cities, countries and number of live tokens."""
    from sqlmodel import col, func, select

    from api.data.models import ApiToken, User

    with _session() as (_svc, session):
        for u in session.exec(select(User).order_by(col(User.id))).all():
            n = session.exec(
                select(func.count()).where(ApiToken.user_id == u.id, col(ApiToken.revoked_at).is_(None))
            ).one()
            scope = ",".join(map(str, u.cities or [])) or ",".join(u.countries or []) or "-"
            click.echo(f"{u.id:>4}  {u.name:<24} {u.role:<12} {scope:<24} tokens: {n}" + ("  (demo)" if u.demo else ""))


@main.group("matches")
def matches_group() -> None:
    """The match workflow (proposals and their review)."""


@matches_group.command("expire")
def matches_expire() -> None:
    """Expire proposals and accepted matches that waited too long (TWINNING_MATCH_*_DAYS); idempotent."""

    from api.domain.workflow import expire_due

    with _session() as (svc, session):
        ids = expire_due(session, svc.settings)
    click.echo(f"expired {len(ids)} match(es)" + (f": {', '.join(map(str, ids))}" if ids else ""))


def _register_model_commands() -> None:
    from api.cli.model import evaluate, train

    main.add_command(train)
    main.add_command(evaluate)


_register_model_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
