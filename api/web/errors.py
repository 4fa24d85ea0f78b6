"""Every API error is JSON: ``{"error": {"status", "message", "fields": [{"field", "problem"}]}}``.

Domain errors (:mod:`api.errors`) are raised where a condition is detected and answered here, by one handler.
Faults of the services behind the app are answered here too: the database or Redis unreachable → 503 with
``Retry-After`` (never a 500), a value the database refuses → 422.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from api.config import RETRY_AFTER_S
from api.domain.queue import QueueUnavailable
from api.errors import TwinningError

# Sizes refused before the request is routed: JSON for every client (the console has no page for them).
ALWAYS_JSON = frozenset({413, 414, 431})

log = logging.getLogger(__name__)


def error_response(status: int, message: str, fields: list[dict[str, str]] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"status": status, "message": message, "fields": fields or []}
    body.update(extra)
    resp = jsonify({"error": body})
    resp.status_code = status
    if status == 503:
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def _queue_errors() -> tuple[type[Exception], ...]:
    """Exceptions of the broker client that mean Redis is unreachable."""
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return (QueueUnavailable, KombuOperationalError, RedisConnectionError, RedisTimeout)


def _database_down(e: BaseException) -> bool:
    """Whether a database error means the database is unreachable (rather than a bad statement)."""
    if isinstance(e, PoolTimeout | InterfaceError):
        return True
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, OperationalError):
        import psycopg

        orig = e.orig
        if orig is None or not isinstance(orig, psycopg.Error):
            return True
        # Connection failures carry no SQLSTATE, or class 08 (connection exception) / 57P (operator intervention).
        state = orig.sqlstate or ""
        return not state or state.startswith(("08", "57P", "53"))
    return False


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_error_response(e: ValidationError) -> Response:
    """flask-openapi3's hook: pydantic errors → 422 naming each field and its problem."""
    fields = []
    for err in e.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        fields.append({"field": _field_path(loc), "problem": err.get("msg", "invalid")})
    where = ", ".join(f"{f['field']}: {f['problem']}" for f in fields[:5])
    return error_response(422, f"invalid input ({where})", fields)


def register(app: Flask) -> None:
    @app.errorhandler(TwinningError)
    def _domain_error(e: TwinningError) -> Response:
        fields = [{"field": e.field, "problem": e.message}] if e.field else []
        return error_response(e.status, e.message, fields, **e.extra)

    @app.errorhandler(IntegrityError)
    def _integrity(e: IntegrityError) -> Response:
        log.info("integrity error: %s", e.orig)
        return error_response(409, "conflicts with existing data")

    @app.errorhandler(DataError)
    def _data(e: DataError) -> Response:
        log.info("value refused by the database: %s", e.orig)
        return error_response(422, "a value is out of range or not valid")

    @app.errorhandler(DBAPIError)
    def _database(e: DBAPIError) -> Response:
        if _database_down(e):
            log.warning("database unavailable on %s %s: %s", request.method, request.path, e.orig)
            return error_response(503, "the database is unavailable; try again shortly", service="database")
        return _unexpected(e)

    @app.errorhandler(PoolTimeout)
    def _pool(e: PoolTimeout) -> Response:
        log.warning("no database connection within the timeout on %s %s", request.method, request.path)
        return error_response(503, "the database is unavailable; try again shortly", service="database")

    for exc in _queue_errors():

        @app.errorhandler(exc)
        def _queue(e: Exception) -> Response:
            log.warning("job queue unavailable on %s %s: %s", request.method, request.path, e)
            return error_response(503, "the job queue is unavailable; try again shortly", service="redis")

    @app.errorhandler(RecursionError)
    def _recursion(e: RecursionError) -> Response:
        return error_response(422, "the input is nested too deeply")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Response | HTTPException:
        status = e.code or 500
        if not _wants_json() and status not in ALWAYS_JSON:
            return e
        message = e.description or e.name
        if status == 400 and request.is_json is False and request.method in {"POST", "PUT", "PATCH"}:
            message = "the request body must be JSON (Content-Type: application/json)"
        resp = error_response(status, message)
        for name, value in e.get_headers():  # e.g. Allow on 405
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp

    def _unexpected(e: BaseException) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=e)
        return error_response(500, "internal error; it has been logged")

    app.register_error_handler(Exception, _unexpected)


def _wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path == "/healthz"
        or request.accept_mimetypes.best == "application/json"
    )
