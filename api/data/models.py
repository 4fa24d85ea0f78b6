"""Database tables (SQLModel). Only these classes are ``table=True``; API shapes live in :mod:`api.schemas`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

CUSTOM_ID_START = 1_000_000_000  # ids of cities created by users (gazetteer cities use their geonameid)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(default: Any = None) -> Any:
    return Field(default_factory=lambda: default() if callable(default) else default, sa_column=Column(JSON))


class SeedInfo(SQLModel, table=True):
    """What the seed loaded (key ``gazetteer``: the largest GeoNames level loaded whole), so that a start with a
    larger ``TWINNING_GAZETTEER`` knows to load the places it lacks."""

    key: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)


class DataVersion(SQLModel, table=True):
    """One row (``id`` 1): a number that grows with every committed write that can change a derived answer
    (:mod:`api.data.version` keeps it)."""

    __tablename__ = "data_version"
    id: int = Field(primary_key=True)
    version: int = Field(sa_column=Column(BigInteger, nullable=False))


class Country(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=2)
    name: str
    continent: str = ""
    languages: str = ""  # comma-separated primary language subtags, e.g. "zh,en"


class City(SQLModel, table=True):
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    geonameid: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    name: str = Field(index=True, max_length=200)
    search_name: str = Field(max_length=200)  # fold of the name (search itself goes through CityName)
    country: str = Field(index=True, max_length=2, foreign_key="country.code")
    admin1: str = Field(default="", max_length=20)
    latitude: float
    longitude: float
    population: int = 0
    timezone: str = Field(default="", max_length=60)
    is_custom: bool = False
    updated_at: datetime = Field(default_factory=utcnow, index=True)  # max() is the matcher's change check


# The search key is compared byte by byte (code point order) so that one B-tree serves exact and prefix lookups
# as range scans (``key >= :q AND key < :q || U+10FFFF``): SQLite's default BINARY collation does that, PostgreSQL
# needs the "C" collation on the column (a locale collation would not serve the range).
NAME_KEY_TYPE = String(200).with_variant(String(200, collation="C"), "postgresql")

NAME_MAIN, NAME_ALTERNATE, NAME_WORD = 0, 1, 2  # CityName.kind


class CityName(SQLModel, table=True):
    """A key under which a city is found: its GeoNames name (``kind`` 0), each alternate name (1) — in any script
    —, and each later word of its name (2, ``york city`` for New York City). ``key`` is :func:`api.data.text.fold`
    of ``name`` (names with umlauts have a second key spelled the German way); ``script`` is its ISO 15924 script.
    One row per (city, key); deleting a city deletes its names."""

    __tablename__ = "cityname"
    __table_args__ = (Index("ix_cityname_key", "key", "kind", "city_id"), {"sqlite_with_rowid": False})
    city_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("city.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    key: str = Field(sa_column=Column(NAME_KEY_TYPE, primary_key=True))
    name: str = Field(max_length=200)
    kind: int = Field(default=NAME_ALTERNATE, sa_column=Column(SmallInteger, nullable=False))
    script: str = Field(default="", max_length=4)


class CityPrefix(SQLModel, table=True):
    """The first page of a common short search (:mod:`api.data.prefixes`): for a folded prefix of at most
    ``prefixes.MAX_LEN`` characters that many cities match, the number of cities it matches (``total``) and the ids
    of the first ``prefixes.TOP`` of them in the search's order (``city_ids``, comma-separated). Derived from
    ``cityname`` and ``city``; kept up to date by the writes that change either."""

    __tablename__ = "cityprefix"
    prefix: str = Field(sa_column=Column(NAME_KEY_TYPE, primary_key=True))
    total: int = Field(sa_column=Column(BigInteger, nullable=False))
    city_ids: str = Field(sa_column=Column(Text, nullable=False))


class Profile(SQLModel, table=True):
    city_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    offers: dict[str, float] = _json(dict)
    seeks: dict[str, float] = _json(dict)
    description: str = ""
    pref_countries: list[str] = _json(list)
    pref_min_population: int | None = None
    pref_max_population: int | None = None
    pref_languages: list[str] = _json(list)
    seeking_partners: bool = True
    contact_name: str | None = None
    contact_email: str | None = None
    illustrative: bool = False  # demo data shipped with the seed
    updated_at: datetime = Field(default_factory=utcnow)


class Partnership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("city_a_id", "city_b_id", name="uq_partnership_pair"),)
    id: int | None = Field(default=None, primary_key=True)
    city_a_id: int = Field(sa_column=Column(BigInteger, index=True, nullable=False))  # always the smaller id
    city_b_id: int = Field(sa_column=Column(BigInteger, index=True, nullable=False))
    status: str = Field(default="active", max_length=20)
    since: int | None = None
    sectors: list[str] = _json(list)
    source: str = Field(default="user", max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


class ScoreSet(SQLModel, table=True):
    """One re-scoring run's suggestions. Readers only see sets whose status is ``complete``."""

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="running", max_length=20, index=True)
    scope: str = Field(default="all", max_length=20)
    model_version: str = Field(default="", max_length=80)
    k: int = 20
    n_cities: int = 0
    job_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None


