"""Data access for users, API tokens and console login attempts. Keyword-only arguments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from api.data.models import ApiToken, LoginAttempt, User


def get_user(session: Session, *, name: str) -> User | None:
    """The user with this (already normalised) name."""
    return session.exec(select(User).where(User.name == name)).first()


def get_user_by_id(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_names(session: Session, *, ids: Iterable[int | None]) -> dict[int, str]:
    """User id → name for the given ids (None and unknown ids are left out)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {u.id or 0: u.name for u in session.exec(select(User).where(col(User.id).in_(wanted))).all()}


def list_users(session: Session, *, page: int, per_page: int) -> tuple[list[tuple[User, int]], int]:
    """A page of users by id, each with its number of live (unrevoked) tokens, and the total number of users."""
    live = (
        select(ApiToken.user_id, func.count().label("n"))
        .where(col(ApiToken.revoked_at).is_(None))
        .group_by(col(ApiToken.user_id))
        .subquery()
    )
    stmt = (
        select(User, func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.user_id == col(User.id))
        .order_by(col(User.id))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    rows = [(user, int(n)) for user, n in session.exec(stmt).all()]
    total = session.exec(select(func.count()).select_from(User)).one()
    return rows, int(total)


def get_live_token(session: Session, *, token_hash: str) -> ApiToken | None:
    """The unrevoked token with this hash."""
    return session.exec(
        select(ApiToken).where(ApiToken.token_hash == token_hash, col(ApiToken.revoked_at).is_(None))
    ).first()


def touch_token(session: Session, *, token_id: int, at: datetime) -> None:
    session.execute(update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=at))


def revoke_tokens(session: Session, *, at: datetime, user_id: int | None = None, prefix: str | None = None) -> int:
    """Revoke the live tokens of ``user_id`` and/or with ``prefix``; returns how many."""
    stmt = update(ApiToken).where(col(ApiToken.revoked_at).is_(None))
    if user_id is not None:
        stmt = stmt.where(col(ApiToken.user_id) == user_id)
    if prefix:
        stmt = stmt.where(col(ApiToken.prefix) == prefix)
    result = session.execute(stmt.values(revoked_at=at))
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_login_attempts(session: Session, *, before: datetime | None = None, key: str | None = None) -> None:
    """Delete the failed login attempts older than ``before`` and/or of ``key``."""
    stmt = delete(LoginAttempt)
    if before is not None:
        stmt = stmt.where(col(LoginAttempt.at) < before)
    if key is not None:
        stmt = stmt.where(col(LoginAttempt.key) == key)
    session.execute(stmt)


def count_login_failures(session: Session, *, key: str, address: str, since: datetime) -> tuple[int, int]:
    """Failed attempts since ``since`` for ``key`` (user name and address), and for the address alone."""
    per_key = session.exec(select(func.count()).where(LoginAttempt.key == key, col(LoginAttempt.at) >= since)).one()
    per_addr = session.exec(
        select(func.count()).where(col(LoginAttempt.key).endswith(f"|{address}"), col(LoginAttempt.at) >= since)
    ).one()
    return int(per_key), int(per_addr)


def count_name_failures(session: Session, *, name: str, since: datetime) -> int:
    """Failed attempts since ``since`` for the user name ``name``, from any address."""
    stmt = select(func.count()).where(
        col(LoginAttempt.key).startswith(f"{name}|", autoescape=True), col(LoginAttempt.at) >= since
    )
    return int(session.exec(stmt).one())
