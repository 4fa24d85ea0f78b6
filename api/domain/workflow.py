"""The match workflow: proposals, coordinators' decisions, the partner city's answer, expiry, the audit trail.

::

    proposed ──review──▶ under_review ──accept──▶ accepted ──confirm──▶ confirmed  (a Partnership is created)
        │                     │                       └────decline──▶ declined
        ├──────accept/reject──┴──reject──▶ rejected
        ├─ withdraw (the proposing city) ─▶ withdrawn
        └─ (proposed, under_review, accepted) ── too old ──▶ expired

Every transition is a compare-and-swap on ``match.version`` (``UPDATE … WHERE id = ? AND version = ?``), so of two
concurrent decisions exactly one changes the row; the other sees no row updated and gets a 409 with the current
state (``error.current``). The transition and its audit event are written in one transaction. Repeating one's own last decision is a
no-op (idempotent). The audit table is append-only: the app never updates or deletes it, and on PostgreSQL (and
SQLite) a trigger refuses UPDATE and DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data import matches as store
from api.data.models import Match, MatchEvent, Partnership, utcnow
from api.domain.accounts import Principal
from api.errors import Conflict, Forbidden, Invalid, NotFound

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


def current(m: Match) -> dict[str, Any]:
    """What a 403 or 409 about a match tells the caller (``error.current``)."""
    return {"id": m.id, "status": m.status, "version": m.version}


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
    return store.pair_countries(session, city_id=match.city_id, partner_id=match.partner_id)


def allowed_actions(session: Session, user: Principal | None, match: Match) -> list[str]:
    if user is None:
        return []
    countries = pair_countries(session, match)
    return [a for a, t in TRANSITIONS.items() if match.status in t.sources and may_act(user, match, a, countries)]


# ---------------------------------------------------------------- queries
def get_match(session: Session, match_id: int) -> Match:
    m = store.get_match(session, match_id=match_id)
    if m is None:
        raise NotFound(f"match {match_id} not found")
    return m


def history(session: Session, match_id: int) -> list[MatchEvent]:
    return store.history(session, match_id=match_id)


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
    statuses: list[str] | None = list(status) if status else None
    if queue:
        statuses = [s for s in AWAITING_REVIEW if statuses is None or s in statuses]
    return store.list_matches(
        session,
        of_cities=user.cities if user.role == "official" else None,
        of_countries=user.countries if user.role == "coordinator" and user.countries else None,
        statuses=statuses,
        city=city,
        country=country,
        oldest_first=queue,
        page=page,
        per_page=per_page,
    )


def excluded_partners(session: Session, city_id: int, cooldown_days: float) -> set[int]:
    """Partners not to suggest to ``city_id``: pairs rejected or declined within the cooldown."""
    if cooldown_days <= 0:
        return set()
    since = utcnow() - timedelta(days=cooldown_days)
    return store.partners_with_status(session, city_id=city_id, statuses=("rejected", "declined"), since=since)


def exclusions(session: Session, city_id: int, cooldown_days: float) -> tuple[set[int], datetime | None]:
    """:func:`excluded_partners`, and when the first of them comes back (its cooldown ends; None: none excluded)."""
    if cooldown_days <= 0:
        return set(), None
    cooldown = timedelta(days=cooldown_days)
    since = utcnow() - cooldown
    changed = store.partners_changed_at(session, city_id=city_id, statuses=("rejected", "declined"), since=since)
    return set(changed), (min(changed.values()) + cooldown if changed else None)


def open_matches(session: Session, city_id: int) -> dict[int, Match]:
    """The open matches of ``city_id``, keyed by the other city."""
    rows = store.matches_of_city(session, city_id=city_id, statuses=OPEN)
    return {m.partner_id if m.city_id == city_id else m.city_id: m for m in rows}


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
        raise Forbidden(f"only an official of city {city_id} (or an admin) may propose for it", "city_id")
    if city_id == partner_id:
        raise Invalid("a city cannot twin with itself", "partner_id")
    crud.referenced_city(session, city_id=city_id, field="city_id")
    crud.referenced_city(session, city_id=partner_id, field="partner_id")
    if partner_id in crud.partner_ids(session, city_id=city_id):
        raise Conflict(f"cities {city_id} and {partner_id} are already partners", "partner_id")
    expire_due(session, settings)
    open_match = store.pair_match(session, city_id=city_id, partner_id=partner_id, statuses=OPEN)
    if open_match is not None:
        raise Conflict(
            f"this pair already has an open match ({open_match.id})", "partner_id", current=current(open_match)
        )
    if partner_id in excluded_partners(session, city_id, settings.MATCH_COOLDOWN_DAYS):
        raise Conflict(
            f"this pair was rejected or declined within the last {settings.MATCH_COOLDOWN_DAYS:g} days", "partner_id"
        )
    now = utcnow()
    m = Match(
        city_id=city_id,
        partner_id=partner_id,
        status="proposed",
        message=message,
        sectors=list(dict.fromkeys(sectors)),
        score=store.stored_score(session, city_id=city_id, partner_id=partner_id),
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
        raise Conflict("this pair already has an open match", "partner_id") from e
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
    """Apply ``action``; returns (match, changed). Raises Forbidden, NotFound, Conflict or Invalid."""
    t = TRANSITIONS[action]
    note = note.strip()
    m = get_match(session, match_id)
    expire_due(session, settings, [m.id or 0])
    session.refresh(m)
    countries = pair_countries(session, m)
    if not may_see(user, m, countries):
        raise Forbidden(f"you may not see match {match_id}")
    if not may_act(user, m, action, countries):
        who = {
            "coordinator": "a coordinator for these countries",
            "partner": "an official of the partner city",
            "proposer": "an official of the proposing city",
        }[t.actor]
        raise Forbidden(f"only {who} (or an admin) may {action} this match", current=current(m))
    if t.needs_note and not note:
        raise Invalid(f"to {action} a match, say why in 'note'", "note")
    if _is_repeat(session, m, user, action):
        return m, False
    if m.status not in t.sources:
        raise Conflict(f"cannot {action} a match that is {m.status}", current=current(m))
    if expected_version is not None and expected_version != m.version:
        raise Conflict(f"the match changed (version {m.version}, you sent {expected_version})", current=current(m))
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
    if not store.swap(session, match_id=m.id or 0, version=version, status=source, values=values):
        session.rollback()
        session.refresh(m)
        if _is_repeat(session, m, user, action):
            return m, False
        raise Conflict(f"the match was changed by someone else; it is now {m.status}", current=current(m))
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
    last = store.last_event(session, match_id=m.id or 0)
    return last is not None and last.action == action and last.actor_id == user.id


def _make_partnership(session: Session, m: Match) -> None:
    a, b = sorted((m.city_id, m.partner_id))
    existing = crud.get_partnership(session, city_a_id=a, city_b_id=b)
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
    store.set_partnership(session, match_id=m.id or 0, partnership_id=existing.id or 0)


def expire_due(
    session: Session, settings: Settings, ids: list[int] | None = None, now: datetime | None = None
) -> list[int]:
    """Expire open matches past their deadline (each with its reason in the audit trail); returns their ids."""
    now = now or utcnow()
    expired = []
    for m in store.due_matches(session, statuses=OPEN, now=now, ids=ids):
        if m.status == "accepted":
            reason = f"the partner city did not confirm within {settings.MATCH_CONFIRM_DAYS:g} days"
        else:
            reason = f"no coordinator decided within {settings.MATCH_REVIEW_DAYS:g} days"
        source = m.status
        values = {
            "status": "expired",
            "version": m.version + 1,
            "updated_at": now,
            "reason": reason,
            "expires_at": None,
        }
        if store.swap(session, match_id=m.id or 0, version=m.version, values=values):
            session.add(_event(m, None, "expire", source, "expired", reason))
            expired.append(m.id or 0)
    if expired:
        session.commit()
    return expired
