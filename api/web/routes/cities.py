"""Cities, their profiles, their suggestions, and pair explanations."""

from __future__ import annotations

from typing import Any, cast

from flask import Response, current_app, request, url_for
from flask_openapi3 import APIBlueprint, Tag

from api.data import crud
from api.data.text import script_for_languages
from api.errors import Forbidden, Invalid, NotFound
from api.schemas import (
    CityCreate,
    CityList,
    CityPath,
    CityPublic,
    CityQuery,
    CityUpdate,
    PairExplanation,
    PairPath,
    ProfileIn,
    ProfilePublic,
    SuggestionList,
    SuggestionQuery,
)
from api.web import auth, edge_cache
from api.web.context import db, services
from api.web.routes import error_responses
from matcher.results import describe

bp = APIBlueprint("cities", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="cities")])
ERRORS = error_responses(404, 409, 422)
WRITE_ERRORS = error_responses(401, 403, 404, 409, 422)


def _city_or_404(city_id: int, field: str | None = None) -> Any:
    return crud.get_city(db(), city_id=city_id, field=field)


def _public(city: Any) -> dict[str, Any]:
    return crud.cities_public(db(), cities=[city])[0].model_dump(mode="json")


@bp.get("/cities", responses={200: CityList, **ERRORS})
def list_cities(query: CityQuery) -> Any:
    """Search the gazetteer and custom cities by any of their names, in any language or script (accent- and
    case-insensitive: ``Koln``, ``Köln``, ``Cologne``; ``Muenchen``; ``苏州``), with paging.

    Exact name matches first, then names starting with the query, then names with a later word starting with it;
    larger places first within each. Each city of a name search carries ``matched_name`` (when the query matched
    another name than ``name``), ``local_name`` (its name in the user's script: the query's script when it is not
    Latin, else the first language of ``Accept-Language``, e.g. ``zh`` → Chinese characters) and ``display_name``
    (``Suzhou (苏州)``). The ``X-Twinning-Cache`` header says whether the answer came from the process's answer
    cache (``hit``) or was computed (``miss``)."""
    script = script_for_languages(request.headers.get("Accept-Language")) if query.q else None
    answer, hit = services().search.answer(db, query=query, script=script)
    edge_cache.offer(answer)  # the response is this answer alone: repeated anonymous reads skip Flask
    # Encoded once per answer, as Flask encodes a returned dict: a cached answer is served as these bytes.
    body = answer.encode(lambda doc: cast(Response, current_app.json.response(doc)).get_data())
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["X-Twinning-Cache"] = "hit" if hit else "miss"
    return response


@bp.post("/cities", responses={201: CityPublic, **WRITE_ERRORS}, security=auth.BEARER)
def create_city(body: CityCreate) -> Any:
    """Create a custom city outside the gazetteer; answers 201 with a Location header. Coordinators (in a country
    of their scope) and admins."""
    user = auth.require_role("admin", "coordinator")
    if not user.covers_country(body.country):
        raise Forbidden(f"you may not create cities in {body.country}: it is outside your countries")
    city = crud.create_city(db(), data=body)
    return _public(city), 201, {"Location": url_for("cities.get_city", id=city.id)}


@bp.get("/cities/<int:id>", responses={200: CityPublic, **ERRORS})
def get_city(path: CityPath) -> Any:
    return _public(_city_or_404(path.id))


@bp.patch("/cities/<int:id>", responses={200: CityPublic, **WRITE_ERRORS}, security=auth.BEARER)
def update_city(path: CityPath, body: CityUpdate) -> Any:
    """Update a city's fields (only those sent). Admins, coordinators in the city's country, and the city's
    officials."""
    user = auth.require_city_editor(path.id, "coordinator")
    city = _city_or_404(path.id)
    if user.role == "coordinator" and not user.covers_country(city.country):
        raise Forbidden(f"you may not change city {path.id}: {city.country} is outside your countries")
    return _public(crud.update_city(db(), city=city, data=body))


def _profile_public(profile: Any, job_id: str | None = None) -> dict[str, Any]:
    out = ProfilePublic.model_validate(profile, from_attributes=True).model_dump(mode="json")
    out["rescore_job"] = job_id
    return out


@bp.get("/cities/<int:id>/profile", responses={200: ProfilePublic, **ERRORS})
def get_profile(path: CityPath) -> Any:
    """What the city offers and seeks, per sector, and its preferences.

    The contact (``contact_name``, ``contact_email``) is shown only to the city's officials, coordinators for
    its country and admins; for everyone else it is null.
    """
    user = auth.api_user()
    city = _city_or_404(path.id)
    profile = crud.get_profile(db(), city_id=path.id)
    if profile is None:
        raise NotFound(f"city {path.id} has no profile yet")
    out = _profile_public(profile)
    if user is None or not (user.official_of(city.id) or user.covers_country(city.country)):
        out["contact_name"] = out["contact_email"] = None
    return out


@bp.put("/cities/<int:id>/profile", responses={200: ProfilePublic, **WRITE_ERRORS}, security=auth.BEARER)
def put_profile(path: CityPath, body: ProfileIn) -> Any:
    """Create or replace the profile; this triggers re-scoring of the city (``rescore_job`` in the answer).

    The city's officials and admins only.
    """
    auth.require_city_editor(path.id)
    city = _city_or_404(path.id)
    unknown = crud.missing_country_codes(db(), codes=body.pref_countries)
    if unknown:
        raise Invalid(f"unknown country codes: {', '.join(unknown)}", "pref_countries")
    profile, job_id = services().save_profile(db(), city=city, data=body)
    return _profile_public(profile, job_id)


@bp.get("/cities/<int:id>/suggestions", responses={200: SuggestionList, **ERRORS})
def suggestions(path: CityPath, query: SuggestionQuery) -> Any:
    """Ranked partner suggestions with score, components and collaboration sectors.

    Without filters the answer comes from the newest complete score set that covers the city (a batch re-scoring
    run); with filters, or when no set covers the city yet, it is computed live over every candidate
    (``score_set.live`` is then true). By default at most a third of the list comes from one country, unless
    you filter by country.
    """
    answer = services().suggestions.answer(db, city_id=path.id, query=query)
    edge_cache.offer(answer)  # the response is this answer alone: repeated anonymous reads skip Flask
    # Encoded once per answer, as Flask encodes a returned dict: a cached answer is served as these bytes.
    body = answer.encode(lambda doc: cast(Response, current_app.json.response(doc)).get_data())
    return current_app.response_class(body, mimetype="application/json")


@bp.get("/pairs/<int:a>/<int:b>", responses={200: PairExplanation, **ERRORS})
def pair(path: PairPath) -> Any:
    """The full explanation of one pair: every component, the weights, sectors with reasons."""
    if path.a == path.b:
        raise Invalid("a pair needs two different cities", "b")
    a = _city_or_404(path.a, "a")
    b = _city_or_404(path.b, "b")
    session = db()
    built = services().matchers.get(session)
    s = built.matcher.explain(built.table.row(a.id), built.table.row(b.id))
    pub = {c.id: c.model_dump(mode="json") for c in crud.cities_public(session, cities=[a, b])}
    return {
        "city": pub[a.id],
        "partner": pub[b.id],
        **describe(s),
        "weights": built.matcher.weights_,
        "already_partners": b.id in crud.partner_ids(session, city_id=a.id),
        "model_version": built.model_version,
    }
