"""Data access for cities, profiles, partnerships, jobs, score sets and suggestions, and the matcher's inputs.

Every query lives in the data layer (this module, :mod:`api.data.accounts`, :mod:`api.data.matches`); arguments
after the session are keyword-only. A few functions still accept positional arguments because code outside this
change calls them so (``api/domain/jobs.py``, ``api/cli``, the suggestions views): ``get_city``, ``find_city``,
``cities_by_id``, ``latest_score_set_for_city``, ``stored_suggestions``, ``get_job``, ``done_chunks``,
``record_chunk``, ``replace_suggestions``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, cast

import pandas as pd
import psycopg
from sqlalchemy import and_, bindparam, case, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from api.data import prefixes, version
from api.data.models import (
    CUSTOM_ID_START,
    NAME_ALTERNATE,
    NAME_WORD,
    City,
    CityName,
    Country,
    Job,
    JobChunk,
    Partnership,
    Profile,
    ScoreSet,
    Suggestion,
    utcnow,
)
from api.data.text import fold, name_entries, script_of
from api.errors import Conflict, Invalid, NotFound
from api.schemas import CityCreate, CityPublic, CityUpdate, PartnershipCreate, ProfileIn


# ---------------------------------------------------------------- cities
def country_names(session: Session) -> dict[str, str]:
    """Country code → name."""
    return {c.code: c.name for c in session.exec(select(Country)).all()}


def country_name(session: Session, code: str) -> str:
    """One country's name (its code when the country is unknown)."""
    country = session.get(Country, code)
    return country.name if country is not None else code


def city_public(city: City, *, countries: dict[str, str] | None = None, has_profile: bool = False) -> CityPublic:
    return CityPublic(
        id=city.id,
        geonameid=city.geonameid,
        name=city.name,
        country=city.country,
        country_name=(countries or {}).get(city.country),
        admin1=city.admin1,
        latitude=city.latitude,
        longitude=city.longitude,
        population=city.population,
        timezone=city.timezone,
        is_custom=city.is_custom,
        has_profile=has_profile,
    )


def cities_public(session: Session, *, cities: Sequence[City]) -> list[CityPublic]:
    if not cities:
        return []
    conn = session.connection()
    countries = dict(conn.execute(_public_stmts()[0], {"codes": sorted({c.country for c in cities})}).all())
    with_profile = {r[0] for r in conn.execute(_public_stmts()[1], {"ids": [c.id for c in cities]})}
    return [city_public(c, countries=countries, has_profile=c.id in with_profile) for c in cities]


@cache
def _public_stmts() -> tuple[Any, Any]:
    """Core statements (built once) for :func:`cities_public`: country names by code, and which ids have a profile."""
    country, profile = Country.__table__, Profile.__table__  # type: ignore[attr-defined]
    return (
        sa_select(country.c.code, country.c.name).where(country.c.code.in_(bindparam("codes", expanding=True))),
        sa_select(profile.c.city_id).where(profile.c.city_id.in_(bindparam("ids", expanding=True))),
    )


def cities_by_id(session: Session, *, ids: Sequence[int]) -> dict[int, CityPublic]:
    """Public records of many cities in one query, keyed by id (unknown ids are left out)."""
    wanted = sorted(set(int(i) for i in ids))
    rows = session.exec(select(City).where(col(City.id).in_(wanted))).all() if wanted else []
    return {c.id: c for c in cities_public(session, cities=rows)}


@dataclass
class CitySearch:
    """A page of cities and, for a name search, the name each was found by (``matched``: city id → name) and the
    name in the wanted script where the city has one (``in_script``: city id → name)."""

    cities: list[City]
    count: int
    matched: dict[int, str] = field(default_factory=dict)
    in_script: dict[int, str] = field(default_factory=dict)


KEY_END = "\U0010ffff"  # above every character: [key, key + KEY_END) is every key that starts with key


