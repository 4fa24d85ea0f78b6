"""``twinning conference …``: conferences, their schedule, agendas (text or .ics), the grid and unmet wishes.

Each command takes ``--conference ID`` (default: the newest conference). Heavy imports happen inside functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api.cli.context import data_session

CONF_OPTION = click.option("-c", "--conference", "conference_id", type=int, help="Conference id (default: the newest).")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's answer) instead of text.")


@contextmanager
def _session() -> Iterator[Any]:
    with data_session() as (_settings, session):
        yield session


def _conference_id(session: Any, conference_id: int | None) -> int:
    from api.data import conferences as q

    if conference_id is None:
        newest = q.newest_conference(session)
        if newest is None:
            raise click.ClickException("there is no conference yet (seed the demo, or POST /api/v1/conferences)")
        return int(newest.id or 0)
    from api.errors import NotFound

    try:
        return int(q.get_conference(session, conference_id=conference_id).id or 0)
    except NotFound as e:
        raise click.BadParameter(str(e), param_hint="--conference") from e


def _delegation_id(session: Any, conference_id: int, text: str) -> int:
    """A delegation by its id, its place's id (geonameid) or its place's name (accent- and case-insensitive)."""
    from api.data import conferences as q
    from api.data.text import fold

    dels = q.conference_delegations(session, conference_id=conference_id)
    cities = q.cities_of(session, ids=[d.city_id for d in dels])
    needle = fold(text.strip())
    for d in dels:
        city = cities.get(d.city_id)
        if text.strip().isdigit() and int(text) in (d.id, d.city_id):
            return int(d.id or 0)
        if city is not None and fold(city.name) == needle:
            return int(d.id or 0)
    raise click.BadParameter(f"no delegation {text!r} at conference {conference_id}", param_hint="DELEGATION")


def _fail(e: Exception) -> click.ClickException:
    return click.ClickException(getattr(e, "message", str(e)))


@click.group("conference")
def conference_group() -> None:
    """Conference mode: one-to-one meetings between delegations (schedule, agendas, grid, unmet wishes)."""


@conference_group.command("list")
@JSON_OPTION
def list_cmd(as_json: bool) -> None:
    """Every conference, newest first."""
    from api.data import conferences as q
    from api.domain import conferences as conf

    with _session() as session:
        rows = [conf.conference_public(session, c) for c in q.list_conferences(session)]
    if as_json:
        click.echo(json.dumps({"data": rows, "count": len(rows)}, ensure_ascii=False, indent=2))
        return
    for c in rows:
        mark = " (illustrative)" if c["illustrative"] and "illustrative" not in c["name"] else ""
        sched = c["schedule"]
        state = f"{sched['meetings']} meetings" if sched else "not scheduled"
        click.echo(
            f"{c['id']:>4}  {c['name']}{mark} — {c['place']}, {c['starts_on']}–{c['ends_on']}: "
            f"{c['delegations']} delegations, {len(c['slots'])} slots, {state}"
        )


@conference_group.command("show")
@CONF_OPTION
@JSON_OPTION
def show(conference_id: int | None, as_json: bool) -> None:
    """A conference: slots, delegations and the last scheduling run."""
    from api.data import conferences as q
    from api.domain import conferences as conf

    with _session() as session:
        cid = _conference_id(session, conference_id)
        c = conf.conference_public(session, conf.get_conference(session, cid))
        dels = conf.delegations_public(session, q.conference_delegations(session, conference_id=cid))
    if as_json:
        click.echo(json.dumps({**c, "delegations": dels}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{c['name']} — {c['place']}, {c['starts_on']}–{c['ends_on']} ({c['timezone']})")
    for s in c["slots"]:
        interp = ", ".join(f"{k} ×{v}" for k, v in s["interpreters"].items()) or "none"
        lost = "  LOST" if s["lost"] else ""
        click.echo(
            f"  slot {s['position'] + 1}: {s['starts_at']} – {s['ends_at'][11:16]}, {s['tables']} tables, interpreters {interp}{lost}"
        )
    click.echo(f"{len(dels)} delegations:")
    for d in dels:
        click.echo(
            f"  {d['id']:>5}  {d['city']['name']} ({d['city']['country']})  {'/'.join(d['languages'])}  {d['status']}"
        )
    _print_summary(c["schedule"])


def _print_summary(s: dict[str, Any]) -> None:
    if not s:
        click.echo("Not scheduled yet: twinning conference schedule")
        return

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    click.echo(
        f"Schedule ({s.get('kind')}, {s['status']}): {s['meetings']} meetings, mutual must-meets {s['must_met']}/"
        f"{s['must_total']}, objective {f(s['objective'])}, bound {f(s['bound'])}, gap {f(s['gap'])}, "
        f"greedy {f(s.get('greedy_objective'))}, {s['solve_s']:.1f} s"
    )


@conference_group.command("schedule")
@CONF_OPTION
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 3600),
    help="Seconds for the solver (default: TWINNING_CONFERENCE_TIME_LIMIT).",
)
@JSON_OPTION
def schedule_cmd(conference_id: int | None, time_limit: float | None, as_json: bool) -> None:
    """Schedule the meetings (MILP, best found at the time limit) and store them; compares with greedy."""
    from sqlmodel import Session

    from api.cli.context import make_app
    from api.domain import conferences as conf
    from api.errors import TwinningError

    app = make_app()
    svc = app.extensions["twinning"]
    with Session(svc.engine, expire_on_commit=False) as session:
        cid = _conference_id(session, conference_id)
        try:
            s = conf.schedule(
                session, None, svc.matchers, cid, time_limit=time_limit or svc.settings.CONFERENCE_TIME_LIMIT
            )
        except TwinningError as e:
            raise _fail(e) from e
    if as_json:
        click.echo(json.dumps(s, indent=2))
    else:
        _print_summary(s)


@conference_group.command("agenda")
@click.argument("delegation")
@CONF_OPTION
@click.option("--ics", "ics", type=click.Path(dir_okay=False, path_type=Path), help="Also write an iCalendar file.")
@JSON_OPTION
def agenda_cmd(delegation: str, conference_id: int | None, ics: Path | None, as_json: bool) -> None:
    """DELEGATION's agenda (a place name such as "Suzhou", a geonameid or a delegation id)."""
    from api.domain import conferences as conf

    with _session() as session:
        cid = _conference_id(session, conference_id)
        did = _delegation_id(session, cid, delegation)
        ag = conf.agenda(session, cid, did)
        if ics is not None:
            ics.write_bytes(conf.agenda_ics(session, cid, did))
    if as_json:
        click.echo(json.dumps(ag, ensure_ascii=False, indent=2))
    else:
        me = ag["delegation"]
        click.echo(f"Agenda of {me['city']['name']} at {ag['conference']['name']} ({len(ag['meetings'])} meetings)")
        for m in ag["meetings"]:
            interp = f", interpreter {m['interpreter']}" if m["interpreter"] else ""
            must = "  [must meet]" if m["must"] else ""
            click.echo(
                f"  {m['starts_at'][:16].replace('T', ' ')}–{m['ends_at'][11:16]}  table {m['table']:>2}  "
                f"{m['partner']['name']} ({m['partner']['country']}){interp}{must}"
            )
    if ics is not None:
        click.echo(f"wrote {ics}", err=True)


