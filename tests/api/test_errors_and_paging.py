"""One condition, one status (a missing city in the path or query is 404, an unknown id in a body is 422 naming
the field), domain errors answered as JSON, and the shared paging of list endpoints (GET /users included)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from api.config import MAX_PAGE_SIZE, Settings
from api.data import accounts as store
from api.data.models import ApiToken
from api.domain.accounts import create_user, issue_token, revoke_tokens
from api.errors import BY_STATUS, Invalid, NotFound, TwinningError
from tests.conftest import bearer

SUZHOU, MIAMI = 1886760, 4164138
UNKNOWN = 42


def error(r: Any) -> dict[str, Any]:
    assert r.is_json, r.get_data(as_text=True)[:200]
    return r.get_json()["error"]


def fields(r: Any) -> list[str]:
    return [f["field"] for f in error(r)["fields"]]


def test_error_classes_carry_their_status() -> None:
    assert {s: c.__name__ for s, c in BY_STATUS.items()} == {
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        422: "Invalid",
        429: "TooMany",
        503: "Unavailable",
    }
    e = Invalid("bad", "x", hint=1)
    assert isinstance(e, TwinningError) and (e.status, e.message, e.field, e.extra) == (422, "bad", "x", {"hint": 1})


def test_a_missing_city_in_the_path_or_query_is_404(client: Any, admin_headers: dict[str, str]) -> None:
    for r in (
        client.get(f"/api/v1/cities/{UNKNOWN}"),
        client.patch(f"/api/v1/cities/{UNKNOWN}", json={"population": 5}, headers=admin_headers),
        client.get(f"/api/v1/cities/{UNKNOWN}/profile"),
        client.get(f"/api/v1/partnerships?city={UNKNOWN}"),
    ):
        assert r.status_code == 404 and error(r)["message"] == f"city {UNKNOWN} not found", r.request.path
    assert fields(client.get(f"/api/v1/partnerships?city={UNKNOWN}")) == ["city"]


def test_an_unknown_city_in_a_body_is_422_naming_the_field(client: Any, admin_headers: dict[str, str]) -> None:
    for body, field in (
        ({"city_a_id": UNKNOWN, "city_b_id": SUZHOU}, "city_a_id"),
        ({"city_a_id": SUZHOU, "city_b_id": UNKNOWN}, "city_b_id"),
    ):
        r = client.post("/api/v1/partnerships", json=body, headers=admin_headers)
        assert r.status_code == 422 and fields(r) == [field], r.get_json()
    for body, field in (
        ({"city_id": UNKNOWN, "partner_id": SUZHOU}, "city_id"),
        ({"city_id": SUZHOU, "partner_id": UNKNOWN}, "partner_id"),
    ):
        r = client.post("/api/v1/matches", json=body, headers=admin_headers)
        assert r.status_code == 422 and fields(r) == [field], r.get_json()
    r = client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU, UNKNOWN]}, headers=admin_headers)
    assert r.status_code == 422 and fields(r) == ["city_ids"]
    city = {"name": "Nowhere", "country": "QQ", "latitude": 1, "longitude": 2}
    r = client.post("/api/v1/cities", json=city, headers=admin_headers)
    assert r.status_code == 422 and fields(r) == ["country"]


def test_account_errors_keep_their_statuses(client: Any, admin_headers: dict[str, str]) -> None:
    body = {"name": "dup", "role": "official", "cities": [UNKNOWN]}
    r = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert r.status_code == 422 and fields(r) == ["cities"]
    body["cities"] = [MIAMI]
    assert client.post("/api/v1/users", json=body, headers=admin_headers).status_code == 201
    r = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert r.status_code == 409 and fields(r) == ["name"]
    r = client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and fields(r) == ["Authorization"] and r.headers["WWW-Authenticate"]


def test_domain_errors_raised_by_the_data_layer(app: Any) -> None:
    from api.data import crud

    with Session(app.extensions["twinning"].engine) as s:
        with pytest.raises(NotFound):
            crud.get_city(s, city_id=UNKNOWN)
        with pytest.raises(Invalid) as e:
            crud.referenced_city(s, city_id=UNKNOWN, field="partner")
        assert e.value.field == "partner"
        with pytest.raises(NotFound):
            crud.get_job(s, job_id="nope")
        with pytest.raises(Invalid):
            revoke_tokens(s)


def test_one_page_size_cap() -> None:
    assert Settings.MAX_PAGE_SIZE == MAX_PAGE_SIZE
    assert Settings.from_env().MAX_PAGE_SIZE == MAX_PAGE_SIZE
    from api.config import ConfigError

    with pytest.raises(ConfigError):
        Settings.from_env(MAX_PAGE_SIZE=10)  # one constant: the API schemas validate against it


@pytest.mark.parametrize(
    "url", ["/api/v1/cities", "/api/v1/partnerships", "/api/v1/matches", "/api/v1/users"], ids=lambda u: u[8:]
)
def test_every_list_refuses_pages_above_the_cap(client: Any, admin_headers: dict[str, str], url: str) -> None:
    assert client.get(f"{url}?per_page={MAX_PAGE_SIZE}", headers=admin_headers).status_code == 200
    r = client.get(f"{url}?per_page={MAX_PAGE_SIZE + 1}", headers=admin_headers)
    assert r.status_code == 422 and fields(r) == ["per_page"]
    assert client.get(f"{url}?page=0", headers=admin_headers).status_code == 422


def test_users_are_paged_with_live_token_counts(app: Any, client: Any) -> None:
    admin = bearer(app, "admin")  # user 1, one live token
    with Session(app.extensions["twinning"].engine) as s:
        users = [create_user(s, name=f"u{i}", role="coordinator") for i in range(4)]
        for _ in range(3):
            issue_token(s, users[0])
        issue_token(s, users[1])
        revoke_tokens(s, user=users[1])
        s.commit()
    r = client.get("/api/v1/users?per_page=2", headers=admin)
    assert r.status_code == 200
    body = r.get_json()
    assert (body["count"], body["page"], body["per_page"], len(body["data"])) == (5, 1, 2, 2)
    assert [(u["name"], u["tokens"]) for u in body["data"]] == [("test-admin", 1), ("u0", 3)]
    page3 = client.get("/api/v1/users?page=3&per_page=2", headers=admin).get_json()
    assert [(u["name"], u["tokens"]) for u in page3["data"]] == [("u3", 0)]
    default = client.get("/api/v1/users", headers=admin).get_json()
    assert default["per_page"] == 50 and default["count"] == 5
    assert {u["name"]: u["tokens"] for u in default["data"]}["u1"] == 0


def test_list_users_counts_tokens_in_one_query(app: Any) -> None:
    from sqlalchemy import event

    engine = app.extensions["twinning"].engine
    with Session(engine) as s:
        for i in range(5):
            issue_token(s, create_user(s, name=f"n{i}", role="admin"))
        s.commit()
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            rows, total = store.list_users(s, page=1, per_page=10)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert total == 5 and [n for _u, n in rows] == [1] * 5
    assert len(statements) == 2  # the page (with the grouped token counts) and the total
    assert sum(ApiToken.__tablename__ in q for q in statements) == 1  # type: ignore[operator]