def search_cities(
    session: Session,
    *,
    q: str | None = None,
    country: str | None = None,
    geonameid: int | None = None,
    has_profile: bool | None = None,
    page: int = 1,
    per_page: int = 20,
    script: str | None = None,
    stored_prefixes: bool = True,
) -> CitySearch:
    """Filter and page the cities; with ``q``, search every name of every city (GeoNames name, alternate names in
    any script, later words of the name), accent- and case-insensitive (:func:`api.data.text.fold`).

    Order: exact matches of a name, then names that start with the query, then names with a later word that starts
    with it; larger places first within each; then id. One range scan of the ``cityname`` key index
    (``key >= :q AND key < :q || U+10FFFF``), which SQLite and PostgreSQL ("C" collation) both serve.
    ``script`` (ISO 15924, e.g. ``Hani``) asks for each city's name in that script (``in_script``); a query written
    in another script than Latin asks for its own script instead.

    A short query that many places match, without filters, reads its page from the stored first pages
    (:mod:`api.data.prefixes`; ``stored_prefixes=False`` always runs the full query): the same answer."""
    needle = fold(q) if q else ""
    page_rows: tuple[list[City], int] | None = None
    if stored_prefixes and needle and country is None and geonameid is None and has_profile is None:
        page_rows = _stored_page(session, needle=needle, page=page, per_page=per_page)
    if page_rows is None:
        page_rows = _full_page(
            session,
            needle=needle,
            country=country,
            geonameid=geonameid,
            has_profile=has_profile,
            page=page,
            per_page=per_page,
        )
    rows, count = page_rows
    result = CitySearch(rows, count)
    if needle and rows:
        ids = [c.id for c in rows]
        names = session.connection().execute(
            _matched_stmt(), {"ids": ids, "needle": needle, "needle_end": needle + KEY_END}
        )
        best: dict[int, tuple[tuple[int, int, int], str]] = {}
        for city_id, key, name, kind in names:
            rank_key = (0 if key == needle and kind < NAME_WORD else 1 if kind < NAME_WORD else 2, kind, len(name))
            if city_id not in best or rank_key < best[city_id][0]:
                best[city_id] = (rank_key, name)
        result.matched = {i: best[i][1] for i in ids if i in best}
        written = script_of(q or "")
        if written not in ("", "Latn"):  # a query in another script than Latin asks for that script
            script = written
    if script and rows:
        result.in_script = names_in_script(session, ids=[c.id for c in rows], script=script, prefer=result.matched)
    return result


@cache
def _cities_stmt() -> Any:
    return select(City).where(col(City.id).in_(bindparam("ids", expanding=True)))


@cache
def _matched_stmt() -> Any:
    """The names of the page's cities (``ids``) that the query matches: ``(city_id, key, name, kind)`` rows."""
    names = CityName.__table__  # type: ignore[attr-defined]
    return sa_select(names.c.city_id, names.c.key, names.c.name, names.c.kind).where(
        names.c.city_id.in_(bindparam("ids", expanding=True)),
        names.c.key >= bindparam("needle", type_=names.c.key.type),
        names.c.key < bindparam("needle_end", type_=names.c.key.type),
    )


def _stored_page(session: Session, *, needle: str, page: int, per_page: int) -> tuple[list[City], int] | None:
    """The page from the stored first pages of a short prefix, or None when they do not hold it."""
    stored = prefixes.lookup(session, needle=needle)
    if stored is None:
        return None
    total, ids = stored
    start = (page - 1) * per_page
    if start + per_page > len(ids) and len(ids) < total:  # past the stored ids: the full query
        return None
    wanted = ids[start : start + per_page]
    by_id = {c.id: c for c in session.exec(_cities_stmt(), params={"ids": wanted}).all()} if wanted else {}
    if len(by_id) != len(wanted):  # a city gone since (no write path deletes one): the full query
        return None
    return [by_id[i] for i in wanted], total


def _full_page(
    session: Session,
    *,
    needle: str,
    country: str | None,
    geonameid: int | None,
    has_profile: bool | None,
    page: int,
    per_page: int,
) -> tuple[list[City], int]:
    """The page and the total of the full search: one range scan of the ``cityname`` key index."""
    shape = (bool(needle), country is not None, geonameid is not None, has_profile)
    stmt = _search_stmt(*shape)
    params = {"needle": needle, "needle_end": needle + KEY_END, "country": country, "geonameid": geonameid}
    found = session.exec(stmt, params={**params, "offset": (page - 1) * per_page, "limit": per_page}).all()
    rows = [r[0] for r in found]
    if found:
        count = int(found[0][-1])
    elif page > 1:  # past the last page: count on its own
        counted = select(func.count()).select_from(_search_base(*shape)[0].subquery())
        count = session.exec(counted, params=params).one()
    else:  # nothing at all
        count = 0
    return rows, int(count)


