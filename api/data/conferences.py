"""Data access for conference mode: every query on the conference tables. Keyword-only arguments after the session.

Errors are :class:`api.errors.NotFound` (404) and :class:`api.errors.Conflict` (409).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, col, select

from api.data.conference_models import Conference, ConferenceMeeting, ConferenceSlot, Delegation, Wish
from api.data.models import City, Country, Match, Partnership, utcnow
from api.errors import Conflict, NotFound


# ---------------------------------------------------------------- conferences and slots
def list_conferences(session: Session) -> list[Conference]:
    return list(session.exec(select(Conference).order_by(col(Conference.starts_on).desc(), col(Conference.id))).all())


def get_conference(session: Session, *, conference_id: int) -> Conference:
    conf = session.get(Conference, conference_id)
    if conf is None:
        raise NotFound(f"conference {conference_id} not found")
    return conf


def newest_conference(session: Session) -> Conference | None:
    return session.exec(select(Conference).order_by(col(Conference.id).desc()).limit(1)).first()


def create_conference(
    session: Session,
    *,
    name: str,
    place: str,
    starts_on: date,
    ends_on: date,
    timezone: str,
    pivot_language: str,
    description: str,
    slots: Sequence[dict[str, Any]],
    illustrative: bool = False,
) -> Conference:
    conf = Conference(
        name=name,
        place=place,
        starts_on=starts_on,
        ends_on=ends_on,
        timezone=timezone,
        pivot_language=pivot_language,
        description=description,
        illustrative=illustrative,
    )
    session.add(conf)
    session.flush()
    for position, s in enumerate(slots):
        session.add(
            ConferenceSlot(
                conference_id=conf.id or 0,
                position=position,
                starts_at=s["starts_at"],
                ends_at=s["ends_at"],
                tables=s["tables"],
                interpreters=dict(s.get("interpreters") or {}),
            )
        )
    session.commit()
    return conf


def conference_slots(session: Session, *, conference_id: int) -> list[ConferenceSlot]:
    return list(
        session.exec(
            select(ConferenceSlot)
            .where(ConferenceSlot.conference_id == conference_id)
            .order_by(col(ConferenceSlot.position))
        ).all()
    )


def get_slot(session: Session, *, conference_id: int, slot_id: int) -> ConferenceSlot:
    slot = session.get(ConferenceSlot, slot_id)
    if slot is None or slot.conference_id != conference_id:
        raise NotFound(f"slot {slot_id} not found")
    return slot


def mark_slot_lost(session: Session, *, slot: ConferenceSlot) -> None:
    slot.lost = True
    session.add(slot)
    session.flush()


def set_schedule_info(session: Session, *, conference: Conference, info: dict[str, Any]) -> None:
    conference.schedule_info = info
    conference.updated_at = utcnow()
    session.add(conference)
    session.flush()


# ---------------------------------------------------------------- delegations
def conference_delegations(session: Session, *, conference_id: int, registered_only: bool = False) -> list[Delegation]:
    stmt = select(Delegation).where(Delegation.conference_id == conference_id)
    if registered_only:
        stmt = stmt.where(Delegation.status == "registered")
    return list(session.exec(stmt.order_by(col(Delegation.id))).all())


def get_delegation(session: Session, *, conference_id: int, delegation_id: int) -> Delegation:
    d = session.get(Delegation, delegation_id)
    if d is None or d.conference_id != conference_id:
        raise NotFound(f"delegation {delegation_id} not found")
    return d


def delegation_for_city(session: Session, *, conference_id: int, city_id: int) -> Delegation | None:
    return session.exec(
        select(Delegation).where(Delegation.conference_id == conference_id, Delegation.city_id == city_id)
    ).first()


def add_delegation(
    session: Session,
    *,
    conference_id: int,
    city_id: int,
    delegates: list[dict[str, str]],
    languages: list[str],
    slot_ids: list[int],
    registered_by: int | None,
) -> Delegation:
    existing = delegation_for_city(session, conference_id=conference_id, city_id=city_id)
    if existing is not None:
        if existing.status == "registered":
            raise Conflict(f"city {city_id} already has a delegation ({existing.id}) at this conference")
        d = existing  # a cancelled delegation registers again
        d.status = "registered"
    else:
        d = Delegation(conference_id=conference_id, city_id=city_id)
    d.delegates, d.languages, d.slot_ids = delegates, languages, slot_ids
    d.registered_by = registered_by
    d.updated_at = utcnow()
    session.add(d)
    session.commit()
    return d


def set_delegation_status(session: Session, *, delegation: Delegation, status: str) -> None:
    delegation.status = status
    delegation.updated_at = utcnow()
    session.add(delegation)
    session.flush()


def cities_of(session: Session, *, ids: Iterable[int]) -> dict[int, City]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {c.id: c for c in session.exec(select(City).where(col(City.id).in_(wanted))).all()}


def country_languages(session: Session, *, codes: Iterable[str]) -> dict[str, list[str]]:
    wanted = sorted(set(codes))
    rows = session.exec(select(Country).where(col(Country.code).in_(wanted))).all() if wanted else []
    return {
        c.code: list(
            dict.fromkeys(x.strip().split("-")[0].lower() for x in (c.languages or "").split(",") if x.strip())
        )
        for c in rows
    }


def partnered_pairs(session: Session, *, city_ids: Sequence[int]) -> set[tuple[int, int]]:
    """Existing partnerships among ``city_ids`` as (smaller id, larger id)."""
    ids = sorted(set(city_ids))
    if not ids:
        return set()
    rows = session.exec(
        select(Partnership.city_a_id, Partnership.city_b_id).where(
            col(Partnership.city_a_id).in_(ids), col(Partnership.city_b_id).in_(ids)
        )
    ).all()
    return {(min(a, b), max(a, b)) for a, b in rows}


# ---------------------------------------------------------------- wishes
def conference_wishes(session: Session, *, conference_id: int) -> list[Wish]:
    return list(session.exec(select(Wish).where(Wish.conference_id == conference_id).order_by(col(Wish.id))).all())


def wishes_of(session: Session, *, delegation_id: int) -> dict[int, str]:
    return {w.to_id: w.kind for w in session.exec(select(Wish).where(Wish.from_id == delegation_id)).all()}


def replace_wishes(session: Session, *, conference_id: int, from_id: int, wishes: dict[int, str]) -> None:
    """The delegation's wishes become exactly ``wishes`` ({to delegation id: kind})."""
    session.execute(delete(Wish).where(col(Wish.from_id) == from_id))
    now = utcnow()
    for to_id, kind in sorted(wishes.items()):
        session.add(Wish(conference_id=conference_id, from_id=from_id, to_id=to_id, kind=kind, updated_at=now))
    session.commit()


