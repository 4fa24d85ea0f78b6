"""Conference mode tables: a conference, its meeting slots, the delegations, their wishes and the scheduled meetings.

Imported by :mod:`api.data.models` so the tables are registered with the rest; the migration is
``0003_conferences``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:  # as api.data.models.utcnow (not imported: models imports this module)
    return datetime.now(UTC)


DELEGATION_STATUSES = ("registered", "cancelled")
WISH_KINDS = ("must_meet", "would_like", "follow_up", "no_thanks")


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON))


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index),
    )


class Conference(SQLModel, table=True):
    """A conference of one-to-one meetings. ``schedule_info`` summarises the last scheduling run (objective, bound,
    gap, the greedy comparison, kept/released meetings after a change)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    place: str = Field(default="", max_length=200)
    starts_on: date
    ends_on: date
    timezone: str = Field(default="UTC", max_length=60)
    pivot_language: str = Field(default="en", max_length=8)
    description: str = Field(default="", max_length=5000)
    illustrative: bool = False  # the demo conference shipped with the seed
    schedule_info: dict[str, Any] = _json(dict)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ConferenceSlot(SQLModel, table=True):
    """A meeting slot: ``tables`` tables and ``interpreters`` ({language: how many on duty}); ``lost`` when it was
    cancelled after scheduling."""

    __table_args__ = (UniqueConstraint("conference_id", "position", name="uq_slot_position"),)
    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = _fk("conference.id")
    position: int
    starts_at: datetime
    ends_at: datetime
    tables: int = 0
    interpreters: dict[str, int] = _json(dict)
    lost: bool = False


class Delegation(SQLModel, table=True):
    """A place's delegation: its delegates, the languages they speak and the slots they attend (slot ids)."""

    __table_args__ = (UniqueConstraint("conference_id", "city_id", name="uq_delegation_city"),)
    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = _fk("conference.id")
    city_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    delegates: list[dict[str, str]] = _json(list)  # [{"name", "title"}]
    languages: list[str] = _json(list)
    slot_ids: list[int] = _json(list)
    status: str = Field(default="registered", max_length=20)
    registered_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Wish(SQLModel, table=True):
    """What delegation ``from_id`` said about ``to_id``: must_meet, would_like, follow_up or no_thanks."""

    __table_args__ = (UniqueConstraint("from_id", "to_id", name="uq_wish_pair"),)
    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = _fk("conference.id")
    from_id: int = _fk("delegation.id")
    to_id: int = _fk("delegation.id")
    kind: str = Field(max_length=20)
    updated_at: datetime = Field(default_factory=utcnow)


class ConferenceMeeting(SQLModel, table=True):
    """A scheduled one-to-one meeting of delegations ``a_id < b_id`` in a slot at a table (0-based), with the
    interpreter's language when they need one; ``match_id`` once it became a match proposal."""

    __tablename__ = "conferencemeeting"
    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = _fk("conference.id")
    slot_id: int = _fk("conferenceslot.id")
    a_id: int = _fk("delegation.id")
    b_id: int = _fk("delegation.id")
    table_no: int
    interpreter: str | None = Field(default=None, max_length=8)
    value: float = 0.0
    must: bool = False
    match_id: int | None = Field(default=None, foreign_key="match.id")
    created_at: datetime = Field(default_factory=utcnow)
