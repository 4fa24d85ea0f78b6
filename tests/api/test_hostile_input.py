"""Hostile input never reaches PostgreSQL unchecked: every case of the faults issue answers 4xx JSON, never 500.

NUL characters in any string, integers beyond what the column holds, deep JSON, oversized bodies, URLs and headers,
non-strict types; an anonymous write is refused (401) before its body is read or validated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.config import MAX_HEADER_BYTES, MAX_JSON_DEPTH, MAX_URL_BYTES
from api.schemas import MAX_ID_LIST
from tests.conftest import bearer, make_test_app

SUZHOU, MIAMI = 1886760, 4164138
BIG = 9223372036854775808  # 2**63: beyond BIGINT


def assert_4xx_json(r: Any, *statuses: int) -> dict[str, Any]:
    assert r.status_code in (statuses or range(400, 500)), (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json, r.get_data(as_text=True)[:300]
    body = r.get_json()["error"]
    assert body["status"] == r.status_code
    return body


@pytest.fixture
def official(app: Any) -> dict[str, str]:
    return bearer(app, "official", cities=(SUZHOU,))


def test_nul_bytes_in_any_string_are_refused(client: Any, admin_headers: dict[str, str]) -> None:
    h = admin_headers
    cases = [
        client.get("/api/v1/cities?q=a%00b"),
        client.get("/api/v1/cities/1886760/suggestions?country=C%00N"),
        client.get("/api/v1/users/a%00b/tokens"),
        client.get("/api/v1/jobs/ab%00c"),
        client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"description": "a\x00b"}, headers=h),
        client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"contact_name": "\x00"}, headers=h),
        client.patch(f"/api/v1/cities/{SUZHOU}", json={"name": "Su\x00zhou"}, headers=h),
        client.post(
            "/api/v1/cities",
            json={"name": "X\x00", "country": "CN", "latitude": 1, "longitude": 2},
            headers=h,
        ),
        client.post(
            "/api/v1/partnerships", json={"city_a_id": SUZHOU, "city_b_id": MIAMI, "source": "a\x00"}, headers=h
        ),
        client.post("/api/v1/users", json={"name": "x", "role": "admin", "display_name": "\x00"}, headers=h),
        client.post("/api/v1/users", json={"name": "x", "role": "admin", "password": "12345678\x00"}, headers=h),
        client.post("/api/v1/matches", json={"city_id": SUZHOU, "partner_id": MIAMI, "message": "\x00"}, headers=h),
        client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"offers": {"\x00": 1}}, headers=h),
    ]
    for r in cases:
        assert_4xx_json(r, 404, 422)
    assert assert_4xx_json(cases[4], 422)["fields"] == [
        {"field": "description", "problem": "text must not contain NUL characters"}
    ]


def test_nul_in_the_console_login_is_refused(client: Any) -> None:
    r = client.post("/console/login", data={"username": "a\x00b", "password": "x"})
    assert r.status_code == 422
    assert client.post("/console/login", data={"username": "ab", "password": "x\x00"}).status_code == 422


def test_integers_beyond_the_column_are_refused(client: Any, admin_headers: dict[str, str]) -> None:
    h = admin_headers
    cases = [
        client.get(f"/api/v1/cities/{BIG}"),
        client.get(f"/api/v1/cities/{BIG}/profile"),
        client.get(f"/api/v1/cities/{BIG}/suggestions"),
        client.get(f"/api/v1/pairs/{SUZHOU}/{BIG}"),
        client.post("/api/v1/matches/2147483648/decisions", json={"action": "review"}, headers=h),
        client.get("/api/v1/matches/2147483648", headers=h),
        client.get("/api/v1/cities?geonameid=99999999999999999999"),
        client.get(f"/api/v1/partnerships?city={BIG}"),
        client.get(f"/api/v1/matches?city={BIG}", headers=h),
        client.get("/api/v1/cities/1886760/suggestions?min_population=99999999999"),
        client.post("/api/v1/jobs/rescore", data=f'{{"city_ids":[{BIG}]}}', headers=h, content_type="application/json"),
        client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"pref_min_population": 1e30}, headers=h),
        client.put(f"/api/v1/cities/{SUZHOU}/profile", json={"pref_max_population": 2**31}, headers=h),
        client.post("/api/v1/matches", json={"city_id": BIG, "partner_id": MIAMI}, headers=h),
        client.post("/api/v1/partnerships", json={"city_a_id": BIG, "city_b_id": MIAMI}, headers=h),
        client.post("/api/v1/matches/1/decisions", json={"action": "review", "expected_version": 2**31}, headers=h),
        client.post("/api/v1/users", json={"name": "x", "role": "official", "cities": [BIG]}, headers=h),
        client.get("/api/v1/cities?page=99999999999999999999"),
    ]
    for r in cases:
        assert_4xx_json(r, 404, 422)


def test_types_are_strict_in_bodies(client: Any, admin_headers: dict[str, str]) -> None:
    r = client.patch(f"/api/v1/cities/{SUZHOU}", json={"population": False}, headers=admin_headers)
    assert assert_4xx_json(r, 422)["fields"][0]["field"] == "population"
    r = client.patch(f"/api/v1/cities/{SUZHOU}", json={"population": "5"}, headers=admin_headers)
    assert r.status_code == 422
    assert client.patch(f"/api/v1/cities/{SUZHOU}", json={"latitude": 31}, headers=admin_headers).status_code == 200


def test_deep_json_is_refused(client: Any, admin_headers: dict[str, str]) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 1_000, 100_000):
        data = "[" * depth + "]" * depth
        r = client.put(
            f"/api/v1/cities/{SUZHOU}/profile", data=data, headers=admin_headers, content_type="application/json"
        )
        assert "nested" in assert_4xx_json(r, 422)["message"]
    nested: Any = {"a": 1}
    for _ in range(MAX_JSON_DEPTH):
        nested = {"x": nested}
    r = client.post("/api/v1/jobs/rescore", json=nested, headers=admin_headers)
    assert_4xx_json(r, 422)


def test_body_size_is_capped_and_anonymous_writes_are_refused_first(
    database_url: str, tmp_path: Any, db_engine: Any
) -> None:
    app = make_test_app(database_url, tmp_path, MAX_CONTENT_LENGTH=10_000)
    client = app.test_client()
    big = json.dumps({"description": "x" * 20_000})
    r = client.put(f"/api/v1/cities/{SUZHOU}/profile", data=big, content_type="application/json")
    assert assert_4xx_json(r, 401)["fields"][0]["field"] == "Authorization"  # not 422, not 413: nothing was read
    r = client.post("/api/v1/cities", json={"nonsense": True})
    assert_4xx_json(r, 401)
    h = bearer(app, "admin")
    r = client.put(f"/api/v1/cities/{SUZHOU}/profile", data=big, headers=h, content_type="application/json")
    assert_4xx_json(r, 413)
    r = client.post("/console/login", data={"username": "x" * 20_000, "password": "y"})
    assert_4xx_json(r, 413)


def test_long_urls_and_headers_get_json(client: Any) -> None:
    r = client.get("/api/v1/cities?q=" + "a" * MAX_URL_BYTES)
    assert_4xx_json(r, 414)
    r = client.get("/console/login?next=" + "a" * MAX_URL_BYTES)
    assert_4xx_json(r, 414)
    r = client.get("/api/v1/cities", headers={"X-Filler": "a" * MAX_HEADER_BYTES})
    assert_4xx_json(r, 431)


def test_large_id_lists_are_capped(client: Any, admin_headers: dict[str, str]) -> None:
    r = client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU] * (MAX_ID_LIST + 1)}, headers=admin_headers)
    assert assert_4xx_json(r, 422)["fields"][0]["field"] == "city_ids"


def test_method_not_allowed_says_what_is(client: Any) -> None:
    r = client.delete("/api/v1/sectors")
    assert_4xx_json(r, 405)
    assert "GET" in r.headers["Allow"]
