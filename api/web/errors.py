"""Every API error is JSON: ``{"error": {"status", "message", "fields": [{"field", "problem"}]}}``.

Domain errors (:mod:`api.errors`) are raised where a condition is detected and answered here, by one handler.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from api.errors import TwinningError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, fields: list[dict[str, str]] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"status": status, "message": message, "fields": fields or []}
    body.update(extra)
    resp = jsonify({"error": body})
    resp.status_code = status
    return resp


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

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Response | HTTPException:
        if not _wants_json():
            return e
        status = e.code or 500
        message = e.description or e.name
        if status == 400 and request.is_json is False and request.method in {"POST", "PUT", "PATCH"}:
            message = "the request body must be JSON (Content-Type: application/json)"
        return error_response(status, message)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged")


def _wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path == "/healthz"
        or request.accept_mimetypes.best == "application/json"
    )
