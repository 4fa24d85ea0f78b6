"""The request's view of the app: its services (``app.extensions["twinning"]``) and one database session per
request, closed at teardown."""

from __future__ import annotations

from flask import current_app, g
from sqlmodel import Session

from api.domain.services import Services

EXTENSION = "twinning"


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
        session.close()