@cache
def _search_base(
    by_name: bool, by_country: bool, by_geonameid: bool, has_profile: bool | None
) -> tuple[Any, list[Any]]:
    """The full search's statement (rows of ``City``) and order for one combination of filters, with the
    parameters ``needle``, ``needle_end``, ``country`` and ``geonameid``: built once (building it took a fifth of a
    search)."""
    stmt: Any = sa_select(City)
    order: list[Any] = [col(City.population).desc(), col(City.id)]
    if by_name:
        key_type = CityName.__table__.c.key.type  # type: ignore[attr-defined]
        needle, needle_end = bindparam("needle", type_=key_type), bindparam("needle_end", type_=key_type)
        rank = case(
            (and_(col(CityName.kind) < NAME_WORD, col(CityName.key) == needle), 0),
            (col(CityName.kind) < NAME_WORD, 1),
            else_=2,
        )
        hits = (
            sa_select(col(CityName.city_id).label("city_id"), func.min(rank).label("tier"))
            .where(col(CityName.key) >= needle, col(CityName.key) < needle_end)
            .group_by(col(CityName.city_id))
            .subquery("hits")
        )
        stmt = stmt.join(hits, hits.c.city_id == City.id)
        order.insert(0, hits.c.tier)
    if by_country:
        stmt = stmt.where(City.country == bindparam("country"))
    if by_geonameid:
        stmt = stmt.where(City.geonameid == bindparam("geonameid"))
    if has_profile is not None:
        having = select(Profile.city_id)
        stmt = stmt.where(col(City.id).in_(having) if has_profile else col(City.id).not_in(having))
    return stmt, order


@cache
def _search_stmt(by_name: bool, by_country: bool, by_geonameid: bool, has_profile: bool | None) -> Any:
    """:func:`_search_base` paged (``offset``, ``limit``), each row ``(City, total)``: the total comes with the page
    (a window count: one scan of the matches, not two)."""
    stmt, order = _search_base(by_name, by_country, by_geonameid, has_profile)
    paged = stmt.add_columns(func.count().over().label("total")).order_by(*order)
    return paged.offset(bindparam("offset")).limit(bindparam("limit"))


def names_in_script(session: Session, *, ids: Sequence[int], script: str, prefer: dict[int, str]) -> dict[int, str]:
    """Each city's name in ``script`` (the matched name when it is in that script, else the shortest; ties by code
    point order, which puts simplified Chinese 苏州 before traditional 蘇州)."""
    rows = session.exec(
        select(CityName.city_id, CityName.name).where(
            col(CityName.city_id).in_(list(ids)), CityName.script == script, col(CityName.kind) < NAME_WORD
        )
    ).all()
    out: dict[int, str] = {}
    for city_id, name in sorted(rows, key=lambda r: (len(r[1]), r[1])):
        out.setdefault(city_id, name)
    for city_id, name in prefer.items():
        if script_of(name) == script:
            out[city_id] = name
    return out


def display_name(city: City, *, in_script: str | None) -> str:
    """``Suzhou (苏州)``: the city's name, with its name in the user's script when there is one and it differs."""
    if in_script and in_script != city.name and script_of(city.name) != script_of(in_script):
        return f"{city.name} ({in_script})"
    return city.name


def list_cities(session: Session, **filters: Any) -> tuple[list[City], int]:
    """:func:`search_cities` without the names: the page of cities and the total count."""
    found = search_cities(session, **filters)
    return found.cities, found.count


def get_city(session: Session, *, city_id: int, field: str | None = None) -> City:
    """The city named in a request's path or query; :class:`NotFound` (404) otherwise."""
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"city {city_id} not found", field)
    return city


@cache
def _city_stmt() -> Any:
    city = City.__table__  # type: ignore[attr-defined]
    return sa_select(city).where(city.c.id == bindparam("city_id"))


def city_to_read(session: Session, *, city_id: int, field: str | None = None) -> City:
    """As :func:`get_city`, for a read that only looks at the city (``GET …/suggestions``): one Core query, and a
    City outside the session (transient: changing it changes nothing). :class:`NotFound` (404) otherwise."""
    row = session.connection().execute(_city_stmt(), {"city_id": city_id}).mappings().first()
    if row is None:
        raise NotFound(f"city {city_id} not found", field)
    return City(**row)


def referenced_city(session: Session, *, city_id: int, field: str) -> City:
    """A city referenced in a request body by ``field``; :class:`Invalid` (422) naming the field otherwise."""
    city = session.get(City, city_id)
    if city is None:
        raise Invalid(f"city {city_id} not found", field)
    return city