def add_wishes(session: Session, *, conference_id: int, rows: Iterable[tuple[int, int, str]]) -> int:
    """Insert (from, to, kind) wishes that do not exist yet (the demo seed); returns how many were new."""
    existing = {(w.from_id, w.to_id) for w in conference_wishes(session, conference_id=conference_id)}
    n = 0
    for a, b, kind in rows:
        if (a, b) not in existing and a != b:
            session.add(Wish(conference_id=conference_id, from_id=a, to_id=b, kind=kind))
            existing.add((a, b))
            n += 1
    session.flush()
    return n


# ---------------------------------------------------------------- meetings
def conference_meetings(session: Session, *, conference_id: int) -> list[ConferenceMeeting]:
    return list(
        session.exec(
            select(ConferenceMeeting)
            .where(ConferenceMeeting.conference_id == conference_id)
            .order_by(col(ConferenceMeeting.slot_id), col(ConferenceMeeting.table_no))
        ).all()
    )


def delegation_meetings(session: Session, *, conference_id: int, delegation_id: int) -> list[ConferenceMeeting]:
    return list(
        session.exec(
            select(ConferenceMeeting).where(
                ConferenceMeeting.conference_id == conference_id,
                or_(col(ConferenceMeeting.a_id) == delegation_id, col(ConferenceMeeting.b_id) == delegation_id),
            )
        ).all()
    )


def get_meeting(session: Session, *, conference_id: int, meeting_id: int) -> ConferenceMeeting:
    m = session.get(ConferenceMeeting, meeting_id)
    if m is None or m.conference_id != conference_id:
        raise NotFound(f"meeting {meeting_id} not found")
    return m


def replace_meetings(
    session: Session, *, conference_id: int, keep_ids: Sequence[int], new: Sequence[dict[str, Any]]
) -> None:
    """Delete the conference's meetings not in ``keep_ids`` (they stay as they are) and insert ``new``."""
    stmt = delete(ConferenceMeeting).where(col(ConferenceMeeting.conference_id) == conference_id)
    if keep_ids:
        stmt = stmt.where(col(ConferenceMeeting.id).not_in(list(keep_ids)))
    session.execute(stmt)
    for row in new:
        session.add(ConferenceMeeting(conference_id=conference_id, **row))
    session.flush()


def link_meeting_match(session: Session, *, meeting_id: int, match_id: int) -> bool:
    """Record the match a meeting became (only once: False when another request linked it first)."""
    result = session.execute(
        update(ConferenceMeeting)
        .where(and_(col(ConferenceMeeting.id) == meeting_id, col(ConferenceMeeting.match_id).is_(None)))
        .values(match_id=match_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def match_statuses(session: Session, *, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.exec(select(Match.id, Match.status).where(col(Match.id).in_(wanted))).all()
    return {int(i or 0): s for i, s in rows}


def custom_place(session: Session, *, name: str, country: str) -> City | None:
    """A custom place (a province, state or county entered by hand) by exact name and country."""
    return session.exec(
        select(City).where(City.name == name, City.country == country, col(City.is_custom).is_(True))
    ).first()
