"""Accounts: users and roles, API tokens, passwords, the console login rate limit, the demo accounts, and the
:class:`Principal` a request acts as. No Flask here (:mod:`api.web.auth` reads the request).

* Roles: ``official`` (bound to one or more cities), ``coordinator`` (reviews matches; optionally scoped to
  countries), ``admin`` (everything).
* A token is ``tw_`` plus 32 random bytes (URL-safe base64); only its SHA-256 is stored, so a leaked database does
  not leak usable tokens. Tokens are revocable one by one or per user.
* Console logins are rate-limited in the database (so it holds across processes): after
  ``LOGIN_MAX_FAILURES`` failures for one user name from one address within ``LOGIN_WINDOW_S`` seconds, further
  attempts are refused (HTTP 429) until the window has passed. A user name is also capped at four times that
  across all addresses (a per-user limit: failures on *other* names cannot trip it), and an address at four times
  that across all names — which then refuses only the names that have failed from it, so one address's failures
  on other names never lock out a user (behind a shared proxy or NAT: everyone else).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session
from werkzeug.security import check_password_hash, generate_password_hash

from api.data import accounts as store
from api.data import crud
from api.data.models import ApiToken, LoginAttempt, User, utcnow
from api.errors import Conflict, Invalid

ROLES = ("official", "coordinator", "admin")
TOKEN_PREFIX = "tw_"
# The demo accounts of the embedded mode: name → (role, password, cities, countries, display name).
DEMO_ACCOUNTS: dict[str, tuple[str, str, list[int], list[str], str]] = {
    "suzhou": ("official", "suzhou-demo", [1886760], [], "Official of Suzhou (demo)"),
    "miami": ("official", "miami-demo", [4164138], [], "Official of Miami (demo)"),
    "coordinator": ("coordinator", "coordinator-demo", [], [], "Coordinator (demo)"),
    "admin": ("admin", "admin-demo", [], [], "Administrator (demo)"),
}


# ---------------------------------------------------------------- users and tokens
def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_name(name: str) -> str:
    return name.strip().lower()


def get_user(session: Session, name: str) -> User | None:
    return store.get_user(session, name=normalise_name(name))


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
    """A new user; :class:`Invalid` for bad account data, :class:`Conflict` when the name is taken."""
    name = normalise_name(name)
    if not name or len(name) > 80 or not all(c.isalnum() or c in "._-@" for c in name):
        raise Invalid("a user name is 1–80 letters, digits or . _ - @", "name")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", "role")
    city_ids = sorted({int(c) for c in cities})
    if role == "official" and not city_ids:
        raise Invalid("an official needs at least one city (--city GEONAMEID)", "cities")
    if role != "official" and city_ids:
        raise Invalid("only officials are bound to cities", "cities")
    codes = sorted({c.strip().upper() for c in countries})
    if codes and role != "coordinator":
        raise Invalid("only coordinators are scoped to countries", "countries")
    unknown_cities = crud.missing_city_ids(session, ids=city_ids)
    if unknown_cities:
        raise Invalid(f"unknown city {unknown_cities[0]}", "cities")
    unknown_codes = crud.missing_country_codes(session, codes=codes)
    if unknown_codes:
        raise Invalid(f"unknown country code {unknown_codes[0]}", "countries")
    if store.get_user(session, name=name) is not None:
        raise Conflict(f"user {name!r} already exists", "name")
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
    if user is None and not prefix:
        raise Invalid("name a user or a token prefix")
    return store.revoke_tokens(
        session, at=utcnow(), user_id=user.id if user is not None else None, prefix=prefix[:10] if prefix else None
    )


def user_for_token(session: Session, secret: str) -> User | None:
    """The active user a live token belongs to (its last use is recorded at most every five minutes)."""
    token = store.get_live_token(session, token_hash=hash_token(secret))
    if token is None:
        return None
    user = store.get_user_by_id(session, user_id=token.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    last = token.last_used_at
    if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo))) > timedelta(minutes=5):
        store.touch_token(session, token_id=token.id or 0, at=now)
        session.commit()
    return user


def ensure_demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    """Create the demo accounts (embedded mode only — the caller checks); returns (name, role, password)."""
    out = []
    for name, (role, password, cities, countries, display) in DEMO_ACCOUNTS.items():
        if get_user(session, name) is None:
            if crud.missing_city_ids(session, ids=cities):
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
    name = normalise_name(name)[:80]
    key = f"{name}|{address}"
    since = utcnow() - timedelta(seconds=window_s)
    store.forget_login_attempts(session, before=since)
    per_key, per_addr = store.count_login_failures(session, key=key, address=address, since=since)
    per_name = store.count_name_failures(session, name=name, since=since)
    spraying = per_addr >= 4 * max_failures and per_key > 0
    if per_key >= max_failures or per_name >= 4 * max_failures or spraying:
        session.commit()
        return LoginResult(None, limited=True, retry_after=window_s)
    user = store.get_user(session, name=name)
    ok = user is not None and user.active and user.password_hash and check_password_hash(user.password_hash, password)
    if not ok:
        session.add(LoginAttempt(key=key))
        session.commit()
        return LoginResult(None)
    store.forget_login_attempts(session, key=key)
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