def missing_city_ids(session: Session, *, ids: Sequence[int]) -> list[int]:
    """The ids among ``ids`` that name no city, in the given order."""
    known = set(session.exec(select(City.id).where(col(City.id).in_(set(ids)))).all()) if ids else set()
    return [i for i in ids if i not in known]


def missing_country_codes(session: Session, *, codes: Sequence[str]) -> list[str]:
    """The codes among ``codes`` that name no country, in the given order."""
    known = set(session.exec(select(Country.code).where(col(Country.code).in_(set(codes)))).all()) if codes else set()
    return [c for c in codes if c not in known]


def find_city(session: Session, *, text: str) -> City:
    """A city by id/geonameid or by any of its names, in any language or script (exact, accent- and
    case-insensitive: ``Koln``, ``Cologne``, ``苏州``; the most populous on ties)."""
    if text.strip().isdigit():
        return get_city(session, city_id=int(text))
    needle = fold(text)
    if needle:
        row = session.exec(
            select(City)
            .join(CityName, col(CityName.city_id) == City.id)
            .where(CityName.key == needle, col(CityName.kind) < NAME_WORD)
            .order_by(col(City.population).desc(), col(City.id))
            .limit(1)
        ).first()
        if row is not None:
            return row
    raise NotFound(f"city {text!r} not found")


def create_city(session: Session, *, data: CityCreate) -> City:
    """Add a custom city with the next free id above the gazetteer's."""
    if session.get(Country, data.country) is None:
        raise Invalid(f"country {data.country} not found", "country")
    for _ in range(5):  # another writer may take the same id: retry with the next one
        next_id = max(CUSTOM_ID_START, (session.exec(select(func.max(City.id))).one() or 0) + 1)
        city = City(id=next_id, search_name=fold(data.name), is_custom=True, **data.model_dump())
        session.add(city)
        try:
            session.flush()
            index_main_name(session, city=city)
            session.commit()
            return city
        except IntegrityError:
            session.rollback()
    raise Conflict("could not allocate a city id; try again")


def update_city(session: Session, *, city: City, data: CityUpdate) -> City:
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            continue
        setattr(city, key, value)
    if "name" in changes and data.name:
        city.search_name = fold(data.name)
        index_main_name(session, city=city)  # refreshes the stored prefixes of its keys, old and new
    elif changes.get("population") is not None:  # its place in every search it is found by
        refresh_prefixes(session, keys=city_keys(session, city_id=city.id))
    city.updated_at = utcnow()
    session.add(city)
    session.commit()
    return city


def index_main_name(session: Session, *, city: City) -> None:
    """(Re-)index a city's own name and its later words (kinds 0 and 2); its alternate names stay."""
    rows = name_entries(city.id, [], main=city.name)
    keys = [r[1] for r in rows]
    before = city_keys(session, city_id=city.id)
    session.execute(
        delete(CityName).where(
            col(CityName.city_id) == city.id, or_(col(CityName.kind) != NAME_ALTERNATE, col(CityName.key).in_(keys))
        )
    )
    session.add_all(CityName(city_id=c, key=k, name=n, kind=kind, script=sc) for c, k, n, kind, sc in rows)
    session.flush()
    refresh_prefixes(session, keys=before | city_keys(session, city_id=city.id))


def city_keys(session: Session, *, city_id: int) -> set[str]:
    """Every search key of a city."""
    return set(session.exec(select(CityName.key).where(CityName.city_id == city_id)).all())


def refresh_prefixes(session: Session, *, keys: set[str]) -> None:
    """Recompute the stored first pages (:mod:`api.data.prefixes`) of every prefix of ``keys`` that has one, with
    the full query, after a write changed the names or the population of a city with these keys (in the write's
    transaction: the pages change when it commits). ~100 ms for a one-letter prefix of cities1000; 0.5–0.7 s
    for a large city's write."""
    for prefix in prefixes.stored_among(session, prefixes=prefixes.prefixes_of(keys)):
        found = search_cities(session, q=prefix, per_page=prefixes.TOP, stored_prefixes=False)
        prefixes.store(session, prefix=prefix, total=found.count, city_ids=[c.id for c in found.cities])


# ---------------------------------------------------------------- profiles
def get_profile(session: Session, *, city_id: int) -> Profile | None:
    return session.get(Profile, city_id)


