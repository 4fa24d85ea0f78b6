"""The one suggestions service: the API, the console and the command line all ask it, so they always agree.

A city's list comes from the newest complete score set that covers it (a batch re-scoring run), or, with filters or
before any set covers the city, is computed live over every candidate. Either way, pairs rejected or declined in
the match workflow stay out for the cooldown, and the country cap is applied for the requested ``k``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data.models import City
from api.domain import workflow
from api.domain.scoring import MatcherService
from api.schemas import SuggestionQuery
from matcher import Filters
from matcher.rank import pick_diverse, spread_codes
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


def suggestions_for(
    session: Session, *, city: City, query: SuggestionQuery, matchers: MatcherService, settings: Settings
) -> dict[str, Any]:
    """Ranked suggestions for ``city``: ``{"data": [{"city", "score", "components", "sectors", "distance_km",
    "rank"}], "count", "score_set": {"id", "live", "model_version", …}}`` (JSON-ready)."""
    assert city.id is not None
    excluded = workflow.excluded_partners(session, city.id, settings.MATCH_COOLDOWN_DAYS)
    if not query.filtered():
        stored = _stored(session, city_id=city.id, k=query.k, excluded=excluded, settings=settings)
        if stored is not None:
            return stored
    return _live(session, city_id=city.id, query=query, excluded=excluded, matchers=matchers)


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
    # list (TwinningMatcher.suggest): spread across the countries the city prefers, and their sizes and areas.
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
