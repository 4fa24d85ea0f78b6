"""The match workflow: proposals, coordinators' decisions, the partner city's answer, expiry, the audit trail.

::

    proposed ──review──▶ under_review ──accept──▶ accepted ──confirm──▶ confirmed  (a Partnership is created)
        │                     │                       └────decline──▶ declined
        ├──────accept/reject──┴──reject──▶ rejected
        ├─ withdraw (the proposing city) ─▶ withdrawn
        └─ (proposed, under_review, accepted) ── too old ──▶ expired

Every transition is a compare-and-swap on ``match.version`` (``UPDATE … WHERE id = ? AND version = ?``), so of two
concurrent decisions exactly one changes the row; the other sees no row updated and gets a 409 with the current
state. The transition and its audit event are written in one transaction. Repeating one's own last decision is a
no-op (idempotent). The audit table is append-only: the app never updates or deletes it, and on PostgreSQL (and
SQLite) a trigger refuses UPDATE and DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.config import Settings
from api.data import crud
from api.data.models import City, Match, MatchEvent, Partnership, ScoreSet, Suggestion, User, utcnow
from api.web.auth import Principal

OPEN = ("proposed", "under_review", "accepted")
AWAITING_REVIEW = ("proposed", "under_review")
STATUSES = ("proposed", "under_review", "accepted", "rejected", "confirmed", "declined", "withdrawn", "expired")
FINAL = ("rejected", "confirmed", "declined", "withdrawn", "expired")


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str
    actor: str  # "coordinator" (coordinators in scope, admins), "partner" (the partner city), "proposer"
    needs_note: bool = False


TRANSITIONS: dict[str, Transition] = {
    "review": Transition(("proposed",), "under_review", "coordinator"),
    "accept": Transition(AWAITING_REVIEW, "accepted", "coordinator"),
    "reject": Transition(AWAITING_REVIEW, "rejected", "coordinator", needs_note=True),
    "confirm": Transition(("accepted",), "confirmed", "partner"),
    "decline": Transition(("accepted",), "declined", "partner", needs_note=True),
    "withdraw": Transition(AWAITING_REVIEW, "withdrawn", "proposer"),
}
ACTIONS = tuple(TRANSITIONS)


class WorkflowError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, match: Match | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.match = match


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# ---------------------------------------------------------------- who may do what
def may_see(user: Principal, match: Match, countries: tuple[str, str]) -> bool:
    if user.is_admin:
        return True
    if user.role == "official":
        return user.official_of(match.city_id) or user.official_of(match.partner_id)
    return any(user.covers_country(c) for c in countries)


def may_act(user: Principal, match: Match, action: str, countries: tuple[str, str]) -> bool:
    t = TRANSITIONS[action]
    if user.is_admin:
        return True
    if t.actor == "coordinator":
        return user.role == "coordinator" and any(user.covers_country(c) for c in countries)
    if t.actor == "partner":
        return user.official_of(match.partner_id)
    return user.official_of(match.city_id)  # proposer


def pair_countries(session: Session, match: Match) -> tuple[str, str]:
    a = session.get(City, match.city_id)
    b = session.get(City, match.partner_id)
    return (a.country if a else "", b.country if b else "")


def allowed_actions(session: Session, user: Principal | None, match: Match) -> list[str]:
    if user is None:
        return []
    countries = pair_countries(session, match)
    return [a for a, t in TRANSITIONS.items() if match.status in t.sources and may_act(user, match, a, countries)]


# ---------------------------------------------------------------- queries
def get_match(session: Session, match_id: int) -> Match:
    m = session.get(Match, match_id)
    if m is None:
        raise WorkflowError(404, f"match {match_id} not found")
    return m


def history(session: Session, match_id: int) -> list[MatchEvent]:
    return list(
        session.exec(
            select(MatchEvent).where(MatchEvent.match_id == match_id).order_by(col(MatchEvent.at), col(MatchEvent.id))
        ).all()
    )


def list_matches(
    session: Session,
    user: Principal,
    *,
    status: list[str] | None = None,
    city: int | None = None,
    country: str | None = None,
    queue: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Match], int]:
    """Matches the user may see, newest first; ``queue`` = awaiting a coordinator's decision (oldest first)."""
    stmt = select(Match)
    if user.role == "official":
        stmt = stmt.where(or_(col(Match.city_id).in_(user.cities), col(Match.partner_id).in_(user.cities)))
    elif user.role == "coordinator" and user.countries:
        in_scope = select(City.id).where(col(City.country).in_(user.countries))
        stmt = stmt.where(or_(col(Match.city_id).in_(in_scope), col(Match.partner_id).in_(in_scope)))
    if queue:
        stmt = stmt.where(col(Match.status).in_(AWAITING_REVIEW))
    if status:
        stmt = stmt.where(col(Match.status).in_(status))
    if city is not None:
        stmt = stmt.where(or_(col(Match.city_id) == city, col(Match.partner_id) == city))
    if country:
        of_country = select(City.id).where(City.country == country)
        stmt = stmt.where(or_(col(Match.city_id).in_(of_country), col(Match.partner_id).in_(of_country)))
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    order = [col(Match.created_at), col(Match.id)] if queue else [col(Match.updated_at).desc(), col(Match.id).desc()]
    rows = session.exec(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), int(count)