@conference_group.command("grid")
@CONF_OPTION
@JSON_OPTION
def grid_cmd(conference_id: int | None, as_json: bool) -> None:
    """The organisers' grid: one line per slot, the meetings at each table."""
    from api.domain import conferences as conf

    with _session() as session:
        g = conf.grid(session, _conference_id(session, conference_id))
    if as_json:
        click.echo(json.dumps(g, ensure_ascii=False, indent=2))
        return
    click.echo(f"{g['meetings']} meetings, {len(g['slots'])} slots × {g['tables']} tables")
    for s in g["slots"]:
        click.echo(f"slot {s['position'] + 1}  {s['starts_at'][:16].replace('T', ' ')}{'  LOST' if s['lost'] else ''}")
        for t, cell in enumerate(s["cells"], start=1):
            if cell:
                interp = f"  ({cell['interpreter']})" if cell["interpreter"] else ""
                click.echo(f"  table {t:>2}: {cell['a']['name']} – {cell['b']['name']}{interp}")


@conference_group.command("unmet")
@CONF_OPTION
@JSON_OPTION
def unmet_cmd(conference_id: int | None, as_json: bool) -> None:
    """Mutual must-meet wishes without a meeting, with the reason."""
    from api.domain import conferences as conf

    with _session() as session:
        rows = conf.unmet(session, _conference_id(session, conference_id))
    if as_json:
        click.echo(json.dumps({"data": rows, "count": len(rows)}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{len(rows)} mutual must-meet wish{'es' if len(rows) != 1 else ''} unmet")
    for u in rows:
        click.echo(f"  {u['a']['name']} – {u['b']['name']}: {u['reason']} ({u['detail']})")
