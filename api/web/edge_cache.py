"""Repeated anonymous reads answered before Flask: the whole response of an answer a route offers (the city search
and stored suggestions), kept per process and served again while the data version it was made at is the newest.

A cached answer already skips the database (:mod:`api.domain.answers`), but each request still went through
Flask's routing, the query's validation, the before- and after-request hooks and the response object: ~0.3 ms of
CPU, most of a hit's cost, and at saturation the requests queue behind each other's CPU. Here a hit is a dictionary
lookup and one read of the data version.

* **What is kept**: a ``200`` answer of a ``GET`` without ``Authorization`` or ``Cookie`` whose route called
  :func:`offer` (its :class:`~api.domain.answers.Answer`: data version and lapse time), with the status and headers
  Flask sent (the security headers included), keyed by path, query string, ``Accept-Language`` and scheme.
* **What is checked on a request whose response is kept**: the data version
  (:class:`~api.data.version.VersionReader`: a few µs on SQLite, one round trip on PostgreSQL), and the request
  headers' size limit (:func:`api.web.limits.header_bytes`; the URL's limits and NUL checks passed when the same URL
  was first answered). Anything else, or any error while reading the version, goes through Flask as before; a
  request with nothing kept for it goes there without reading the version.
* Size: ``TWINNING_EDGE_CACHE`` responses per process (``0``: off).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from api.config import MAX_HEADER_BYTES
from api.data.version import VersionReader
from api.domain.answers import Answer, AnswerCache
from api.web.limits import header_bytes

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
OFFERED = "twinning.edge_answer"
EDGE_EXTENSION = "twinning_edge"  # the app's EdgeCache in ``app.extensions``
CACHE_HEADER = "X-Twinning-Cache"


def offer(answer: Answer) -> None:
    """Let the edge cache keep this request's response (a route's whole answer, made of ``answer`` alone)."""
    if answer.data_version is not None:
        request.environ[OFFERED] = answer


class Stored:
    """One kept response: what :class:`~api.domain.answers.AnswerCache` needs (``data_version``, ``until``) and the
    status, headers and body to send."""

    __slots__ = ("body", "data_version", "headers", "status", "until")

    def __init__(self, answer: Answer, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.data_version = answer.data_version
        self.until = answer.until
        self.status = status
        self.headers = [(k, "hit" if k == CACHE_HEADER else v) for k, v in headers]
        self.body = body


class EdgeCache:
    """WSGI middleware around the Flask app (see the module doc)."""

    def __init__(self, app: WSGIApp, versions: VersionReader, size: int) -> None:
        self.app = app
        self.versions = versions
        self.responses: AnswerCache[Stored] = AnswerCache(size)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            self.responses.size <= 0
            or environ.get("REQUEST_METHOD") != "GET"
            or "HTTP_AUTHORIZATION" in environ
            or "HTTP_COOKIE" in environ
        ):
            return self.app(environ, start_response)
        key = (
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT_LANGUAGE", ""),
            environ.get("wsgi.url_scheme", ""),
        )
        if key not in self.responses:  # nothing kept for it: no version to read (health checks, other pages)
            return self._through(key, environ, start_response)
        try:
            version = self.versions.read(_no_session)
        except (LookupError, SQLAlchemyError):  # the database is away: Flask answers (503) as for any request
            return self.app(environ, start_response)
        if version is not None and header_bytes(environ) <= MAX_HEADER_BYTES:
            stored = self.responses.get(key, version)
            if stored is not None:
                start_response(stored.status, list(stored.headers))
                return [stored.body]
        return self._through(key, environ, start_response)

    def _through(self, key: tuple[str, ...], environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sent: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            sent[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        chunks = self.app(environ, capture)
        answer = environ.get(OFFERED)
        if (
            not isinstance(answer, Answer)
            or not sent
            or not sent[0].startswith("200 ")
            or any(k.lower() == "set-cookie" for k, _ in sent[1])
        ):
            return chunks
        body = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        if answer.until > time.time():
            self.responses.put(key, Stored(answer, sent[0], sent[1], body))
        return [body]


def _no_session() -> Any:
    """The version reader's fallback session: none outside a request (the error sends the request through Flask)."""
    raise LookupError("no session at the edge")
