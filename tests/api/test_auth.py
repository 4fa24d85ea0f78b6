"""Accounts and authorization: every write endpoint × role (allowed and forbidden), tokens, private reads."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from api.data.models import ApiToken
from api.domain.accounts import create_user, hash_token, issue_token
from tests.conftest import bearer

SUZHOU, MIAMI, KUNSHAN = 1886760, 4164138, 1785623
PROFILE = {"offers": {"education": 0.8}, "seeks": {"tourism": 0.6}, "description": "test", "contact_name": "Ms Li"}
NEW_CITY = {"name": "Testville", "country": "US", "latitude": 40.0, "longitude": -75.0, "population": 20000}


@pytest.fixture
def who(app: Any) -> dict[str, dict[str, str]]:
    """Headers for each kind of caller."""
    return {
        "anonymous": {},
        "official_suzhou": bearer(app, "official", cities=(SUZHOU,)),
        "official_miami": bearer(app, "official", cities=(MIAMI,)),
        "coordinator": bearer(app, "coordinator"),
        "coordinator_de": bearer(app, "coordinator", countries=("DE",)),
        "admin": bearer(app, "admin"),
    }


def _status(r: Any) -> int:
    body = r.get_json()
    if r.status_code >= 400:
        assert "error" in body and body["error"]["status"] == r.status_code, body
    return int(r.status_code)


# (method, url, json, caller → expected status): the role × write-endpoint matrix.
MATRIX: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
    (
        "put",
        f"/api/v1/cities/{SUZHOU}/profile",
        PROFILE,
        {
            "anonymous": 401,
            "official_suzhou": 200,
            "official_miami": 403,
            "coordinator": 403,
            "coordinator_de": 403,
            "admin": 200,
        },
    ),
    (
        "patch",
        f"/api/v1/cities/{SUZHOU}",
        {"population": 6_000_000},
        {
            "anonymous": 401,
            "official_suzhou": 200,
            "official_miami": 403,
            "coordinator": 200,
            "coordinator_de": 403,  # Suzhou is outside a German coordinator's scope
            "admin": 200,
        },
    ),
    (
        "post",
        "/api/v1/cities",
        NEW_CITY,
        {
            "anonymous": 401,
            "official_suzhou": 403,
            "official_miami": 403,
            "coordinator": 201,
            "coordinator_de": 403,  # a US city: outside a German coordinator's scope
            "admin": 201,
        },
    ),
    (
        "post",
        "/api/v1/partnerships",
        {"city_a_id": SUZHOU, "city_b_id": MIAMI},
        {
            "anonymous": 401,
            "official_suzhou": 403,
            "official_miami": 403,
            "coordinator": 201,
            "coordinator_de": 201,
            "admin": 201,
        },
    ),
    (
        "post",
        "/api/v1/jobs/rescore",
        {"city_ids": [SUZHOU]},
        {
            "anonymous": 401,
            "official_suzhou": 403,
            "official_miami": 403,
            "coordinator": 202,
            "coordinator_de": 202,
            "admin": 202,
        },
    ),
    (
        "post",
        "/api/v1/matches",
        {"city_id": SUZHOU, "partner_id": KUNSHAN, "message": "hello", "sectors": ["education"]},
        {
            "anonymous": 401,
            "official_suzhou": 201,
            "official_miami": 403,
            "coordinator": 403,
            "coordinator_de": 403,
            "admin": 201,
        },
    ),
]
CALLERS = ["anonymous", "official_suzhou", "official_miami", "coordinator", "coordinator_de", "admin"]


@pytest.mark.parametrize(
    ("method", "url", "body", "caller", "expected"),
    [(m, u, b, c, exp[c]) for m, u, b, exp in MATRIX for c in CALLERS],
    ids=[f"{m}-{u.split('/api/v1/')[1]}-{c}" for m, u, _, _ in MATRIX for c in CALLERS],
)
def test_write_endpoint_role_matrix(
    client: Any, who: dict[str, dict[str, str]], method: str, url: str, body: dict[str, Any], caller: str, expected: int
) -> None:
    r = getattr(client, method)(url, json=body, headers=who[caller])
    assert _status(r) == expected, r.get_json()
    if expected == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_revoked_and_malformed_tokens(app: Any, client: Any) -> None:
    url = f"/api/v1/cities/{SUZHOU}/profile"
    assert client.put(url, json=PROFILE, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.put(url, json=PROFILE, headers={"Authorization": "Basic abc"}).status_code == 401
    headers = bearer(app, "official", cities=(SUZHOU,))
    assert client.get("/api/v1/me", headers=headers).get_json()["cities"] == [SUZHOU]
    # A bad token is refused even on a read, so a client notices its token is wrong.
    assert client.get(f"/api/v1/cities/{SUZHOU}", headers={"Authorization": "Bearer nope"}).status_code == 401
    with Session(app.extensions["twinning"].engine) as s:
        token = s.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(headers["Authorization"][7:]))).one()
        assert token.prefix == headers["Authorization"][7:17]
    from api.domain.accounts import get_user, revoke_tokens

    with Session(app.extensions["twinning"].engine) as s:
        user = get_user(s, "test-official-1886760")
        assert user is not None
        assert revoke_tokens(s, user=user) == 1
        s.commit()
    r = client.put(url, json=PROFILE, headers=headers)
    assert r.status_code == 401 and "revoked" in r.get_json()["error"]["message"]


def test_tokens_are_stored_hashed(app: Any) -> None:
    with Session(app.extensions["twinning"].engine) as s:
        user = create_user(s, name="hashme", role="admin")
        secret = issue_token(s, user)
        s.commit()
        stored = s.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert secret.startswith("tw_") and len(secret) > 40
    assert stored.token_hash == hash_token(secret) and secret not in stored.token_hash


def test_profile_contacts_are_private(client: Any, who: dict[str, dict[str, str]]) -> None:
    assert client.put(f"/api/v1/cities/{SUZHOU}/profile", json=PROFILE, headers=who["admin"]).status_code == 200
    url = f"/api/v1/cities/{SUZHOU}/profile"
    for caller, visible in [
        ("anonymous", False),
        ("official_miami", False),
        ("coordinator_de", False),
        ("official_suzhou", True),
        ("coordinator", True),
        ("admin", True),
    ]:
        body = client.get(url, headers=who[caller]).get_json()
        assert (body["contact_name"] == "Ms Li") is visible, caller
        assert body["offers"] == {"education": 0.8}


def test_openapi_documents_the_bearer_scheme(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/cities/{id}/profile"]["put"]["security"] == [{"bearer": []}]
    assert spec["paths"]["/api/v1/matches/{id}/decisions"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/api/v1/cities"]["get"]


def test_user_validation(app: Any) -> None:
    from api.errors import Conflict, Invalid

    with Session(app.extensions["twinning"].engine) as s:
        for kwargs in [
            {"name": "x", "role": "king"},
            {"name": "x", "role": "official"},
            {"name": "x", "role": "official", "cities": [42]},
            {"name": "x", "role": "admin", "cities": [SUZHOU]},
            {"name": "x", "role": "coordinator", "countries": ["QQ"]},
            {"name": "bad name!", "role": "admin"},
        ]:
            with pytest.raises(Invalid):
                create_user(s, **kwargs)  # type: ignore[arg-type]
        create_user(s, name="Dup", role="admin")
        with pytest.raises(Conflict):
            create_user(s, name="dup", role="admin")


def test_training_is_for_admins_only(client: Any, who: dict[str, dict[str, str]]) -> None:
    for caller, expected in [("anonymous", 401), ("official_suzhou", 403), ("coordinator", 403)]:
        r = client.post("/api/v1/jobs/train", headers=who[caller])
        assert _status(r) == expected, caller


def test_users_api(client: Any, who: dict[str, dict[str, str]]) -> None:
    body = {"name": "mia", "role": "official", "cities": [MIAMI], "password": "long-enough"}
    assert client.post("/api/v1/users", json=body, headers=who["coordinator"]).status_code == 403
    r = client.post("/api/v1/users", json=body, headers=who["admin"])
    assert r.status_code == 201, r.get_json()
    token = r.get_json()["token"]
    mia = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=mia).get_json()["cities"] == [MIAMI]
    assert client.post("/api/v1/users", json=body, headers=who["admin"]).status_code == 409
    bad = {**body, "name": "x2", "cities": []}
    assert client.post("/api/v1/users", json=bad, headers=who["admin"]).status_code == 422
    names = [u["name"] for u in client.get("/api/v1/users", headers=who["admin"]).get_json()["data"]]
    assert "mia" in names
    assert client.get("/api/v1/users", headers=mia).status_code == 403
    # Users issue and revoke their own tokens; not other people's.
    assert client.post("/api/v1/users/test-admin/tokens", headers=mia).status_code == 403
    second = client.post("/api/v1/users/mia/tokens", headers=mia).get_json()["token"]
    assert second != token
    assert client.post("/api/v1/users/mia/tokens/revoke", headers=mia).get_json()["revoked"] == 2
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert client.post("/api/v1/users/nobody/tokens", headers=who["admin"]).status_code == 404