def all_profiles(session: Session) -> list[Profile]:
    return list(session.exec(select(Profile)).all())


def profiles_changed_since(session: Session, *, since: datetime | None) -> list[Profile]:
    """Profiles updated at or after ``since`` (every profile when None): the edits a cached matcher has not seen.
    At-or-after, so an edit committed later with the same timestamp is not missed (applying one twice is harmless)."""
    query = select(Profile)
    if since is not None:
        query = query.where(col(Profile.updated_at) >= since)
    return list(session.exec(query).all())


def profile_city_ids(session: Session) -> set[int]:
    return {int(i) for i in session.exec(select(Profile.city_id)).all()}


def preferred_countries(session: Session, *, city_id: int) -> list[str]:
    """The countries a city's profile prefers (none without a profile): one column, no ORM object (hot path)."""
    value = session.execute(
        sa_select(Profile.pref_countries).where(col(Profile.city_id) == city_id)  # type: ignore[call-overload]
    ).scalar_one_or_none()
    return [str(c) for c in value or ()]


def put_profile(session: Session, *, city: City, data: ProfileIn) -> Profile:
    profile = session.get(Profile, city.id) or Profile(city_id=city.id)
    values = data.model_dump()
    values["contact_email"] = str(data.contact_email) if data.contact_email else None
    for key, value in values.items():
        setattr(profile, key, value)
    profile.illustrative = False
    profile.updated_at = utcnow()
    session.add(profile)
    session.commit()
    return profile


# ---------------------------------------------------------------- partnerships
def partner_ids(session: Session, *, city_id: int) -> set[int]:
    rows = session.exec(
        select(Partnership.city_a_id, Partnership.city_b_id).where(
            or_(col(Partnership.city_a_id) == city_id, col(Partnership.city_b_id) == city_id)
        )
    ).all()
    return {b if a == city_id else a for a, b in rows}


def list_partnerships(
    session: Session, *, city: int | None = None, status: str | None = None, page: int = 1, per_page: int = 50
) -> tuple[list[Partnership], int]:
    stmt = select(Partnership)
    if city is not None:
        stmt = stmt.where(or_(col(Partnership.city_a_id) == city, col(Partnership.city_b_id) == city))
    if status:
        stmt = stmt.where(Partnership.status == status)
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(Partnership.id)).offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), int(count)


def get_partnership(session: Session, *, city_a_id: int, city_b_id: int) -> Partnership | None:
    """The partnership of a pair, in either order."""
    a, b = sorted((city_a_id, city_b_id))
    return session.exec(select(Partnership).where(Partnership.city_a_id == a, Partnership.city_b_id == b)).first()


def create_partnership(session: Session, *, data: PartnershipCreate) -> Partnership:
    if data.city_a_id == data.city_b_id:
        raise Conflict("a city cannot twin with itself")
    referenced_city(session, city_id=data.city_a_id, field="city_a_id")
    referenced_city(session, city_id=data.city_b_id, field="city_b_id")
    a, b = sorted((data.city_a_id, data.city_b_id))
    existing = get_partnership(session, city_a_id=a, city_b_id=b)
    if existing is not None:
        raise Conflict(f"partnership {a}–{b} already exists (id {existing.id})")
    row = Partnership(
        city_a_id=a, city_b_id=b, status=data.status, since=data.since, sectors=list(data.sectors), source=data.source
    )
    session.add(row)
    session.commit()
    return row


# ---------------------------------------------------------------- score sets
def any_score_set(session: Session) -> bool:
    return session.exec(select(func.count()).select_from(ScoreSet)).one() > 0


def get_score_set(session: Session, *, score_set_id: int) -> ScoreSet | None:
    return session.get(ScoreSet, score_set_id)


def latest_score_set_for_city(session: Session, *, city_id: int) -> ScoreSet | None:
    sub = (
        select(func.max(Suggestion.score_set_id))
        .join(ScoreSet, col(ScoreSet.id) == col(Suggestion.score_set_id))
        .where(Suggestion.city_id == city_id, ScoreSet.status == "complete")
    )
    set_id = session.exec(sub).one()
    return session.get(ScoreSet, set_id) if set_id is not None else None


def stored_suggestions(session: Session, *, score_set_id: int, city_id: int, k: int) -> list[Suggestion]:
    stmt = (
        select(Suggestion)
        .where(Suggestion.score_set_id == score_set_id, Suggestion.city_id == city_id)
        .order_by(col(Suggestion.rank))
        .limit(k)
    )
    return list(session.exec(stmt).all())


