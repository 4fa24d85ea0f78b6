"""Domain errors: raised where a condition is detected (data, domain or web layer), answered once by the web layer.

No Flask here. Each class carries its HTTP status; :mod:`api.web.errors` turns any :class:`TwinningError` into the
JSON error body ``{"error": {"status", "message", "fields": [{"field", "problem"}], ...extra}}``.

Conventions: a resource missing in the request's path or query is :class:`NotFound` (404); an unknown id sent in a
request body is :class:`Invalid` (422) naming the body field.
"""

from __future__ import annotations

from typing import Any


class TwinningError(Exception):
    """Base class; ``field`` names the input at fault, ``extra`` goes into the error body as is."""

    status = 500

    def __init__(self, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class Unauthorized(TwinningError):
    status = 401


class Forbidden(TwinningError):
    status = 403


class NotFound(TwinningError):
    status = 404


class Conflict(TwinningError):
    status = 409


class Invalid(TwinningError):
    status = 422


class TooMany(TwinningError):
    status = 429


class Unavailable(TwinningError):
    status = 503


BY_STATUS: dict[int, type[TwinningError]] = {
    cls.status: cls for cls in (Unauthorized, Forbidden, NotFound, Conflict, Invalid, TooMany, Unavailable)
}
