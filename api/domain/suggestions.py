"""The one suggestions service: the API, the console and the command line all ask it, so they always agree.

A city's list comes from the newest complete score set that covers it (a batch re-scoring run), or, with filters or
before any set covers the city, is computed live over every candidate. Either way, pairs rejected or declined in
the match workflow stay out for the cooldown, and the country cap is applied for the requested ``k``.

:class:`SuggestionService` keeps the finished stored answers of its process (a bounded LRU per city and ``k``; the
answer is the same for every caller) and validates one with a single read of the data version
(:mod:`api.data.version`) per request: any committed write that can change an answer — a city, a profile, a
match, a score set or its rows — changes the version, whichever process made it, and every cached answer of an
older version is dropped. An answer with cooldown exclusions also lapses when the first of them ends.

An answer's ``notes`` say what the list leaves out that the official may look for: today, the city's own country
where its places rarely partner at home (:func:`matcher.rank.rare_at_home`), with the figures and how to see them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from api.config import Settings
from api.data import crud, version
from api.data.models import City
from api.domain import workflow
from api.domain.answers import Answer, AnswerCache, CachedAnswers
from api.domain.scoring import MatcherService
from api.domain.training import TRAINING_STATUSES
from api.schemas import SuggestionQuery
from matcher import Filters
from matcher.rank import pick_diverse, rare_at_home, spread_codes
from matcher.results import describe
from matcher.sectors import label


def _filters(query: SuggestionQuery, exclude: set[int] | frozenset[int]) -> Filters:
    return Filters(
        countries=frozenset(query.country or ()),
        sectors=frozenset(query.sector or ()),
        min_population=query.min_population,
        max_population=query.max_population,
        max_distance_km=query.max_distance_km,
        exclude_ids=frozenset(exclude),
        max_country_share=query.max_country_share,
    )


class SuggestionService(CachedAnswers):
    """The one suggestions service (API, console, command line), caching whole stored answers in-process.

    ``cache_size`` answers at most (least recently used out first; 0: no cache). Only unfiltered answers that came
    from a score set are kept: filtered and live lists are computed on every request."""

    def __init__(
        self,
        settings: Settings,
        matchers: MatcherService,
        engine: Engine,
        cache_size: int | None = None,
        versions: version.VersionReader | None = None,
    ) -> None:
        self.settings = settings
        self.matchers = matchers
        self._versions = versions or version.VersionReader(engine)
        self.cache_size = settings.SUGGESTION_CACHE if cache_size is None else cache_size
        self._answers = AnswerCache[Answer](self.cache_size)
        self.home_counts = HomeCounts(self._versions)

    def answer(
        self, db: Callable[[], Session], *, city_id: int, query: SuggestionQuery, city: City | None = None
    ) -> Answer:
        """Suggestions for the city ``city_id`` (``city``: its record when the caller has it): from this process's
        cache when the data has not changed since it was computed, else computed now. :class:`NotFound` (404) for
        an unknown city. ``db`` gives the session to read with, asked for only when the cache cannot answer (a
        request answered from the cache opens none)."""
        key = (city_id, query.k)
        data_version = None
        if self.cache_size > 0 and not query.filtered():
            data_version = self._versions.read(db)  # read before anything the answer is made of
            if data_version is not None:
                hit = self._answers.get(key, data_version)
                if hit is not None:
                    return hit
        session = db()
        if city is None:
            city = crud.city_to_read(session, city_id=city_id)
        body, lapses = _compute(
            session,
            city=city,
            query=query,
            matchers=self.matchers,
            settings=self.settings,
            home_counts=lambda: self.home_counts.get(db, session, data_version),
        )
        # a live answer is not kept (the model behind it changes without a data version): it has none
        kept = None if body["score_set"]["live"] else data_version
        answer = Answer(body, kept, lapses.timestamp() if lapses is not None else float("inf"))
        if kept is not None:
            self._answers.put(key, answer)
        return answer


def suggestions_for(
    session: Session, *, city: City, query: SuggestionQuery, matchers: MatcherService, settings: Settings
) -> dict[str, Any]:
    """Ranked suggestions for ``city``, computed now (no cache): ``{"data": [{"city", "score", "components",
    "sectors", "distance_km", "rank"}], "count", "score_set": {"id", "live", "model_version", …}, "notes": [{"code",
    "country", "message"}]}`` (JSON-ready)."""

    def counts() -> Mapping[str, tuple[int, int]]:
        return crud.partnership_country_ends(session, statuses=TRAINING_STATUSES)

    return _compute(session, city=city, query=query, matchers=matchers, settings=settings, home_counts=counts)[0]


class HomeCounts:
    """The known partnerships' ends per country and how many of them are at home
    (:func:`api.data.crud.partnership_country_ends`, the statuses the model trains on), kept for the data version
    they were read at: one grouped query per process each time the data changes, not one per answer."""

    def __init__(self, versions: version.VersionReader) -> None:
        self._versions = versions
        self._kept: tuple[int, dict[str, tuple[int, int]]] | None = None  # replaced whole: no lock needed

    def get(
        self, db: Callable[[], Session], session: Session, data_version: int | None = None
    ) -> Mapping[str, tuple[int, int]]:
        """The counts; ``data_version`` is the version the caller's answer already read (read here if None), before
        the counts, as for an answer."""
        if data_version is None:
            data_version = self._versions.read(db)
        kept = self._kept
        if kept is not None and data_version is not None and kept[0] == data_version:
            return kept[1]
        counts = crud.partnership_country_ends(session, statuses=TRAINING_STATUSES)
        if data_version is not None:
            self._kept = (data_version, counts)
        return counts


def _compute(
    session: Session,
    *,
    city: City,
    query: SuggestionQuery,
    matchers: MatcherService,
    settings: Settings,
    home_counts: Callable[[], Mapping[str, tuple[int, int]]],
) -> tuple[dict[str, Any], datetime | None]:
    """The answer, and when it lapses by itself (the first cooldown exclusion's end; None: never)."""
    assert city.id is not None
    excluded, lapses = workflow.exclusions(session, city.id, settings.MATCH_COOLDOWN_DAYS)
    body = None
    if not query.filtered():
        body = _stored(session, city_id=city.id, k=query.k, excluded=excluded, settings=settings)
    if body is None:
        body = _live(session, city_id=city.id, query=query, excluded=excluded, matchers=matchers)
    body["notes"] = _notes(session, city=city, query=query, body=body, settings=settings, home_counts=home_counts)
    return body, lapses


def _notes(
    session: Session,
    *,
    city: City,
    query: SuggestionQuery,
    body: dict[str, Any],
    settings: Settings,
    home_counts: Callable[[], Mapping[str, tuple[int, int]]],
) -> list[dict[str, Any]]:
    """What the list leaves out that the official may look for. The served list holds none of the city's own country
    where its places rarely partner at home (``matcher.rank``), unless the user chose the countries, the diversity
    rule is off (a country share of 1), the profile seeks that country, or too few others were left to fill the
    list: say so, with the figures, where the list indeed has none."""
    share = settings.MAX_COUNTRY_SHARE if query.max_country_share is None else query.max_country_share
    home = city.country
    if query.country or share >= 1 or any(r["city"]["country"] == home for r in body["data"]):
        return []
    ends, at_home = home_counts().get(home, (0, 0))
    if not bool(rare_at_home(ends, at_home)) or home in crud.preferred_countries(session, city_id=city.id or 0):
        return []
    name = crud.country_name(session, home)
    return [
        {
            "code": "home_country_left_out",
            "country": home,
            "message": (
                f"No places in {name} are suggested: "
                + (
                    f"of the {ends:,} known partnerships that places in {name} hold, only {at_home / ends:.1%} are"
                    if at_home
                    else f"none of the {ends:,} known partnerships that places in {name} hold is"
                )
                + f" with another place in {name}. Filter by country {home}, or seek {name} in the profile's "
                "preferred countries, to see them."
            ),
        }
    ]


def _stored(session: Session, *, city_id: int, k: int, excluded: set[int], settings: Settings) -> dict[str, Any] | None:
    """From the newest complete score set covering the city, or None when there is none (or it stores fewer).

    Two light queries (the set's head; its rows joined with their candidates' public records), no ORM objects:
    this is the API's hot path."""
    score_set = crud.newest_complete_set_for_city(session, city_id=city_id)
    if score_set is None or k > score_set.k:
        return None
    rows = [
        s
        for s in crud.stored_rows(session, score_set_id=score_set.id, city_id=city_id, k=score_set.k)
        if s.candidate_id not in excluded
    ]
    # The set stores a longer diversified list; the country cap is applied again for this k, by the rule of the live
    # list (TwinningMatcher.suggest): spread across the countries the city prefers, and their sizes and areas. The
    # live rule's one other cap, none of the city's own country where its places rarely twin at home, is already in
    # the stored list (it holds such a city's home places only where too few others were left to fill it).
    preferred = crud.preferred_countries(session, city_id=city_id)
    listed = [s.city for s in rows]  # each row carries its candidate's public record
    subgroups = None
    if preferred:
        spread = spread_codes(
            np.array([c["population"] for c in listed], float),
            np.array([c["latitude"] for c in listed], float),
            np.array([c["longitude"] for c in listed], float),
        )
        subgroups = [tuple(r) for r in spread.tolist()]
    keep = pick_diverse(
        [c["country"] for c in listed], k, settings.MAX_COUNTRY_SHARE, preferred=preferred, subgroups=subgroups
    )
    data = [
        {
            "city": s.city,
            "score": s.score,
            "components": s.components,
            "sectors": [{**f, "label": label(f["sector"])} for f in s.sectors],
            "distance_km": s.distance_km,
            "rank": rank,
        }
        for rank, s in enumerate((rows[p] for p in keep), start=1)
    ]
    meta = {
        "id": score_set.id,
        "live": False,
        "model_version": score_set.model_version,
        "created_at": score_set.created_at.isoformat(),
        "completed_at": score_set.completed_at.isoformat() if score_set.completed_at else None,
    }
    return {"data": data, "count": len(data), "score_set": meta}


def _live(
    session: Session, *, city_id: int, query: SuggestionQuery, excluded: set[int], matchers: MatcherService
) -> dict[str, Any]:
    """Computed now over every candidate city."""
    built = matchers.get(session)
    results = built.matcher.suggest(built.table.row(city_id), query.k, _filters(query, excluded))
    cities = crud.cities_by_id(session, ids=[s.city_id for s in results])
    data = [
        {"city": cities[s.city_id].model_dump(mode="json"), **describe(s), "rank": rank}
        for rank, s in enumerate(results, start=1)
    ]
    return {
        "data": data,
        "count": len(data),
        "score_set": {"id": None, "live": True, "model_version": built.model_version},
    }
