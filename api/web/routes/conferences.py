"""Conference mode under /api/v1/conferences: conferences, delegations, wishes, the schedule and its outputs.

Reads need a token (any role: agendas name the delegates); officials register and speak for their own cities'
delegations; coordinators and admins create conferences, schedule them and record changes.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_openapi3 import APIBlueprint, Tag

from api.conference_schemas import (
    ConferenceCreate,
    ConferenceList,
    ConferencePath,
    ConferencePublic,
    DelegationCreate,
    DelegationList,
    DelegationPath,
    DelegationPublic,
    ListOf,
    MeetingPath,
    Open,
    ProposalRequest,
    ScheduleRequest,
    SlotPath,
    WishesIn,
)
from api.data import conferences as q
from api.domain import conferences as conf
from api.web import auth
from api.web.context import db, services
from api.web.routes import error_responses

bp = APIBlueprint(
    "conferences",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="conferences", description="conference mode: one-to-one meetings between delegations")],
    abp_security=auth.BEARER,
)
ERRORS = error_responses(401, 403, 404, 409, 422)


def _time_limit(body: ScheduleRequest | None) -> float:
    if body is not None and body.time_limit is not None:
        return body.time_limit
    return services().settings.CONFERENCE_TIME_LIMIT


@bp.get("/conferences", responses={200: ConferenceList, **ERRORS})
def list_conferences() -> Any:
    """Every conference, newest first."""
    auth.require_user()
    rows = [conf.conference_public(db(), c) for c in q.list_conferences(db())]
    return {"data": rows, "count": len(rows)}


@bp.post("/conferences", responses={201: ConferencePublic, **ERRORS})
def create_conference(body: ConferenceCreate) -> Any:
    """Create a conference with its meeting slots (tables and interpreters per language per slot). Organisers."""
    user = auth.require_user()
    c = conf.create_conference(db(), user, body)
    return conf.conference_public(db(), c), 201, {"Location": url_for("conferences.get_conference", id=c.id)}


@bp.get("/conferences/<int:id>", responses={200: ConferencePublic, **ERRORS})
def get_conference(path: ConferencePath) -> Any:
    """A conference, its slots and the summary of the last scheduling run."""
    auth.require_user()
    return conf.conference_public(db(), conf.get_conference(db(), path.id))


@bp.get("/conferences/<int:id>/delegations", responses={200: DelegationList, **ERRORS})
def list_delegations(path: ConferencePath) -> Any:
    """The delegations (registered and cancelled)."""
    auth.require_user()
    conf.get_conference(db(), path.id)
    rows = conf.delegations_public(db(), q.conference_delegations(db(), conference_id=path.id))
    return {"data": rows, "count": len(rows)}


@bp.post("/conferences/<int:id>/delegations", responses={201: DelegationPublic, **ERRORS})
def register(path: ConferencePath, body: DelegationCreate) -> Any:
    """Register a place's delegation: its delegates, languages and the slots it attends. Officials for their own
    city; organisers for any place (a province, state or county is a custom place: ``POST /api/v1/cities``)."""
    user = auth.require_user()
    d = conf.register(db(), user, path.id, body)
    return conf.delegations_public(db(), [d])[0], 201


@bp.post("/conferences/<int:id>/delegations/<int:delegation_id>/cancel", responses={200: Open, **ERRORS})
def cancel(path: DelegationPath) -> Any:
    """The delegation cancels. A stored schedule is re-planned: every unaffected meeting stays where it is."""
    user = auth.require_user()
    info = conf.cancel_delegation(
        db(),
        user,
        services().matchers,
        path.id,
        path.delegation_id,
        time_limit=_time_limit(None),
    )
    return {"status": "cancelled", "schedule": info}


@bp.get("/conferences/<int:id>/delegations/<int:delegation_id>/suggestions", responses={200: ListOf, **ERRORS})
def suggestions(path: DelegationPath) -> Any:
    """The other attending delegations ranked by the matcher, with score components, sectors and reasons, whether
    the cities are already partners (a follow-up meeting is possible) and this delegation's current wish."""
    auth.require_user()
    rows = conf.wish_suggestions(db(), services().matchers, path.id, path.delegation_id)
    return {"data": rows, "count": len(rows)}


