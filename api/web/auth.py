"""Accounts, roles, API tokens, console logins and the checks every write endpoint makes.

* Roles: ``official`` (bound to one or more cities), ``coordinator`` (reviews matches; optionally scoped to
  countries), ``admin`` (everything).
* The JSON API authenticates with ``Authorization: Bearer <token>``. A token is ``tw_`` plus 32 random bytes
  (URL-safe base64); only its SHA-256 is stored, so a leaked database does not leak usable tokens. Tokens are
  revocable one by one or per user.
* The console authenticates with a server-side session (Flask's signed session cookie holding the user id and a
  per-login nonce, HttpOnly, SameSite=Lax) and CSRF tokens on every form (:mod:`flask_wtf.csrf`). The JSON API
  ignores the session cookie, so it needs no CSRF protection.
* Console logins are rate-limited in the database (so it holds across processes): after
  ``LOGIN_MAX_FAILURES`` failures for one user name from one address within ``LOGIN_WINDOW_S`` seconds, further
  attempts are refused (HTTP 429) until the window has passed; an address is also capped at four times that
  across all user names.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, request, session
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash, generate_password_hash

from api.data.models import ApiToken, City, Country, LoginAttempt, User, utcnow
from api.web.errors import ApiError

ROLES = ("official", "coordinator", "admin")
TOKEN_PREFIX = "tw_"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # the OpenAPI security requirement of endpoints that need a token
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made with `twinning users create` or `twinning users token NAME`.",
    }
}
# The demo accounts of the embedded mode: name → (role, password, cities, countries, display name).
DEMO_ACCOUNTS: dict[str, tuple[str, str, list[int], list[str], str]] = {
    "suzhou": ("official", "suzhou-demo", [1886760], [], "Official of Suzhou (demo)"),
    "miami": ("official", "miami-demo", [4164138], [], "Official of Miami (demo)"),
    "coordinator": ("coordinator", "coordinator-demo", [], [], "Coordinator (demo)"),
    "admin": ("admin", "admin-demo", [], [], "Administrator (demo)"),
}


class AuthError(ValueError):
    """Bad account data (unknown role, duplicate name, …)."""


# ---------------------------------------------------------------- users and tokens
def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def get_user(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name.strip().lower())).first()


def create_user(
    session: Session,
    *,
    name: str,
    role: str,
    password: str | None = None,
    cities: Iterable[int] = (),
    countries: Iterable[str] = (),
    display_name: str = "",
    demo: bool = False,
) -> User:
    name = name.strip().lower()
    if not name or len(name) > 80 or not all(c.isalnum() or c in "._-@" for c in name):
        raise AuthError("a user name is 1–80 letters, digits or . _ - @")
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    city_ids = sorted({int(c) for c in cities})
    if role == "official" and not city_ids:
        raise AuthError("an official needs at least one city (--city GEONAMEID)")
    if role != "official" and city_ids:
        raise AuthError("only officials are bound to cities")
    codes = sorted({c.strip().upper() for c in countries})
    if codes and role != "coordinator":
        raise AuthError("only coordinators are scoped to countries")
    for cid in city_ids:
        if session.get(City, cid) is None:
            raise AuthError(f"unknown city {cid}")
    for code in codes:
        if session.get(Country, code) is None:
            raise AuthError(f"unknown country code {code}")
    if get_user(session, name) is not None:
        raise AuthError(f"user {name!r} already exists")
    user = User(
        name=name,
        role=role,
        display_name=display_name or name,
        password_hash=generate_password_hash(password) if password else None,
        cities=city_ids,
        countries=codes,
        demo=demo,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = generate_password_hash(password)
    session.add(user)


def issue_token(session: Session, user: User, label: str = "") -> str:
    """A new token for ``user``; the secret is returned once and only its hash is stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id or 0, token_hash=hash_token(secret), prefix=secret[:10], label=label))
    session.flush()
    return secret


def revoke_tokens(session: Session, *, user: User | None = None, prefix: str | None = None) -> int:
    """Revoke every token of ``user`` and/or the token(s) starting with ``prefix``; returns how many."""
    stmt = update(ApiToken).where(col(ApiToken.revoked_at).is_(None))
    if user is not None:
        stmt = stmt.where(col(ApiToken.user_id) == user.id)
    if prefix:
        stmt = stmt.where(col(ApiToken.prefix) == prefix[:10])
    if user is None and not prefix:
        raise AuthError("name a user or a token prefix")
    result = session.execute(stmt.values(revoked_at=utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


def user_for_token(session: Session, secret: str) -> User | None:
    token = session.exec(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret), col(ApiToken.revoked_at).is_(None))
    ).first()
    if token is None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    last = token.last_used_at
    if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo))) > timedelta(minutes=5):
        session.execute(update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now))
        session.commit()
    return user