class Suggestion(SQLModel, table=True):
    __table_args__ = (
        Index("ix_suggestion_set_city", "score_set_id", "city_id", "rank"),
        Index("ix_suggestion_city_set", "city_id", "score_set_id"),  # the newest set covering a city
    )
    id: int | None = Field(default=None, primary_key=True)
    score_set_id: int = Field(foreign_key="scoreset.id")
    city_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    rank: int
    candidate_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    score: float
    components: dict[str, float] = _json(dict)
    sectors: list[dict[str, Any]] = _json(list)
    distance_km: float = 0.0


class Job(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=40)
    state: str = Field(default="queued", max_length=20, index=True)  # queued, running, succeeded, failed
    total: int = 0
    done: int = 0
    params: dict[str, Any] = _json(dict)
    score_set_id: int | None = None
    result: dict[str, Any] = _json(dict)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobChunk(SQLModel, table=True):
    """A finished chunk of a job: inserting it twice is a no-op, so redelivered chunks don't double-count."""

    job_id: str = Field(primary_key=True, max_length=36)
    chunk: int = Field(primary_key=True)
    size: int


# ---------------------------------------------------------------- accounts and the match workflow
class User(SQLModel, table=True):
    """An account: ``official`` (bound to cities), ``coordinator`` (optionally scoped to countries) or ``admin``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    password_hash: str | None = Field(default=None, max_length=300)
    cities: list[int] = _json(list)  # an official's cities (city ids)
    countries: list[str] = _json(list)  # a coordinator's countries; empty = every country
    active: bool = True
    demo: bool = False  # a demo account of the embedded mode
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A bearer token, stored as the SHA-256 of the secret (the secret itself is shown once)."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(default="", max_length=12)  # the first characters, to tell tokens apart
    label: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class LoginAttempt(SQLModel, table=True):
    """Failed console logins, per user name and client address, for rate limiting."""

    __table_args__ = (Index("ix_loginattempt_key_at", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow)


class Match(SQLModel, table=True):
    """A proposed partnership going through review: proposed → under_review → accepted/rejected → confirmed/declined.

    ``city_id`` proposed ``partner_id``; ``version`` grows with every transition (optimistic concurrency).
    """

    __table_args__ = (Index("ix_match_pair", "city_id", "partner_id"),)
    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    partner_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    status: str = Field(default="proposed", max_length=20, index=True)
    message: str = Field(default="", max_length=5000)
    sectors: list[str] = _json(list)
    score: float | None = None
    proposed_by: int | None = Field(default=None, foreign_key="user.id")
    reviewer_id: int | None = Field(default=None, foreign_key="user.id")
    decision_note: str = Field(default="", max_length=5000)
    reason: str = Field(default="", max_length=5000)  # why it was rejected, declined or expired
    partnership_id: int | None = None
    version: int = 1
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MatchEvent(SQLModel, table=True):
    """The append-only audit trail of a match (PostgreSQL refuses UPDATE and DELETE on it with a trigger)."""

    id: int | None = Field(default=None, primary_key=True)
    match_id: int = Field(foreign_key="match.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor_name: str = Field(default="", max_length=80)  # "system" for expiry
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    note: str = Field(default="", max_length=5000)
    at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- conference mode (tables in their own module)
from api.data.conference_models import (  # noqa: E402, F401  (registers the tables with the metadata)
    Conference,
    ConferenceMeeting,
    ConferenceSlot,
    Delegation,
    Wish,
)
