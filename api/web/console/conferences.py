"""Console pages of conference mode: the conferences, a conference (register a delegation, schedule, changes),
a delegation's wishes (the matcher's suggestions with reasons and sectors), its printable agenda (and .ics), the
organisers' grid and the unmet mutual wishes. Plain forms with CSRF tokens; they work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, g, redirect, request, url_for
from pydantic import ValidationError

from api.conference_schemas import DelegationCreate, WishIn
from api.data import conferences as q
from api.data import crud
from api.domain import conferences as conf
from api.errors import NotFound, TwinningError
from api.web import auth
from api.web.console import csrf
from api.web.console.views import _error, _page, login_required
from api.web.context import db, services

bp = Blueprint("conference_console", __name__, url_prefix="/console/conferences", template_folder="../templates")
WISH_LABELS = {
    "none": "No preference",
    "must_meet": "Must meet",
    "would_like": "Would like to meet",
    "follow_up": "Follow-up (existing partners)",
    "no_thanks": "No, thanks",
}


@bp.before_request
def _csrf() -> None:
    csrf.protect()


def _fail(e: TwinningError) -> Response:
    return _error(e.status, e.message)


def _limit() -> float:
    return services().settings.CONFERENCE_TIME_LIMIT


@bp.get("/")
@login_required
def index() -> Any:
    rows = [conf.conference_public(db(), c) for c in q.list_conferences(db())]
    return _page("conferences.html", conferences=rows)


@bp.get("/<int:cid>")
@login_required
def conference(cid: int, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    user: auth.Principal = g.user
    session = db()
    try:
        c = conf.conference_public(session, conf.get_conference(session, cid))
    except TwinningError as e:
        return _fail(e)
    dels = conf.delegations_public(session, q.conference_delegations(session, conference_id=cid))
    registered = {d["city"]["id"] for d in dels if d["status"] == "registered"}
    own_cities = [i for i in user.cities if i not in registered]  # an official's cities not registered yet
    names = {k: v.name for k, v in q.cities_of(session, ids=own_cities).items()}
    return _page(
        "conference.html",
        status,
        c=c,
        delegations=dels,
        may_act={d["id"]: conf.may_act_for(user, d["city"]["id"]) for d in dels},
        organiser=conf.is_organiser(user),
        own_cities=[(i, names.get(i, str(i))) for i in own_cities],
        errors=errors or {},
        form=request.form if request.method == "POST" else {},
    )


@bp.post("/<int:cid>/register")
@login_required
def register(cid: int) -> Any:
    user: auth.Principal = g.user
    form = request.form
    raw_city = form.get("city_id", "").strip()
    if raw_city and not raw_city.isdigit():  # a place's name, in any language or script (Köln, 苏州)
        try:
            raw_city = str(crud.find_city(db(), text=raw_city).id)
        except NotFound as e:
            return conference(cid, errors={"city_id": e.message}, status=422)
    data: dict[str, Any] = {
        "city_id": raw_city,
        "slot_ids": [int(s) for s in form.getlist("slot_ids") if s.isdigit()],
        "languages": [x.strip() for x in form.get("languages", "").split(",") if x.strip()] or None,
        "delegates": [
            {"name": n.strip(), "title": form.get("delegate_title", "").strip()}
            for n in [form.get("delegate_name", "")]
            if n.strip()
        ],
    }
    try:
        body = DelegationCreate(**data)
        d = conf.register(db(), user, cid, body)
    except ValidationError as e:
        errors = {str(err["loc"][0]): err["msg"] for err in e.errors(include_url=False)}
        return conference(cid, errors=errors, status=422)
    except TwinningError as e:
        if e.status in (404, 403) and e.field is None:
            return _fail(e)
        return conference(cid, errors={e.field or "city_id": e.message}, status=e.status)
    flash("Delegation registered. Now say whom you want to meet.")
    return redirect(url_for("conference_console.wishes", cid=cid, did=d.id))


@bp.route("/<int:cid>/delegations/<int:did>/wishes", methods=["GET", "POST"])
@login_required
def wishes(cid: int, did: int) -> Any:
    user: auth.Principal = g.user
    session = db()
    try:
        d = conf.get_delegation(session, cid, did)
        c = conf.conference_public(session, conf.get_conference(session, cid))
        if request.method == "POST":
            chosen = [
                WishIn(delegation_id=int(k[5:]), wish=v)  # type: ignore[arg-type]
                for k, v in request.form.items()
                if k.startswith("wish-") and k[5:].isdigit() and v in WISH_LABELS
            ]
            conf.set_wishes(session, user, cid, did, chosen)
            flash("Wishes saved.")
            return redirect(url_for("conference_console.wishes", cid=cid, did=did))
        rows = conf.wish_suggestions(session, services().matchers, cid, did)
    except TwinningError as e:
        return _fail(e)
    me = conf.delegations_public(session, [d])[0]
    return _page(
        "conference_wishes.html",
        c=c,
        me=me,
        rows=rows,
        wish_labels=WISH_LABELS,
        editable=conf.may_act_for(user, d.city_id),
    )


@bp.post("/<int:cid>/schedule")
@login_required
def schedule(cid: int) -> Any:
    user: auth.Principal = g.user
    raw = request.form.get("time_limit", "").strip()
    try:
        limit = float(raw) if raw else _limit()
        if not 0 < limit <= 600:
            raise ValueError
    except ValueError:
        return conference(cid, errors={"time_limit": "a number of seconds between 0 and 600"}, status=422)
    try:
        s = conf.schedule(db(), user, services().matchers, cid, time_limit=limit)
    except TwinningError as e:
        return _fail(e)
    flash(f"Scheduled {s['meetings']} meetings; mutual must-meets met: {s['must_met']} of {s['must_total']}.")
    return redirect(url_for("conference_console.conference", cid=cid))


@bp.post("/<int:cid>/delegations/<int:did>/cancel")
@login_required
def cancel(cid: int, did: int) -> Any:
    try:
        info = conf.cancel_delegation(db(), g.user, services().matchers, cid, did, time_limit=_limit())
    except TwinningError as e:
        return _fail(e)
    msg = "Delegation cancelled."
    if info:
        msg += f" The schedule was re-planned: {info['kept']} meetings kept in place."
    flash(msg)
    return redirect(url_for("conference_console.conference", cid=cid))


@bp.post("/<int:cid>/slots/<int:sid>/lose")
@login_required
def lose_slot(cid: int, sid: int) -> Any:
    try:
        info = conf.lose_slot(db(), g.user, services().matchers, cid, sid, time_limit=_limit())
    except TwinningError as e:
        return _fail(e)
    flash("Slot marked lost." + (f" {info['kept']} meetings kept in place." if info else ""))
    return redirect(url_for("conference_console.grid", cid=cid))


@bp.get("/<int:cid>/delegations/<int:did>/agenda")
@login_required
def agenda(cid: int, did: int) -> Any:
    user: auth.Principal = g.user
    try:
        ag = conf.agenda(db(), cid, did)
    except TwinningError as e:
        return _fail(e)
    may_propose = {
        m["id"]: m["match_id"] is None
        and (user.is_admin or user.official_of(m["a"]["id"]) or user.official_of(m["b"]["id"]))
        for m in ag["meetings"]
    }
    return _page("conference_agenda.html", ag=ag, may_propose=may_propose)


@bp.get("/<int:cid>/delegations/<int:did>/agenda.ics")
@login_required
def agenda_ics(cid: int, did: int) -> Any:
    try:
        body = conf.agenda_ics(db(), cid, did)
    except TwinningError as e:
        return _fail(e)
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="agenda-{cid}-{did}.ics"'},
    )


@bp.post("/<int:cid>/meetings/<int:mid>/propose")
@login_required
def propose(cid: int, mid: int) -> Any:
    try:
        match_id = conf.propose_from_meeting(
            db(), g.user, services().settings, cid, mid, message=request.form.get("message", ""), sectors=[]
        )
    except TwinningError as e:
        return _fail(e)
    flash("The meeting is now a match proposal; the coordinators review it.")
    return redirect(url_for("console.match", match_id=match_id))


@bp.get("/<int:cid>/grid")
@login_required
def grid(cid: int) -> Any:
    try:
        gr = conf.grid(db(), cid)
    except TwinningError as e:
        return _fail(e)
    return _page("conference_grid.html", gr=gr, organiser=conf.is_organiser(g.user))


@bp.get("/<int:cid>/unmet")
@login_required
def unmet(cid: int) -> Any:
    try:
        c = conf.conference_public(db(), conf.get_conference(db(), cid))
        rows = conf.unmet(db(), cid)
    except TwinningError as e:
        return _fail(e)
    return _page("conference_unmet.html", c=c, rows=rows)