def ensure_demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    """Create the demo accounts (embedded mode only — the caller checks); returns (name, role, password)."""
    out = []
    for name, (role, password, cities, countries, display) in DEMO_ACCOUNTS.items():
        if get_user(session, name) is None:
            if any(session.get(City, c) is None for c in cities):
                continue  # the gazetteer is not loaded (``serve --no-seed``)
            create_user(
                session,
                name=name,
                role=role,
                password=password,
                cities=cities,
                countries=countries,
                display_name=display,
                demo=True,
            )
        out.append((name, role, password))
    session.commit()
    return out


# ---------------------------------------------------------------- login rate limit
@dataclass
class LoginResult:
    user: User | None
    limited: bool = False
    retry_after: int = 0


def check_login(
    session: Session, name: str, password: str, address: str, *, max_failures: int, window_s: int
) -> LoginResult:
    """Check a console login, counting failures per (user name, address) and per address."""
    name = name.strip().lower()[:80]
    key = f"{name}|{address}"
    since = utcnow() - timedelta(seconds=window_s)
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < since))
    per_key = session.exec(select(func.count()).where(LoginAttempt.key == key, col(LoginAttempt.at) >= since)).one()
    per_addr = session.exec(
        select(func.count()).where(col(LoginAttempt.key).endswith(f"|{address}"), col(LoginAttempt.at) >= since)
    ).one()
    if per_key >= max_failures or per_addr >= 4 * max_failures:
        session.commit()
        return LoginResult(None, limited=True, retry_after=window_s)
    user = get_user(session, name)
    ok = user is not None and user.active and user.password_hash and check_password_hash(user.password_hash, password)
    if not ok:
        session.add(LoginAttempt(key=key))
        session.commit()
        return LoginResult(None)
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.key) == key))
    session.commit()
    return LoginResult(user)


# ---------------------------------------------------------------- who is calling
@dataclass
class Principal:
    """The caller of a request, detached from the session."""

    id: int
    name: str
    role: str
    display_name: str
    cities: list[int] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            id=user.id or 0,
            name=user.name,
            role=user.role,
            display_name=user.display_name or user.name,
            cities=[int(c) for c in user.cities or []],
            countries=list(user.countries or []),
        )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def official_of(self, city_id: int) -> bool:
        return self.role == "official" and int(city_id) in self.cities

    def covers_country(self, country: str) -> bool:
        """A coordinator without countries covers every country; admins cover everything."""
        return self.is_admin or (self.role == "coordinator" and (not self.countries or country in self.countries))

    def can_edit_city(self, city_id: int) -> bool:
        return self.is_admin or self.official_of(city_id)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "display_name": self.display_name,
            "cities": self.cities,
            "countries": self.countries,
        }


def _from_session_db() -> Session:
    from api.domain.services import db

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
            raise ApiError(401, "the Authorization header must be 'Bearer <token>'", "Authorization")
        user = user_for_token(_from_session_db(), secret.strip())
        if user is None:
            raise ApiError(401, "the API token is unknown or revoked", "Authorization")
        principal = Principal.of(user)
    g.api_user = principal
    return principal


def require_user() -> Principal:
    user = api_user()
    if user is None:
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <token>'", "Authorization")
    return user


def require_role(*roles: str) -> Principal:
    user = require_user()
    if user.role not in roles:
        raise ApiError(403, f"this needs the role {' or '.join(roles)}; you are {user.role}")
    return user


def require_city_editor(city_id: int, *also: str) -> Principal:
    """An admin, an official of ``city_id``, or one of the roles in ``also``."""
    user = require_user()
    if user.can_edit_city(city_id) or user.role in also:
        return user
    raise ApiError(403, f"you may not change city {city_id}")


def console_user() -> Principal | None:
    """The logged-in console user (server-side session), or None."""
    if "console_user" in g:
        return g.console_user
    principal = None
    uid = session.get("uid")
    if uid is not None:
        user = _from_session_db().get(User, uid)
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
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")

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
