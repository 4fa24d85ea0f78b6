"""``twinning rescore``: a new score set, in this process with a progress bar, or on the Celery workers."""

from __future__ import annotations

import sys

import click

from api.cli.context import city_id, follow_job, make_app, report_job


@click.command()
@click.option("--city", "cities", multiple=True, help="Only this city (name or id); repeatable.")
@click.option(
    "--scope",
    type=click.Choice(["active", "all"]),
    default="active",
    show_default=True,
    help="Without --city: 'active' = cities with a profile or partnership; 'all' = every city.",
)
@click.option(
    "--queue",
    is_flag=True,
    help="Send the job to the Celery workers (needs REDIS_URL) and follow it; gives up when no worker picks it up "
    "within TWINNING_QUEUE_PICKUP_TIMEOUT seconds.",
)
def rescore(cities: tuple[str, ...], scope: str, queue: bool) -> None:
    """Recompute and store suggestions as a new score set, with a progress bar."""
    from sqlmodel import Session

    from api.domain import jobs

    app = make_app(JOBS_MODE="celery" if queue else "sync")
    svc = app.extensions["twinning"]
    with Session(svc.engine, expire_on_commit=False) as session:
        ids = [city_id(session, c) for c in cities] or None
        if queue:
            from api.errors import Unavailable

            try:
                job = svc.submit(session, kind="rescore", city_ids=ids, scope=scope)
            except Unavailable as e:
                raise click.ClickException(e.message) from e
        else:
            job = jobs.create_job(session, kind="rescore", city_ids=ids, scope=scope)
            session.commit()
        job_id, total = job.id, job.total
    click.echo(f"job {job_id}: {total} cities")
    if queue:
        follow_job(
            svc.engine,
            job_id,
            total,
            pickup_timeout=svc.settings.QUEUE_PICKUP_TIMEOUT_S,
            redis_url=svc.settings.REDIS_URL,
        )
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit="city", file=sys.stderr, desc="rescoring")

    def dispatch(j: str, n: int, part: list[int]) -> None:
        before = bar.n
        done = jobs.run_chunk(svc.engine, svc.matchers, j, n, part)
        bar.update(max(0, done - before))

    jobs.start(svc.engine, svc.settings, svc.matchers, job_id, dispatch)
    bar.close()
    report_job(svc.engine, job_id)
