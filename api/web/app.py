"""Twinning's web application: JSON API under /api/v1 (OpenAPI 3.1) and the server-rendered console."""

from __future__ import annotations

import logging
from typing import Any

from flask_openapi3 import Info, OpenAPI

from api.config import Settings
from api.data.db import make_engine, migrate
from api.domain.services import build_services
from api.schemas import ErrorResponse
from api.web import limits, security
from api.web.auth import SECURITY_SCHEMES
from api.web.context import EXTENSION, close_db
from api.web.edge_cache import EDGE_EXTENSION, EdgeCache
from api.web.errors import register as register_errors
from api.web.errors import validation_error_response

__all__ = ["create_app"]

# What any operation may answer besides its own statuses: a bad or revoked token (401, on reads too), a body over
# the size limit (413), invalid input (422), PostgreSQL or Redis down (503 with Retry-After). All are ErrorResponse.
EVERY_OPERATION = {
    "401": "a missing, bad or revoked bearer token",
    "413": "the request body is too large",
    "422": "invalid input, naming each field",
    "503": "the database or the job queue is unavailable (Retry-After)",
}


class TwinningOpenAPI(OpenAPI):
    """flask-openapi3's app, whose spec lists the errors every operation may answer, in Twinning's error shape
    (flask-openapi3's own default for 422 is a list of pydantic errors, which the API never sends)."""

    def generate_spec_json(self) -> None:
        super().generate_spec_json()
        error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}}}
        for path_item in self.spec_json["paths"].values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, description in EVERY_OPERATION.items():
                    responses[status] = {"description": description, "content": error}


def create_app(overrides: dict[str, Any] | None = None) -> TwinningOpenAPI:
    """The app factory: settings from the environment, then ``overrides`` (tests pass theirs here)."""
    settings = Settings.from_env(**(overrides or {}))
    settings.check_secret()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    info = Info(
        title="Twinning API",
        version="1.0.0",
        description="Partner suggestions for sister-city (town-twinning) partnerships: city profiles, explained "
        "suggestions, re-scoring jobs and the partnership network.",
    )
    app = TwinningOpenAPI(
        __name__,
        info=info,
        doc_prefix="/api/v1",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_callback=validation_error_response,
        security_schemes=SECURITY_SCHEMES,
    )
    app.config.update(settings.as_flask())
    app.config["SECRET_KEY"] = settings.SECRET_KEY
    app.json.sort_keys = False  # type: ignore[attr-defined]

    engine = make_engine(settings.DATABASE_URL, settings.DB_TIMEOUT_S)
    if settings.MIGRATE_ON_START:
        migrate(engine)
    built = app.extensions[EXTENSION] = build_services(settings, engine)
    # inside ProxyFix (security.init_app): the edge cache keys on the scheme the client used
    edge = app.extensions[EDGE_EXTENSION] = EdgeCache(app.wsgi_app, built.versions, settings.EDGE_CACHE)
    app.wsgi_app = edge  # type: ignore[method-assign]
    app.teardown_appcontext(close_db)
    register_errors(app)
    security.init_app(app, trusted_proxies=settings.TRUSTED_PROXIES, cookie_secure=settings.COOKIE_SECURE)
    limits.init_app(app)  # before auth: sizes and anonymous writes are refused before a token is looked up

    from api.web.routes import cities, jobs, meta, partnerships

    app.register_api(cities.bp)
    app.register_api(partnerships.bp)
    app.register_api(jobs.bp)
    app.register_api(meta.bp)
    app.register_blueprint(meta.pages)

    # Accounts, the match workflow and the web console.
    from api.web import auth
    from api.web.console import init_console
    from api.web.routes import matches, users

    auth.init_app(app)
    app.register_api(matches.bp)
    app.register_api(users.bp)
    init_console(app)

    from api.web.routes import conferences

    app.register_api(conferences.bp)

    return app
