"""``twinning train`` and ``twinning evaluate``: the learned partnership-likelihood model from the command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from api.cli.context import follow_job, make_app


@click.command()
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to save (default: TWINNING_MODEL_PATH)."
)
@click.option("--queue", is_flag=True, help="Run as a Celery job on the workers (needs REDIS_URL) and follow it.")
@click.option("--no-rescore", is_flag=True, help="Only train; do not re-score the active cities afterwards.")
def train(out: Path | None, queue: bool, no_rescore: bool) -> None:
    """Fit the partnership-likelihood model on the gazetteer and every partnership in the database.

    Saves one artifact (model + metadata: version, library versions, training-data hash) and, unless
    --no-rescore, writes a new score set with it.
    """
    from sqlmodel import Session

    from api.data import crud

    app = make_app(JOBS_MODE="celery" if queue else "sync")
    svc = app.extensions["twinning"]
    if queue:
        with Session(svc.engine, expire_on_commit=False) as session:
            job = svc.submit(session, kind="train")
        click.echo(f"train job {job.id} sent to the workers")
        follow_job(
            svc.engine,
            job.id,
            1,
            pickup_timeout=svc.settings.QUEUE_PICKUP_TIMEOUT_S,
            desc="training",
            redis_url=svc.settings.REDIS_URL,
        )
        with Session(svc.engine) as session:
            done = crud.find_job(session, job_id=job.id)
            assert done is not None
            click.echo(json.dumps(done.result, indent=2, default=str))
        return
    from api.domain.training import train as do_train

    click.echo("training the partnership-likelihood model …", err=True)
    t0 = time.perf_counter()
    meta = do_train(svc.engine, svc.settings, out=out)
    click.echo(f"trained in {time.perf_counter() - t0:.1f}s: {meta.get('version')} -> {meta['path']}", err=True)
    click.echo(json.dumps(meta, indent=2, default=str))
    if not no_rescore and out is None:
        from api.cli.jobs import rescore

        click.get_current_context().invoke(rescore, cities=(), scope="active", queue=False)


def _read_pairs(path: Path) -> Any:
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False)
    missing = {"geonameid_a", "geonameid_b"} - set(frame.columns)
    if missing:
        raise click.BadParameter(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    try:
        return frame[["geonameid_a", "geonameid_b"]].astype("int64")
    except (ValueError, TypeError) as e:
        raise click.BadParameter(f"{path}: geonameid columns must be integers ({e})") from e


@click.command()
@click.option(
    "--train",
    "train_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Training pairs CSV (geonameid_a, geonameid_b).",
)
@click.option(
    "--test",
    "test_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Held-out pairs CSV (geonameid_a, geonameid_b).",
)
@click.option(
    "--cities",
    "cities_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Gazetteer CSV (default: the shipped seed/cities15000.csv.gz).",
)
@click.option(
    "--k", "ks", type=click.IntRange(1, 10_000), multiple=True, help="hit@k cut-offs; repeatable (default: 10 and 50)."
)
@click.option("--ranker", "only", multiple=True, help="Only these rankers (default: all); repeatable.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the random baseline and the model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate(
    train_path: Path,
    test_path: Path,
    cities_path: Path | None,
    ks: tuple[int, ...],
    only: tuple[str, ...],
    seed: int,
    as_json: bool,
) -> None:
    """Rank held-out real partnerships: every ranker is fitted on TRAIN only and ranks all gazetteer cities.

    For each TEST pair (a, b) with both cities in the gazetteer, in both directions, every city except a and a's
    TRAIN partners is ranked for a; b's rank is 1 + the candidates scored higher + the other candidates scored
    equal (ties count against b). Reports hit@k, MRR and median rank for `twinning` (the served score) and the
    baselines random, population, popularity, nearest, adamic_adar and country_affinity. No other partnership
    data is read.
    """
    from tqdm import tqdm

    from matcher import CountryTable
    from matcher.evaluate import default_rankers, format_table
    from matcher.evaluate import evaluate as run_eval
    from matcher.model import TwinningRanker
    from seed.readers import read_cities, read_countries

    cities = read_cities(cities_path) if cities_path else read_cities()
    train_pairs, test_pairs = _read_pairs(train_path), _read_pairs(test_path)
    rankers: dict[str, Any] = dict(default_rankers(random_state=seed))
    countries = CountryTable.from_records(read_countries().to_dict("records"))
    rankers["twinning"] = TwinningRanker(countries=countries, random_state=seed)
    if only:
        unknown = set(only) - set(rankers)
        if unknown:
            raise click.BadParameter(
                f"unknown ranker(s) {sorted(unknown)}; one of {sorted(rankers)}", param_hint="--ranker"
            )
        rankers = {k: v for k, v in rankers.items() if k in only}
    bar = tqdm(total=None, unit="query", file=sys.stderr, desc="evaluating", disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    result = run_eval(cities, train_pairs, test_pairs, ks=tuple(ks) or (10, 50), rankers=rankers, progress=progress)
    bar.close()
    if as_json:
        slim = {
            "queries": result["queries"],
            "skipped": result.get("skipped", 0),
            "rankers": {n: {k: v for k, v in r.items() if k != "ranks"} for n, r in result["rankers"].items()},
        }
        click.echo(json.dumps(slim, indent=2))
        return
    click.echo(format_table(result))
    base = {n: r for n, r in result["rankers"].items() if n != "twinning"}
    if "twinning" in result["rankers"] and base:
        k = (tuple(ks) or (10, 50))[0]
        best = max(base, key=lambda n: base[n][f"hit@{k}"])
        ratio = result["rankers"]["twinning"][f"hit@{k}"] / max(base[best][f"hit@{k}"], 1e-12)
        click.echo(f"\ntwinning hit@{k} / best baseline ({best}) hit@{k} = {ratio:.2f}")
