"""The API's blueprints, one module per resource."""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorResponse


def error_responses(*codes: int) -> dict[Any, Any]:
    """OpenAPI ``responses`` entries for the error statuses a route can answer, each an :class:`ErrorResponse` (the
    errors themselves are mapped to responses in one place: :mod:`api.errors` and the app's handlers)."""
    return dict.fromkeys(codes, ErrorResponse)
