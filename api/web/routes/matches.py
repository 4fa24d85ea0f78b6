"""The match workflow under /api/v1/matches: propose, review, accept/reject, confirm/decline, with the audit trail."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_openapi3 import APIBlueprint, Tag

from api.data import accounts, crud
from api.data.models import Match
from api.domain import workflow
from api.domain.accounts import Principal
from api.errors import Forbidden
from api.schemas import (
    ErrorResponse,
    MatchCreate,
    MatchDecision,
    MatchDetail,
    MatchList,
    MatchPath,
    MatchPublic,
    MatchQuery,
    MePublic,
)
from api.web import auth
from api.web.context import db, services
from api.web.routes import error_responses

bp = APIBlueprint(
    "matches",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="matches", description="proposals of new partnerships and their review")],
    abp_security=auth.BEARER,
)
ERRORS = error_responses(401, 403, 404, 409, 422)


def match_public(rows: list[Match], user: Principal | None, *, with_history: bool = False) -> list[dict[str, Any]]:
    session = db()
    ids = {r.city_id for r in rows} | {r.partner_id for r in rows}
    cities = crud.cities_by_id(session, ids=list(ids))
    names = accounts.user_names(session, ids={r.proposed_by for r in rows} | {r.reviewer_id for r in rows})
    out = []
    for r in rows:
        item: dict[str, Any] = {
            "id": r.id or 0,
            "city": cities[r.city_id],
            "partner": cities[r.partner_id],
            "status": r.status,
            "message": r.message,
            "sectors": list(r.sectors or []),
            "score": r.score,
            "proposed_by": names.get(r.proposed_by or 0),
            "reviewer": names.get(r.reviewer_id or 0),
            "decision_note": r.decision_note,
            "reason": r.reason,
            "partnership_id": r.partnership_id,
            "version": r.version,
            "expires_at": r.expires_at,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "allowed_actions": workflow.allowed_actions(session, user, r),
        }
        if with_history:
            item["history"] = [
                {
                    "id": e.id or 0,
                    "actor": e.actor_name,
                    "action": e.action,
                    "from_status": e.from_status,
                    "to_status": e.to_status,
                    "note": e.note,
                    "at": e.at,
                }
                for e in workflow.history(session, r.id or 0)
            ]
            out.append(MatchDetail(**item).model_dump(mode="json"))
        else:
            out.append(MatchPublic(**item).model_dump(mode="json"))
    return out


@bp.get("/me", responses={200: MePublic, 401: ErrorResponse})
def me() -> Any:
    """Who the token belongs to: name, role, cities (officials) and countries (coordinators)."""
    return auth.require_user().public()


@bp.get("/matches", responses={200: MatchList, **ERRORS})
def list_matches(query: MatchQuery) -> Any:
    """Matches you may see (officials: your cities'; coordinators: your countries'; admins: all), with filters.

    ``queue=true`` is the coordinator's review queue: matches awaiting a decision, oldest first.
    """
    user = auth.require_user()
    session = db()
    workflow.expire_due(session, services().settings)
    rows, count = workflow.list_matches(
        session,
        user,
        status=list(query.status) if query.status else None,
        city=query.city,
        country=query.country,
        queue=query.queue,
        page=query.page,
        per_page=query.per_page,
    )
    return {"data": match_public(rows, user), "count": count, "page": query.page, "per_page": query.per_page}


@bp.post("/matches", responses={201: MatchDetail, **ERRORS})
def create_match(body: MatchCreate) -> Any:
    """Propose a partnership (an official of ``city_id``, or an admin), with a message and chosen sectors.

    409 when the cities are already partners, the pair has an open match, or it was rejected or declined within
    the cooldown (TWINNING_MATCH_COOLDOWN_DAYS).
    """
    user = auth.require_user()
    m = workflow.propose(
        db(),
        user,
        services().settings,
        city_id=body.city_id,
        partner_id=body.partner_id,
        message=body.message,
        sectors=list(body.sectors),
    )
    return match_public([m], user, with_history=True)[0], 201, {"Location": url_for("matches.get_match", id=m.id)}


@bp.get("/matches/<int:id>", responses={200: MatchDetail, **ERRORS})
def get_match(path: MatchPath) -> Any:
    """One match with its full audit trail (who, when, from, to, note) and what you may do next."""
    user = auth.require_user()
    session = db()
    m = workflow.get_match(session, path.id)
    workflow.expire_due(session, services().settings, [path.id])
    session.refresh(m)
    if not workflow.may_see(user, m, workflow.pair_countries(session, m)):
        raise Forbidden(f"you may not see match {path.id}")
    return match_public([m], user, with_history=True)[0]


@bp.post("/matches/<int:id>/decisions", responses={200: MatchDetail, **ERRORS})
def decide(path: MatchPath, body: MatchDecision) -> Any:
    """Move a match on: ``review``/``accept``/``reject`` (coordinators in scope), ``confirm``/``decline`` (the
    partner city's officials), ``withdraw`` (the proposing city's officials); admins may do all.

    ``reject`` and ``decline`` need a ``note`` saying why. A transition that does not fit the current state, or a
    stale ``expected_version``, answers 409 with ``error.current`` (the match's status and version); of two
    concurrent decisions exactly one wins. Repeating your own last decision answers 200 and changes nothing.
    Confirming an accepted match creates the partnership (status active, the chosen sectors).
    """
    user = auth.require_user()
    session = db()
    m, changed = workflow.decide(
        session, user, services().settings, path.id, body.action, body.note, body.expected_version
    )
    if changed and m.status == "confirmed":
        services().matchers.invalidate()
    return match_public([m], user, with_history=True)[0]
