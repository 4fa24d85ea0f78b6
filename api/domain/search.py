"""City search as the API answers it (``GET /api/v1/cities``): the page of cities with the names each was found by,
from :func:`api.data.crud.search_cities`.

:class:`SearchService` keeps the finished answers of its process in the answer cache the suggestions use
(:class:`api.domain.answers.AnswerCache`: a bounded LRU, validated by one read of the data version per request),
keyed by everything the answer depends on: the folded query (``Köln`` and ``koln`` are one answer), the script the
names are wanted in, the filters and the page. Any committed write that can change a search answer — a city, its
names, a profile (``has_profile``), a country — changes the version, and the cached answers of older versions are
dropped. ``TWINNING_SEARCH_CACHE=0`` turns the cache off (every request runs the search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from api.data import crud, version
from api.data.text import fold, script_of
from api.domain.answers import Answer, AnswerCache, CachedAnswers
from api.schemas import CityQuery


class SearchService(CachedAnswers):
    """The city search of the API, caching whole answers in-process (``cache_size`` at most; 0: no cache)."""

    def __init__(self, versions: version.VersionReader, cache_size: int) -> None:
        self._versions = versions
        self.cache_size = cache_size
        self._answers = AnswerCache[Answer](cache_size)

    def answer(self, db: Callable[[], Session], *, query: CityQuery, script: str | None) -> tuple[Answer, bool]:
        """The answer to ``query`` (``script``: the user's script, from ``Accept-Language``), and whether it came
        from the cache. ``db`` gives the session to read with, asked for only when the cache cannot answer."""
        key = cache_key(query, script)
        data_version = None
        if self.cache_size > 0:
            data_version = self._versions.read(db)  # read before anything the answer is made of
            if data_version is not None:
                hit = self._answers.get(key, data_version)
                if hit is not None:
                    return hit, True
        answer = Answer(city_list(db(), query=query, script=script), data_version)
        if data_version is not None:
            self._answers.put(key, answer)
        return answer, False


def cache_key(query: CityQuery, script: str | None) -> tuple[Any, ...]:
    """Everything the answer depends on: whether there is a query at all, its fold, the script the names are
    wanted in (a query written in another script than Latin asks for its own), the filters and the page."""
    written = script_of(query.q or "")
    wanted = written if written not in ("", "Latn") else script
    return (
        bool(query.q),
        fold(query.q or ""),
        wanted,
        query.country,
        query.geonameid,
        query.has_profile,
        query.page,
        query.per_page,
    )


def city_list(session: Session, *, query: CityQuery, script: str | None) -> dict[str, Any]:
    """The answer computed now: ``{"data": [city…], "count", "page", "per_page"}`` (JSON-ready); with a query,
    each city carries ``matched_name``, ``local_name`` and ``display_name``."""
    found = crud.search_cities(
        session,
        q=query.q,
        country=query.country,
        geonameid=query.geonameid,
        has_profile=query.has_profile,
        page=query.page,
        per_page=query.per_page,
        script=script,
    )
    data = []
    for city, public in zip(found.cities, crud.cities_public(session, cities=found.cities), strict=True):
        if query.q:
            matched = found.matched.get(city.id)
            local = found.in_script.get(city.id)
            public.matched_name = matched if matched != city.name else None
            public.local_name = local if local != city.name else None
            public.display_name = crud.display_name(city, in_script=local)
        data.append(public.model_dump(mode="json"))
    return {"data": data, "count": found.count, "page": query.page, "per_page": query.per_page}