@dataclass(frozen=True)
class ScoreSetHead:
    """What a reader of a score set needs of its row."""

    id: int
    k: int
    model_version: str
    created_at: datetime
    completed_at: datetime | None


@cache
def _newest_set_stmt() -> Any:
    """Built once (the hot path of ``GET …/suggestions`` would spend more building it than running it); Core
    tables, so it runs without the ORM's statement processing."""
    sug, sets = Suggestion.__table__, ScoreSet.__table__  # type: ignore[attr-defined]
    newest = (
        sa_select(func.max(sug.c.score_set_id))
        .join(sets, sets.c.id == sug.c.score_set_id)
        .where(sug.c.city_id == bindparam("city_id"), sets.c.status == "complete")
        .scalar_subquery()
    )
    cols = (sets.c.id, sets.c.k, sets.c.model_version, sets.c.created_at, sets.c.completed_at)
    return sa_select(*cols).where(sets.c.id == newest)


def newest_complete_set_for_city(session: Session, *, city_id: int) -> ScoreSetHead | None:
    """The newest complete score set that stores suggestions for ``city_id`` (one query, an index seek on
    ``ix_suggestion_city_set``), or None. The same set as :func:`latest_score_set_for_city`, without the ORM."""
    row = session.connection().execute(_newest_set_stmt(), {"city_id": city_id}).first()
    return ScoreSetHead(*row) if row is not None else None


@dataclass(frozen=True)
class StoredRow:
    """A stored suggestion with its candidate's public record (``CityPublic.model_dump(mode="json")``)."""

    candidate_id: int
    city: dict[str, Any]
    score: float
    components: dict[str, float]
    sectors: list[dict[str, Any]]
    distance_km: float


@cache
def _stored_rows_stmt() -> Any:
    models: tuple[Any, ...] = (Suggestion, City, Country, Profile)
    sug, city, country, profile = (m.__table__ for m in models)
    top = (
        sa_select(sug)
        .where(sug.c.score_set_id == bindparam("score_set_id"), sug.c.city_id == bindparam("city_id"))
        .order_by(sug.c.rank)
        .limit(bindparam("k"))
        .subquery()
    )
    return (
        sa_select(
            top.c.candidate_id,
            top.c.score,
            top.c.components,
            top.c.sectors,
            top.c.distance_km,
            city.c.geonameid,
            city.c.name,
            city.c.country,
            country.c.name,
            city.c.admin1,
            city.c.latitude,
            city.c.longitude,
            city.c.population,
            city.c.timezone,
            city.c.is_custom,
            profile.c.city_id.is_not(None),
        )
        .select_from(top)
        .join(city, city.c.id == top.c.candidate_id)
        .outerjoin(country, country.c.code == city.c.country)
        .outerjoin(profile, profile.c.city_id == city.c.id)
        .order_by(top.c.rank)
    )


def stored_rows(session: Session, *, score_set_id: int, city_id: int, k: int) -> list[StoredRow]:
    """The first ``k`` stored suggestions of ``city_id`` in ``score_set_id`` by rank, each with its candidate's
    public record, in one query (suggestions joined with the candidate, its country's name and whether it has a
    profile). Candidates no longer in the city table are left out, as :func:`cities_by_id` leaves them out."""
    params = {"score_set_id": score_set_id, "city_id": city_id, "k": k}
    out = []
    for (
        cid,
        score,
        components,
        sectors,
        distance,
        geo,
        name,
        country,
        cname,
        admin1,
        lat,
        lon,
        pop,
        tz,
        custom,
        prof,
    ) in session.connection().execute(_stored_rows_stmt(), params).all():
        city = {  # the fields of CityPublic, in its order (tests/api/test_suggestions_fast.py checks it)
            "id": cid,
            "geonameid": geo,
            "name": name,
            "country": country,
            "country_name": cname,
            "admin1": admin1,
            "latitude": lat,
            "longitude": lon,
            "population": pop,
            "timezone": tz,
            "is_custom": bool(custom),
            "has_profile": bool(prof),
            "matched_name": None,
            "local_name": None,
            "display_name": None,
        }
        out.append(StoredRow(cid, city, score, components, sectors, distance))
    return out


