"""Health, the sector vocabulary, and the landing page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from flask_openapi3 import APIBlueprint, Tag

from api.data.db import ping as ping_database
from api.domain.queue import QueueUnavailable, ping, redact
from api.schemas import SectorList
from api.web.context import db, services
from matcher.sectors import SECTORS

bp = APIBlueprint("meta", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="meta")])
pages = Blueprint(
    "pages", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static"
)


@bp.get("/sectors", responses={200: SectorList})
def sectors() -> Any:
    """The controlled vocabulary of collaboration sectors (use the keys in profiles and filters)."""
    data = [{"key": k, "label": lab, "description": d} for k, lab, d in SECTORS]
    return {"data": data, "count": len(data)}


@pages.get("/healthz")
def healthz() -> Response:
    """Pings the database and Redis; 503 naming the service that fails."""
    svc = services()
    checks: dict[str, str] = {}
    try:
        ping_database(db())
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"failed: {type(e).__name__}"
    if svc.settings.REDIS_URL:
        try:
            ping(svc.settings.REDIS_URL, svc.settings.REDIS_TIMEOUT_S)
            checks["redis"] = "ok"
        except QueueUnavailable as e:
            checks["redis"] = f"failed: {e}"
    else:
        checks["redis"] = "not configured (jobs run in-process)"
    failing = [k for k, v in checks.items() if v.startswith("failed")]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    resp = jsonify(body)
    resp.status_code = 503 if failing else 200
    return resp


@pages.get("/")
def index() -> str:
    svc = services()
    return render_template(
        "index.html",
        database=redact(svc.settings.DATABASE_URL),
        jobs_mode=svc.settings.JOBS_MODE,
    )
