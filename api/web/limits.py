"""Limits checked at the edge, before a request does any work: URL and header size, anonymous writes, body size,
JSON depth, and NUL characters in any input (PostgreSQL refuses NUL in text, and no field of Twinning needs one).

Order: sizes of what was already received (URL, headers) → an anonymous write to the API answers 401 without its
body being read → the body's size (413, from ``Content-Length`` and, for a streamed body, while reading it) →
the JSON's depth and strings → the form's strings. Each refusal is a JSON error (:mod:`api.web.errors`).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.config import MAX_HEADER_BYTES, MAX_JSON_DEPTH, MAX_URL_BYTES
from api.errors import Invalid, Unauthorized

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UriTooLong(HTTPException):
    code = 414
    description = f"the URL is longer than {MAX_URL_BYTES} bytes"


class HeadersTooLarge(HTTPException):
    code = 431
    description = f"the request headers exceed {MAX_HEADER_BYTES} bytes"


def _url_bytes() -> int:
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return len(raw)
    return len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) + 1


def header_bytes(environ: dict[str, Any]) -> int:
    """The request headers' size as received (``Name: value\\r\\n`` each), from the WSGI environ."""
    return sum(len(k) + len(v) + 4 for k, v in EnvironHeaders(environ).items())


def _nul(value: str) -> bool:
    return "\x00" in value


def check_json(data: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parsed JSON document nested deeper than ``max_depth`` or holding a NUL in any key or string.

    Iterative, so a hostile depth cannot exhaust the stack here."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise Invalid(f"the JSON body is nested deeper than {max_depth} levels", "body")
            if isinstance(value, dict):
                for k, v in value.items():
                    if _nul(k):
                        raise Invalid("names must not contain NUL characters", where)
                    stack.append((v, depth + 1, k if where == "body" else f"{where}.{k}"))
            else:
                stack.extend((v, depth + 1, where) for v in value)
        elif isinstance(value, str) and _nul(value):
            raise Invalid("text must not contain NUL characters", where)


def _check_body() -> None:
    max_bytes = request.max_content_length
    if max_bytes is not None and request.content_length is not None and request.content_length > max_bytes:
        raise RequestEntityTooLarge(f"the request body exceeds {max_bytes} bytes (TWINNING_MAX_BODY_BYTES)")
    if request.is_json:
        # Parsed once: the request caches it, and the route's validation (flask-openapi3) reads that cache. Reading
        # raises 413 past MAX_CONTENT_LENGTH, also for a streamed body; an empty or malformed body gives None here
        # and is left to the route's validation (422) or the 400 handler.
        try:
            data = request.get_json(silent=True)
        except RecursionError as e:
            raise Invalid(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels", "body") from e
        if data is not None:
            check_json(data)
    elif request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        for key, value in request.form.items(multi=True):
            if _nul(key) or _nul(value):
                raise Invalid("text must not contain NUL characters", key if not _nul(key) else "form")


def init_app(app: Flask) -> None:
    @app.before_request
    def _limits() -> None:
        if _url_bytes() > MAX_URL_BYTES:
            raise UriTooLong()
        if header_bytes(request.environ) > MAX_HEADER_BYTES:
            raise HeadersTooLarge()
        if _nul(request.path):
            raise Invalid("the path must not contain NUL characters", "path")
        for key, value in request.args.items(multi=True):
            if _nul(key) or _nul(value):
                raise Invalid("text must not contain NUL characters", key if not _nul(key) else "query")
        if request.method in WRITE_METHODS:
            routed = request.url_rule is not None  # a 404 or 405 is answered as such, not as 401
            if routed and request.path.startswith("/api/") and not request.headers.get("Authorization"):
                # Every write of the JSON API needs a token: say so before reading or validating the body.
                raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'", "Authorization")
            _check_body()