def active_city_ids(session: Session) -> list[int]:
    """Cities that take part: with a profile or at least one partnership."""
    ids = set(session.exec(select(Profile.city_id)).all())
    ids |= set(session.exec(select(Partnership.city_a_id)).all())
    ids |= set(session.exec(select(Partnership.city_b_id)).all())
    return sorted(ids)


def all_city_ids(session: Session) -> list[int]:
    return list(session.exec(select(City.id).order_by(col(City.id))).all())


# ---------------------------------------------------------------- jobs
def find_job(session: Session, *, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_job(session: Session, *, job_id: str, for_update: bool = False) -> Job:
    """The job (its row locked until the transaction ends with ``for_update``); :class:`NotFound` (404) otherwise."""
    job = session.get(Job, job_id, with_for_update=for_update, populate_existing=for_update)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def queued_job_to_join(session: Session, *, kind: str, since: datetime) -> Job | None:
    """The newest job of ``kind`` still ``queued`` and made after ``since``, its row locked (None when there is
    none, or when another transaction holds its lock: the caller then makes a new job rather than wait)."""
    query = (
        select(Job)
        .where(col(Job.kind) == kind, col(Job.state) == "queued", col(Job.created_at) >= since)
        .order_by(col(Job.created_at).desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.exec(query).first()


def recent_jobs(session: Session, *, limit: int) -> list[Job]:
    return list(session.exec(select(Job).order_by(col(Job.created_at).desc()).limit(limit)).all())


def publish_job(session: Session, *, job_id: str, score_set_id: int | None) -> None:
    """Publish the job's score set (readers switch to it) and mark the job succeeded; idempotent."""
    now = utcnow()
    if score_set_id is not None:
        session.execute(
            update(ScoreSet)
            .where(col(ScoreSet.id) == score_set_id, col(ScoreSet.status) == "running")
            .values(status="complete", completed_at=now)
        )
    session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.state).in_(["queued", "running"]))
        .values(state="succeeded", finished_at=now, done=Job.total)
    )


def fail_score_set(session: Session, *, score_set_id: int) -> None:
    session.execute(update(ScoreSet).where(col(ScoreSet.id) == score_set_id).values(status="failed"))


def record_chunk(session: Session, *, job_id: str, chunk: int, size: int) -> int:
    """Mark a chunk done (idempotent) and return the job's number of finished cities."""
    if session.get(JobChunk, (job_id, chunk)) is None:
        session.add(JobChunk(job_id=job_id, chunk=chunk, size=size))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
    done = session.exec(select(func.coalesce(func.sum(JobChunk.size), 0)).where(JobChunk.job_id == job_id)).one()
    session.execute(update(Job).where(col(Job.id) == job_id).values(done=int(done)))
    return int(done)


def claim_lease(session: Session, *, job_id: str, owner: str, now: float, seconds: float) -> bool:
    """Take or renew the job's lease (``params.lease``: owner and expiry, epoch seconds) unless another owner
    holds a live one; the row is locked meanwhile, so two claimants never both win. Commits."""
    job = session.exec(select(Job).where(col(Job.id) == job_id).with_for_update()).first()
    if job is None:
        session.rollback()
        return False
    lease = (job.params or {}).get("lease") or {}
    if lease.get("owner") not in (None, owner) and float(lease.get("until", 0)) > now:
        session.rollback()
        return False
    job.params = {**(job.params or {}), "lease": {"owner": owner, "until": now + seconds}}
    session.add(job)
    session.commit()
    return True


def done_chunks(session: Session, *, job_id: str) -> set[int]:
    return set(session.exec(select(JobChunk.chunk).where(JobChunk.job_id == job_id)).all())


def replace_suggestions(
    session: Session, *, score_set_id: int, city_ids: Sequence[int], rows: list[dict[str, Any]]
) -> None:
    """Write a chunk's suggestions; a rerun of the same chunk replaces them (idempotent)."""
    session.execute(
        delete(Suggestion).where(col(Suggestion.score_set_id) == score_set_id, col(Suggestion.city_id).in_(city_ids))
    )
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_suggestions(session, rows)
    else:
        session.execute(Suggestion.__table__.insert(), rows)  # type: ignore[attr-defined]


SUGGESTION_COLUMNS = (
    "score_set_id",
    "city_id",
    "rank",
    "candidate_id",
    "score",
    "components",
    "sectors",
    "distance_km",
)


