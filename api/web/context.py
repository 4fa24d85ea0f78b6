"""The request's view of the app: its services (``app.extensions["twinning"]``) and one database session per
request, closed at teardown."""

from __future__ import annotations

import logging

from flask import current_app, g
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from api.domain.services import Services

EXTENSION = "twinning"

log = logging.getLogger(__name__)


def services() -> Services:
    return current_app.extensions[EXTENSION]


def db() -> Session:
    """The request's session (one per request, closed at teardown)."""
    if "db" not in g:
        g.db = Session(services().engine, expire_on_commit=False)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        try:
            session.close()  # rolls back what was not committed
        except DBAPIError as e:
            # The connection died under the request (the database went away): nothing uncommitted survives
            # that, the answer is already decided (a 503 from the error handler, or what was committed), and
            # SQLAlchemy has discarded the connection; raising here would turn the answer into a bare 500.
            log.warning("database connection lost while closing the request's session: %s", e.orig)
