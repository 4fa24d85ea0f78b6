"""``twinning suggest``: a city's suggestions from the same service as the API and the console."""

from __future__ import annotations

import json

import click

from api.cli.context import city_id, make_app


@click.command()
@click.argument("city")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 100), help="How many suggestions.")
@click.option("--country", multiple=True, help="Only candidates in this country (ISO code); repeatable.")
@click.option("--sector", multiple=True, help="Only candidates whose profile names this sector; repeatable.")
@click.option(
    "--max-distance-km", type=click.FloatRange(0, 20_100, min_open=True), help="Only candidates within this distance."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (the API's answer) instead of a table.")
def suggest(
    city: str, k: int, country: tuple[str, ...], sector: tuple[str, ...], max_distance_km: float | None, as_json: bool
) -> None:
    """Partner suggestions for CITY (a name such as "Suzhou", or a geonameid).

    The same list as the API and the console: from the newest score set when no filter is given, else computed
    live; rejected or declined pairs are left out, and at most a third of the list comes from one country.
    """
    from pydantic import ValidationError
    from sqlmodel import Session

    from api.data import crud
    from api.schemas import SuggestionQuery
    from matcher.sectors import SECTOR_KEYS

    bad = [s for s in sector if s not in SECTOR_KEYS]
    if bad:
        raise click.BadParameter(f"unknown sector {bad[0]!r}; one of: {', '.join(SECTOR_KEYS)}", param_hint="--sector")
    try:
        query = SuggestionQuery(
            k=k,
            country=[c.upper() for c in country] or None,
            sector=list(sector) or None,
            max_distance_km=max_distance_km,
        )
    except ValidationError as e:
        raise click.UsageError(str(e)) from e
    app = make_app()
    svc = app.extensions["twinning"]
    with Session(svc.engine) as session:
        c = crud.get_city(session, city_id=city_id(session, city, "CITY"))
        result = svc.suggestions.answer(lambda: session, city_id=c.id, query=query, city=c).body
    if as_json:
        out = {"city": {"id": c.id, "name": c.name, "country": c.country}, **result}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    source = "live" if result["score_set"]["live"] else f"score set {result['score_set']['id']}"
    click.echo(
        f"Suggestions for {c.name} ({c.country}, id {c.id}) — {source}, model {result['score_set']['model_version']}"
    )
    click.echo(f"{'#':>3}  {'city':<28} {'cc':<3} {'score':>6}  {'top components':<44} top sector")
    for r in result["data"]:
        comps = sorted(((v, n) for n, v in r["components"].items() if n != "preference"), reverse=True)[:3]
        comp = ", ".join(f"{n} {v:.2f}" for v, n in comps)
        sec = r["sectors"][0]["reason"] if r["sectors"] else ""
        click.echo(
            f"{r['rank']:>3}  {r['city']['name'][:28]:<28} {r['city']['country']:<3} {r['score']:>6.3f}  {comp:<44} {sec}"
        )
    for note in result["notes"]:
        click.echo(f"Note: {note['message']}")
