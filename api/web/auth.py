"""Who is calling: the bearer token of an API request, the console's login session, and the checks every write
endpoint makes. Accounts themselves (users, tokens, passwords, the login rate limit) are :mod:`api.domain.accounts`.

* The JSON API authenticates with ``Authorization: Bearer <token>``.
* The console authenticates with a server-side session (Flask's signed session cookie holding the user id and a
  per-login nonce, HttpOnly, SameSite=Lax) and CSRF tokens on every form (:mod:`flask_wtf.csrf`). The JSON API
  ignores the session cookie, so it needs no CSRF protection.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Flask, Response, g, request, session
from sqlmodel import Session

from api.data import accounts as store
from api.data.models import User
from api.domain.accounts import Principal, user_for_token
from api.errors import Forbidden, Unauthorized

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # the OpenAPI security requirement of endpoints that need a token
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made with `twinning users create` or `twinning users token NAME`.",
    }
}


def _from_session_db() -> Session:
    from api.web.context import db

    return db()


def api_user() -> Principal | None:
    """The bearer-token caller of an API request, None when anonymous; 401 for a bad or revoked token."""
    if "api_user" in g:
        return g.api_user
    header = request.headers.get("Authorization", "")
    principal = None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'", "Authorization")
        user = user_for_token(_from_session_db(), secret.strip())
        if user is None:
            raise Unauthorized("the API token is unknown or revoked", "Authorization")
        principal = Principal.of(user)
    g.api_user = principal
    return principal


def require_user() -> Principal:
    user = api_user()
    if user is None:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'", "Authorization")
    return user


def require_role(*roles: str) -> Principal:
    user = require_user()
    if user.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}; you are {user.role}")
    return user


def require_city_editor(city_id: int, *also: str) -> Principal:
    """An admin, an official of ``city_id``, or one of the roles in ``also``."""
    user = require_user()
    if user.can_edit_city(city_id) or user.role in also:
        return user
    raise Forbidden(f"you may not change city {city_id}")


def console_user() -> Principal | None:
    """The logged-in console user (server-side session), or None."""
    if "console_user" in g:
        return g.console_user
    principal = None
    uid = session.get("uid")
    if uid is not None:
        user = store.get_user_by_id(_from_session_db(), user_id=uid)
        if user is not None and user.active and session.get("pw") == _password_marker(user):
            principal = Principal.of(user)
        else:
            session.clear()
    g.console_user = principal
    return principal


def _password_marker(user: User) -> str:
    """Changes when the password does, so changing it logs out every other session."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def login_session(user: User) -> None:
    session.clear()
    session["uid"] = user.id
    session["pw"] = _password_marker(user)
    session.permanent = False


def init_app(app: Flask) -> None:
    """Bearer checks on the API (the session cookie's flags are set in :mod:`api.web.security`)."""

    @app.before_request
    def _check_bearer() -> None:
        """A token sent to any API endpoint must be valid (401 otherwise), so a client notices a bad token."""
        if request.path.startswith("/api/") and request.headers.get("Authorization"):
            api_user()

    @app.after_request
    def _www_authenticate(resp: Response) -> Response:
        if resp.status_code == 401 and request.path.startswith("/api/"):
            resp.headers["WWW-Authenticate"] = 'Bearer realm="twinning"'
        return resp