@bp.get("/conferences/<int:id>/delegations/<int:delegation_id>/wishes", responses={200: Open, **ERRORS})
def get_wishes(path: DelegationPath) -> Any:
    auth.require_user()
    d = conf.get_delegation(db(), path.id, path.delegation_id)
    wishes = q.wishes_of(db(), delegation_id=d.id or 0)
    return {"data": [{"delegation_id": k, "wish": v} for k, v in sorted(wishes.items())], "count": len(wishes)}


@bp.put("/conferences/<int:id>/delegations/<int:delegation_id>/wishes", responses={200: Open, **ERRORS})
def put_wishes(path: DelegationPath, body: WishesIn) -> Any:
    """Replace the delegation's wishes: ``must_meet``, ``would_like``, ``follow_up`` (cities already partners) or
    ``no_thanks`` about each other delegation (``none`` clears one)."""
    user = auth.require_user()
    out = conf.set_wishes(db(), user, path.id, path.delegation_id, list(body.wishes))
    return {"data": [{"delegation_id": k, "wish": v} for k, v in sorted(out.items())], "count": len(out)}


@bp.post("/conferences/<int:id>/schedule", responses={200: Open, **ERRORS})
def make_schedule(path: ConferencePath, body: ScheduleRequest) -> Any:
    """Schedule the meetings (MILP within ``time_limit`` seconds, the best found at the limit) and store them.
    Reports the objective, the solver's bound and gap, and greedy's objective for comparison. Organisers."""
    user = auth.require_user()
    return conf.schedule(db(), user, services().matchers, path.id, time_limit=_time_limit(body))


@bp.get("/conferences/<int:id>/schedule", responses={200: ListOf, **ERRORS})
def get_schedule(path: ConferencePath) -> Any:
    """Every meeting (slot, time, table, interpreter, the two delegations, the match it became)."""
    auth.require_user()
    g = conf.grid(db(), path.id)
    rows = [cell for s in g["slots"] for cell in s["cells"] if cell]
    return {"data": rows, "count": len(rows), "summary": g["conference"]["schedule"]}


@bp.post("/conferences/<int:id>/slots/<int:slot_id>/lose", responses={200: Open, **ERRORS})
def lose_slot(path: SlotPath) -> Any:
    """A slot is lost: its meetings are re-planned where possible; every other meeting stays. Organisers."""
    user = auth.require_user()
    info = conf.lose_slot(db(), user, services().matchers, path.id, path.slot_id, time_limit=_time_limit(None))
    return {"status": "lost", "schedule": info}


@bp.get("/conferences/<int:id>/delegations/<int:delegation_id>/agenda", responses={200: Open, **ERRORS})
def agenda(path: DelegationPath) -> Any:
    """The delegation's agenda: its meetings in time order with partner, table and interpreter."""
    auth.require_user()
    return conf.agenda(db(), path.id, path.delegation_id)


@bp.get("/conferences/<int:id>/delegations/<int:delegation_id>/agenda.ics", responses={200: None, **ERRORS})
def agenda_ics(path: DelegationPath) -> Any:
    """The agenda as an iCalendar (.ics) file, one event per meeting."""
    auth.require_user()
    body = conf.agenda_ics(db(), path.id, path.delegation_id)
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="agenda-{path.id}-{path.delegation_id}.ics"'},
    )


@bp.get("/conferences/<int:id>/grid", responses={200: Open, **ERRORS})
def grid(path: ConferencePath) -> Any:
    """The organisers' grid: slots × tables, each cell a meeting or null."""
    auth.require_user()
    return conf.grid(db(), path.id)


@bp.get("/conferences/<int:id>/unmet", responses={200: ListOf, **ERRORS})
def unmet(path: ConferencePath) -> Any:
    """Mutual must-meet wishes without a meeting, each with the reason (cancelled, no common slot, no
    interpreter, no table, capacity)."""
    auth.require_user()
    rows = conf.unmet(db(), path.id)
    return {"data": rows, "count": len(rows)}


@bp.post("/conferences/<int:id>/meetings/<int:meeting_id>/proposal", responses={201: Open, **ERRORS})
def propose(path: MeetingPath, body: ProposalRequest) -> Any:
    """After the conference: turn a meeting into a match proposal (an official of either city, or an admin); the
    review workflow takes over and the meeting shows the match's status."""
    user = auth.require_user()
    match_id = conf.propose_from_meeting(
        db(),
        user,
        services().settings,
        path.id,
        path.meeting_id,
        message=body.message,
        sectors=list(body.sectors),
    )
    return (
        {"meeting_id": path.meeting_id, "match_id": match_id},
        201,
        {"Location": url_for("matches.get_match", id=match_id)},
    )