def _copy_suggestions(session: Session, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: write the rows with ``COPY … FROM STDIN`` on the session's own connection (inside its
    transaction), several times faster than multi-row INSERTs for a re-score's millions of rows."""
    conn = session.connection()
    version.mark_changed(conn)  # COPY goes past SQLAlchemy's execution, so past the data version's listener
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    dumps = json.dumps
    with raw.cursor() as cur, cur.copy(f"COPY suggestion ({', '.join(SUGGESTION_COLUMNS)}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(
                (
                    r["score_set_id"],
                    r["city_id"],
                    r["rank"],
                    r["candidate_id"],
                    r["score"],
                    dumps(r["components"]),
                    dumps(r["sectors"]),
                    r["distance_km"],
                )
            )


# ---------------------------------------------------------------- the matcher's and the trainer's inputs
def data_fingerprint(session: Session) -> tuple[Any, ...]:
    """Last changes (and counts) of cities, profiles and partnerships: the matcher is rebuilt or updated when they
    change. Asked before every live suggestion, so each part is an index lookup or a small table's count: cities
    are never deleted, so their largest id and last update (both indexed) stand for them (counting 170k rows took
    50 ms)."""
    row = session.execute(
        sa_select(
            select(func.max(City.id)).scalar_subquery(),
            select(func.max(City.updated_at)).scalar_subquery(),
            select(func.count()).select_from(Profile).scalar_subquery(),
            select(func.max(Profile.updated_at)).scalar_subquery(),
            select(func.count()).select_from(Partnership).scalar_subquery(),
            select(func.max(Partnership.id)).scalar_subquery(),
        )
    ).one()
    return tuple(row)


def cities_frame(session: Session) -> pd.DataFrame:
    """Every city's id, geonameid (-1 for custom cities), name, country, coordinates and population."""
    cities = pd.DataFrame(
        session.execute(
            sa_select(City.id, City.geonameid, City.name, City.country, City.latitude, City.longitude, City.population)  # type: ignore[call-overload]
        ).all(),
        columns=["id", "geonameid", "name", "country", "latitude", "longitude", "population"],
    )
    cities["geonameid"] = cities["geonameid"].fillna(-1).astype("int64")
    return cities


def country_records(session: Session) -> list[dict[str, Any]]:
    """Each country's code, continent and languages."""
    return [
        {"code": c.code, "continent": c.continent, "languages": c.languages}
        for c in session.exec(select(Country)).all()
    ]


def partnership_pairs(session: Session, *, statuses: Sequence[str] | None = None) -> list[tuple[int, int]]:
    """Every partnership as (city_a_id, city_b_id), optionally only those with one of ``statuses``."""
    stmt = select(Partnership.city_a_id, Partnership.city_b_id)
    if statuses is not None:
        stmt = stmt.where(col(Partnership.status).in_(statuses))
    return [(int(a), int(b)) for a, b in session.exec(stmt).all()]


def partnership_country_ends(session: Session, *, statuses: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per country, the ends of the partnerships with one of ``statuses`` that its places hold, and how many of
    them are with a place of the same country (a home partnership counts at both ends): one grouped query."""
    ca, cb = aliased(City), aliased(City)
    stmt = (
        sa_select(ca.country, cb.country, func.count())  # type: ignore[call-overload]
        .select_from(Partnership)
        .join(ca, ca.id == Partnership.city_a_id)
        .join(cb, cb.id == Partnership.city_b_id)
        .where(col(Partnership.status).in_(statuses))
        .group_by(ca.country, cb.country)
    )
    ends: dict[str, int] = {}
    at_home: dict[str, int] = {}
    for a, b, n in session.execute(stmt).all():
        ends[a] = ends.get(a, 0) + n
        ends[b] = ends.get(b, 0) + n
        if a == b:
            at_home[a] = at_home.get(a, 0) + 2 * n
    return {c: (e, at_home.get(c, 0)) for c, e in ends.items()}


def gazetteer_frame(session: Session) -> pd.DataFrame:
    """Gazetteer cities (custom cities excluded) by geonameid, sorted."""
    cities = pd.DataFrame(
        session.execute(
            sa_select(  # type: ignore[call-overload]
                City.geonameid, City.name, City.country, City.admin1, City.latitude, City.longitude, City.population
            ).where(col(City.geonameid).is_not(None))
        ).all(),
        columns=["geonameid", "name", "country", "admin1", "latitude", "longitude", "population"],
    )
    cities["geonameid"] = cities["geonameid"].astype("int64")
    return cities.sort_values("geonameid").reset_index(drop=True)
