"""The partnership network: existing twinnings (seeded from Wikidata) and new ones."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_openapi3 import APIBlueprint, Tag

from api.data import crud
from api.data.models import Partnership
from api.schemas import ErrorResponse, PartnershipCreate, PartnershipList, PartnershipPublic, PartnershipQuery
from api.web import auth
from api.web.context import db, services
from api.web.routes import error_responses

bp = APIBlueprint("partnerships", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="partnerships")])
ERRORS = error_responses(404, 409, 422)


def _public(rows: list[Partnership]) -> list[dict[str, Any]]:
    session = db()
    ids = {r.city_a_id for r in rows} | {r.city_b_id for r in rows}
    cities = crud.cities_by_id(session, ids=list(ids))
    return [
        PartnershipPublic(
            id=r.id or 0,
            city_a=cities[r.city_a_id],
            city_b=cities[r.city_b_id],
            status=r.status,
            since=r.since,
            sectors=r.sectors or [],
            source=r.source,
            created_at=r.created_at,
        ).model_dump(mode="json")
        for r in rows
    ]


@bp.get("/partnerships", responses={200: PartnershipList, **ERRORS})
def list_partnerships(query: PartnershipQuery) -> Any:
    """Partnerships, optionally of one city, with paging."""
    if query.city is not None:
        crud.get_city(db(), city_id=query.city, field="city")
    rows, count = crud.list_partnerships(
        db(), city=query.city, status=query.status, page=query.page, per_page=query.per_page
    )
    return {"data": _public(rows), "count": count, "page": query.page, "per_page": query.per_page}


@bp.post(
    "/partnerships",
    responses={201: PartnershipPublic, 401: ErrorResponse, 403: ErrorResponse, **ERRORS},
    security=auth.BEARER,
)
def create_partnership(body: PartnershipCreate) -> Any:
    """Record a partnership between two cities (stored once per pair, in either order). Coordinators and admins."""
    auth.require_role("admin", "coordinator")
    row = crud.create_partnership(db(), data=body)
    services().matchers.invalidate()
    return _public([row])[0], 201, {"Location": url_for("partnerships.list_partnerships", city=row.city_a_id)}