def excluded_partners(session: Session, city_id: int, cooldown_days: float) -> set[int]:
    """Partners not to suggest to ``city_id``: pairs rejected or declined within the cooldown."""
    if cooldown_days <= 0:
        return set()
    since = utcnow() - timedelta(days=cooldown_days)
    rows = session.exec(
        select(Match.city_id, Match.partner_id).where(
            or_(col(Match.city_id) == city_id, col(Match.partner_id) == city_id),
            col(Match.status).in_(("rejected", "declined")),
            col(Match.updated_at) >= since,
        )
    ).all()
    return {b if a == city_id else a for a, b in rows}


def _stored_score(session: Session, city_id: int, partner_id: int) -> float | None:
    stmt = (
        select(Suggestion.score)
        .join(ScoreSet, col(ScoreSet.id) == col(Suggestion.score_set_id))
        .where(ScoreSet.status == "complete", Suggestion.city_id == city_id, Suggestion.candidate_id == partner_id)
        .order_by(col(Suggestion.score_set_id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


# ---------------------------------------------------------------- writes
def _event(
    match: Match, actor: Principal | None, action: str, source: str | None, target: str, note: str
) -> MatchEvent:
    return MatchEvent(
        match_id=match.id or 0,
        actor_id=actor.id if actor else None,
        actor_name=actor.name if actor else "system",
        action=action,
        from_status=source,
        to_status=target,
        note=note,
    )


def propose(
    session: Session,
    user: Principal,
    settings: Settings,
    *,
    city_id: int,
    partner_id: int,
    message: str,
    sectors: list[str],
) -> Match:
    if not user.can_edit_city(city_id):
        raise WorkflowError(403, f"only an official of city {city_id} (or an admin) may propose for it", "city_id")
    if city_id == partner_id:
        raise WorkflowError(422, "a city cannot twin with itself", "partner_id")
    for cid, fld in ((city_id, "city_id"), (partner_id, "partner_id")):
        if session.get(City, cid) is None:
            raise WorkflowError(404, f"city {cid} not found", fld)
    if partner_id in crud.partner_ids(session, city_id):
        raise WorkflowError(409, f"cities {city_id} and {partner_id} are already partners", "partner_id")
    expire_due(session, settings)
    pair = or_(
        and_(col(Match.city_id) == city_id, col(Match.partner_id) == partner_id),
        and_(col(Match.city_id) == partner_id, col(Match.partner_id) == city_id),
    )
    open_match = session.exec(select(Match).where(pair, col(Match.status).in_(OPEN))).first()
    if open_match is not None:
        raise WorkflowError(409, f"this pair already has an open match ({open_match.id})", "partner_id", open_match)
    if partner_id in excluded_partners(session, city_id, settings.MATCH_COOLDOWN_DAYS):
        raise WorkflowError(
            409,
            f"this pair was rejected or declined within the last {settings.MATCH_COOLDOWN_DAYS:g} days",
            "partner_id",
        )
    now = utcnow()
    m = Match(
        city_id=city_id,
        partner_id=partner_id,
        status="proposed",
        message=message,
        sectors=list(dict.fromkeys(sectors)),
        score=_stored_score(session, city_id, partner_id),
        proposed_by=user.id,
        expires_at=now + timedelta(days=settings.MATCH_REVIEW_DAYS),
        created_at=now,
        updated_at=now,
    )
    session.add(m)
    try:
        session.flush()
    except IntegrityError as e:  # a concurrent proposal for the same pair won
        session.rollback()
        raise WorkflowError(409, "this pair already has an open match", "partner_id") from e
    session.add(_event(m, user, "propose", None, "proposed", message))
    session.commit()
    return m


def decide(
    session: Session,
    user: Principal,
    settings: Settings,
    match_id: int,
    action: str,
    note: str = "",
    expected_version: int | None = None,
) -> tuple[Match, bool]:
    """Apply ``action``; returns (match, changed). Raises WorkflowError (403, 404, 409, 422)."""
    t = TRANSITIONS[action]
    note = note.strip()
    m = get_match(session, match_id)
    expire_due(session, settings, [m.id or 0])
    session.refresh(m)
    countries = pair_countries(session, m)
    if not may_see(user, m, countries):
        raise WorkflowError(403, f"you may not see match {match_id}")
    if not may_act(user, m, action, countries):
        who = {
            "coordinator": "a coordinator for these countries",
            "partner": "an official of the partner city",
            "proposer": "an official of the proposing city",
        }[t.actor]
        raise WorkflowError(403, f"only {who} (or an admin) may {action} this match", match=m)
    if t.needs_note and not note:
        raise WorkflowError(422, f"to {action} a match, say why in 'note'", "note")
    if _is_repeat(session, m, user, action):
        return m, False
    if m.status not in t.sources:
        raise WorkflowError(409, f"cannot {action} a match that is {m.status}", match=m)
    if expected_version is not None and expected_version != m.version:
        raise WorkflowError(409, f"the match changed (version {m.version}, you sent {expected_version})", match=m)
    now = utcnow()
    values: dict[str, Any] = {"status": t.target, "version": m.version + 1, "updated_at": now}
    if t.actor == "coordinator":
        values["reviewer_id"] = user.id
        if action != "review":
            values["decision_note"] = note
    if action in ("reject", "decline", "withdraw"):
        values["reason"] = note
    if action == "accept":
        values["expires_at"] = now + timedelta(days=settings.MATCH_CONFIRM_DAYS)
    if t.target in FINAL:
        values["expires_at"] = None
    source, version = m.status, m.version
    result = session.execute(
        update(Match)
        .where(col(Match.id) == m.id, col(Match.version) == version, col(Match.status) == source)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(m)
        if _is_repeat(session, m, user, action):
            return m, False
        raise WorkflowError(409, f"the match was changed by someone else; it is now {m.status}", match=m)
    session.add(_event(m, user, action, source, t.target, note))
    if action == "confirm":
        session.refresh(m)
        _make_partnership(session, m)
    session.commit()
    session.refresh(m)
    return m, True


def _is_repeat(session: Session, m: Match, user: Principal, action: str) -> bool:
    """The match is where ``action`` leads, and the last step there was this user's same action."""
    if m.status != TRANSITIONS[action].target:
        return False
    last = session.exec(
        select(MatchEvent).where(MatchEvent.match_id == m.id).order_by(col(MatchEvent.id).desc()).limit(1)
    ).first()
    return last is not None and last.action == action and last.actor_id == user.id


def _make_partnership(session: Session, m: Match) -> None:
    a, b = sorted((m.city_id, m.partner_id))
    existing = session.exec(select(Partnership).where(Partnership.city_a_id == a, Partnership.city_b_id == b)).first()
    if existing is None:
        existing = Partnership(
            city_a_id=a,
            city_b_id=b,
            status="active",
            since=utcnow().year,
            sectors=list(m.sectors or []),
            source="match",
        )
        session.add(existing)
    else:
        existing.status = "active"
        existing.sectors = list(dict.fromkeys([*(existing.sectors or []), *(m.sectors or [])]))
        session.add(existing)
    session.flush()
    session.execute(update(Match).where(col(Match.id) == m.id).values(partnership_id=existing.id))


def expire_due(
    session: Session, settings: Settings, ids: list[int] | None = None, now: datetime | None = None
) -> list[int]:
    """Expire open matches past their deadline (each with its reason in the audit trail); returns their ids."""
    now = now or utcnow()
    stmt = select(Match).where(
        col(Match.status).in_(OPEN), col(Match.expires_at).is_not(None), col(Match.expires_at) < now
    )
    if ids is not None:
        stmt = stmt.where(col(Match.id).in_(ids))
    expired = []
    for m in session.exec(stmt).all():
        if m.status == "accepted":
            reason = f"the partner city did not confirm within {settings.MATCH_CONFIRM_DAYS:g} days"
        else:
            reason = f"no coordinator decided within {settings.MATCH_REVIEW_DAYS:g} days"
        source = m.status
        result = session.execute(
            update(Match)
            .where(col(Match.id) == m.id, col(Match.version) == m.version)
            .values(status="expired", version=m.version + 1, updated_at=now, reason=reason, expires_at=None)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.add(_event(m, None, "expire", source, "expired", reason))
            expired.append(m.id or 0)
    if expired:
        session.commit()
    return expired


def user_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {u.id or 0: u.name for u in session.exec(select(User).where(col(User.id).in_(wanted))).all()}
