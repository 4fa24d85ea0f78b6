"""Accounts over the API: admins manage users; everyone may issue and revoke their own tokens."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from sqlmodel import col, func, select

from api.data.models import ApiToken, User
from api.domain.services import db
from api.schemas import ErrorResponse, TokenIssued, TokensRevoked, UserCreate, UserList, UserPath
from api.web import auth
from api.web.errors import ApiError

bp = APIBlueprint(
    "users",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="users", description="accounts and API tokens (the CLI `twinning users` does the same)")],
    abp_security=auth.BEARER,
)
ERRORS: dict[Any, Any] = {401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse}


def _public(user: User) -> dict[str, Any]:
    n = db().exec(select(func.count()).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))).one()
    return {**auth.Principal.of(user).public(), "active": user.active, "tokens": int(n)}


def _self_or_admin(name: str) -> User:
    caller = auth.require_user()
    user = auth.get_user(db(), name)
    if caller.is_admin or (user is not None and user.id == caller.id):
        if user is None:
            raise ApiError(404, f"no user {name!r}")
        return user
    raise ApiError(403, "only admins manage other users' tokens")


@bp.get("/users", responses={200: UserList, **ERRORS})
def list_users() -> Any:
    """Every account with its role, cities, countries and number of live tokens. Admins only."""
    auth.require_role("admin")
    rows = db().exec(select(User).order_by(col(User.id))).all()
    return {"data": [_public(u) for u in rows], "count": len(rows)}


@bp.post("/users", responses={201: TokenIssued, 422: ErrorResponse, **ERRORS})
def create_user(body: UserCreate) -> Any:
    """Create an account and answer with its first API token (shown once). Admins only."""
    auth.require_role("admin")
    session = db()
    try:
        user = auth.create_user(
            session,
            name=body.name,
            role=body.role,
            password=body.password,
            cities=body.cities,
            countries=body.countries,
            display_name=body.display_name,
        )
        token = auth.issue_token(session, user, label="created with the user")
        session.commit()
    except auth.AuthError as e:
        session.rollback()
        status = 409 if "already exists" in str(e) else 422
        raise ApiError(status, str(e), "name" if status == 409 else None) from e
    return {"user": user.name, "token": token, "prefix": token[:10]}, 201


@bp.post("/users/<name>/tokens", responses={201: TokenIssued, **ERRORS})
def issue_token(path: UserPath) -> Any:
    """Issue another token for a user (yourself, or anyone if you are an admin); shown once."""
    user = _self_or_admin(path.name)
    session = db()
    token = auth.issue_token(session, user, label="issued over the API")
    session.commit()
    return {"user": user.name, "token": token, "prefix": token[:10]}, 201


@bp.post("/users/<name>/tokens/revoke", responses={200: TokensRevoked, **ERRORS})
def revoke_tokens(path: UserPath) -> Any:
    """Revoke every token of a user (yourself, or anyone if you are an admin), including the one calling."""
    user = _self_or_admin(path.name)
    session = db()
    n = auth.revoke_tokens(session, user=user)
    session.commit()
    return {"user": user.name, "revoked": n}
