"""Data access for matches and their audit trail. Keyword-only arguments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.data.models import City, Match, MatchEvent, ScoreSet, Suggestion


def get_match(session: Session, *, match_id: int) -> Match | None:
    return session.get(Match, match_id)


def pair_countries(session: Session, *, city_id: int, partner_id: int) -> tuple[str, str]:
    """The countries of both cities ("" for a missing city)."""
    a = session.get(City, city_id)
    b = session.get(City, partner_id)
    return (a.country if a else "", b.country if b else "")


def history(session: Session, *, match_id: int) -> list[MatchEvent]:
    """A match's audit trail, oldest first."""
    return list(
        session.exec(
            select(MatchEvent).where(MatchEvent.match_id == match_id).order_by(col(MatchEvent.at), col(MatchEvent.id))
        ).all()
    )


def last_event(session: Session, *, match_id: int) -> MatchEvent | None:
    return session.exec(
        select(MatchEvent).where(MatchEvent.match_id == match_id).order_by(col(MatchEvent.id).desc()).limit(1)
    ).first()


def list_matches(
    session: Session,
    *,
    of_cities: Sequence[int] | None = None,
    of_countries: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    city: int | None = None,
    country: str | None = None,
    oldest_first: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Match], int]:
    """A page of matches and their total; ``of_cities``/``of_countries`` keep those with a city among them (either
    side), ``statuses`` those in one of the statuses. Newest change first unless ``oldest_first``."""
    stmt = select(Match)
    if of_cities is not None:
        stmt = stmt.where(or_(col(Match.city_id).in_(of_cities), col(Match.partner_id).in_(of_cities)))
    if of_countries is not None:
        in_scope = select(City.id).where(col(City.country).in_(of_countries))
        stmt = stmt.where(or_(col(Match.city_id).in_(in_scope), col(Match.partner_id).in_(in_scope)))
    if statuses is not None:
        stmt = stmt.where(col(Match.status).in_(statuses))
    if city is not None:
        stmt = stmt.where(or_(col(Match.city_id) == city, col(Match.partner_id) == city))
    if country:
        of_country = select(City.id).where(City.country == country)
        stmt = stmt.where(or_(col(Match.city_id).in_(of_country), col(Match.partner_id).in_(of_country)))
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    order = (
        [col(Match.created_at), col(Match.id)] if oldest_first else [col(Match.updated_at).desc(), col(Match.id).desc()]
    )
    rows = session.exec(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), int(count)


@cache
def _partners_stmt() -> Any:
    """Built once: it runs on every suggestions request (the cooldown exclusions), through Core."""
    m = Match.__table__  # type: ignore[attr-defined]
    return sa_select(m.c.city_id, m.c.partner_id, m.c.updated_at).where(
        or_(m.c.city_id == bindparam("city_id"), m.c.partner_id == bindparam("city_id")),
        m.c.status.in_(bindparam("statuses", expanding=True)),
        m.c.updated_at >= bindparam("since"),
    )


def partners_with_status(session: Session, *, city_id: int, statuses: Sequence[str], since: datetime) -> set[int]:
    """The other cities of ``city_id``'s matches in one of ``statuses`` changed since ``since``."""
    return set(partners_changed_at(session, city_id=city_id, statuses=statuses, since=since))


def partners_changed_at(
    session: Session, *, city_id: int, statuses: Sequence[str], since: datetime
) -> dict[int, datetime]:
    """The other cities of ``city_id``'s matches in one of ``statuses`` changed since ``since``, each with the last
    change of such a match (UTC)."""
    params = {"city_id": city_id, "statuses": list(statuses), "since": since}
    out: dict[int, datetime] = {}
    for a, b, at in session.connection().execute(_partners_stmt(), params).all():
        other = b if a == city_id else a
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite gives naive UTC
        if other not in out or at > out[other]:
            out[other] = at
    return out


def matches_of_city(session: Session, *, city_id: int, statuses: Sequence[str]) -> list[Match]:
    """``city_id``'s matches (either side) in one of ``statuses``."""
    return list(
        session.exec(
            select(Match).where(
                or_(col(Match.city_id) == city_id, col(Match.partner_id) == city_id), col(Match.status).in_(statuses)
            )
        ).all()
    )


def matches_to_answer(session: Session, *, partner_id: int) -> list[Match]:
    """Accepted matches that await the answer of ``partner_id``."""
    return list(
        session.exec(select(Match).where(col(Match.partner_id) == partner_id, col(Match.status) == "accepted")).all()
    )


def pair_match(session: Session, *, city_id: int, partner_id: int, statuses: Sequence[str]) -> Match | None:
    """A match of the pair (in either direction) in one of ``statuses``."""
    pair = or_(
        and_(col(Match.city_id) == city_id, col(Match.partner_id) == partner_id),
        and_(col(Match.city_id) == partner_id, col(Match.partner_id) == city_id),
    )
    return session.exec(select(Match).where(pair, col(Match.status).in_(statuses))).first()


def stored_score(session: Session, *, city_id: int, partner_id: int) -> float | None:
    """The pair's score in the newest complete score set that holds it."""
    stmt = (
        select(Suggestion.score)
        .join(ScoreSet, col(ScoreSet.id) == col(Suggestion.score_set_id))
        .where(ScoreSet.status == "complete", Suggestion.city_id == city_id, Suggestion.candidate_id == partner_id)
        .order_by(col(Suggestion.score_set_id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def due_matches(
    session: Session, *, statuses: Sequence[str], now: datetime, ids: Sequence[int] | None = None
) -> list[Match]:
    """Matches in one of ``statuses`` whose deadline is before ``now`` (only ``ids`` if given)."""
    stmt = select(Match).where(
        col(Match.status).in_(statuses), col(Match.expires_at).is_not(None), col(Match.expires_at) < now
    )
    if ids is not None:
        stmt = stmt.where(col(Match.id).in_(ids))
    return list(session.exec(stmt).all())


def swap(session: Session, *, match_id: int, version: int, values: dict[str, Any], status: str | None = None) -> bool:
    """Compare-and-swap: update the match if it still has ``version`` (and ``status``); True if it did."""
    stmt = update(Match).where(col(Match.id) == match_id, col(Match.version) == version)
    if status is not None:
        stmt = stmt.where(col(Match.status) == status)
    result = session.execute(stmt.values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def set_partnership(session: Session, *, match_id: int, partnership_id: int) -> None:
    session.execute(update(Match).where(col(Match.id) == match_id).values(partnership_id=partnership_id))
