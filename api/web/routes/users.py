"""Accounts over the API: admins manage users; everyone may issue and revoke their own tokens."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag

from api.data import accounts as store
from api.data.models import User
from api.domain import accounts
from api.errors import Forbidden, NotFound, TwinningError
from api.schemas import ErrorResponse, TokenIssued, TokensRevoked, UserCreate, UserList, UserPath, UserQuery
from api.web import auth
from api.web.context import db
from api.web.routes import error_responses

bp = APIBlueprint(
    "users",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="users", description="accounts and API tokens (the CLI `twinning users` does the same)")],
    abp_security=auth.BEARER,
)
ERRORS = error_responses(401, 403, 404, 409)


def _public(user: User, tokens: int) -> dict[str, Any]:
    return {**accounts.Principal.of(user).public(), "active": user.active, "tokens": tokens}


def _self_or_admin(name: str) -> User:
    caller = auth.require_user()
    user = accounts.get_user(db(), name)
    if caller.is_admin or (user is not None and user.id == caller.id):
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user
    raise Forbidden("only admins manage other users' tokens")


@bp.get("/users", responses={200: UserList, 422: ErrorResponse, **ERRORS})
def list_users(query: UserQuery) -> Any:
    """Every account with its role, cities, countries and number of live tokens, with paging. Admins only."""
    auth.require_role("admin")
    rows, count = store.list_users(db(), page=query.page, per_page=query.per_page)
    data = [_public(user, tokens) for user, tokens in rows]
    return {"data": data, "count": count, "page": query.page, "per_page": query.per_page}


@bp.post("/users", responses={201: TokenIssued, 422: ErrorResponse, **ERRORS})
def create_user(body: UserCreate) -> Any:
    """Create an account and answer with its first API token (shown once). Admins only."""
    auth.require_role("admin")
    session = db()
    try:
        user = accounts.create_user(
            session,
            name=body.name,
            role=body.role,
            password=body.password,
            cities=body.cities,
            countries=body.countries,
            display_name=body.display_name,
        )
        token = accounts.issue_token(session, user, label="created with the user")
        session.commit()
    except TwinningError:
        session.rollback()
        raise
    return {"user": user.name, "token": token, "prefix": token[:10]}, 201


@bp.post("/users/<name>/tokens", responses={201: TokenIssued, **ERRORS})
def issue_token(path: UserPath) -> Any:
    """Issue another token for a user (yourself, or anyone if you are an admin); shown once."""
    user = _self_or_admin(path.name)
    session = db()
    token = accounts.issue_token(session, user, label="issued over the API")
    session.commit()
    return {"user": user.name, "token": token, "prefix": token[:10]}, 201


@bp.post("/users/<name>/tokens/revoke", responses={200: TokensRevoked, **ERRORS})
def revoke_tokens(path: UserPath) -> Any:
    """Revoke every token of a user (yourself, or anyone if you are an admin), including the one calling."""
    user = _self_or_admin(path.name)
    session = db()
    n = accounts.revoke_tokens(session, user=user)
    session.commit()
    return {"user": user.name, "revoked": n}
