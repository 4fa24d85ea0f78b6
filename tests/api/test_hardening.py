"""Security headers on every response, the session cookie's flags, the trusted-proxy setting and the login limits,
and a coordinator's country scope on city edits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bearer, csrf_token, make_test_app

SUZHOU, MIAMI, PARIS = 1886760, 4164138, 2988507


def test_security_headers_on_every_response(client: Any) -> None:
    for path in ("/", "/healthz", "/api/v1/sectors", "/api/v1/cities/42", "/console/login", "/api/v1/openapi.json"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in r.headers
    assert "'unsafe-inline'" in client.get("/api/v1/swagger").headers["Content-Security-Policy"]
    r = client.get("/api/v1/sectors", base_url="https://twinning.example")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_session_cookie_is_lax_and_secure_when_configured(database_url: str, tmp_path: Any, db_engine: Any) -> None:
    for secure in (False, True):
        app = make_test_app(database_url, tmp_path, COOKIE_SECURE=secure)
        bearer(app, "admin", name="cookie", password="cookie-password")
        client = app.test_client()
        r = _login(client, "cookie", "cookie-password")
        assert r.status_code == 302
        cookie = r.headers["Set-Cookie"]
        assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
        assert ("Secure" in cookie) is secure


def _login(client: Any, name: str, password: str, addr: str = "127.0.0.1", **kw: Any) -> Any:
    data = {"username": name, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/console/login", data=data, environ_base={"REMOTE_ADDR": addr}, **kw)


def _fail(client: Any, name: str, addr: str, **kw: Any) -> int:
    return _login(client, name, "wrong", addr, **kw).status_code


def test_failures_on_other_names_do_not_lock_a_user_out(database_url: str, tmp_path: Any, db_engine: Any) -> None:
    app = make_test_app(database_url, tmp_path, LOGIN_MAX_FAILURES=2)
    bearer(app, "official", name="li", cities=(SUZHOU,), password="li-password")
    client = app.test_client()
    for i in range(10):  # 10 names × 2 failures from one address: past the address cap (4 × 2)
        assert _fail(client, f"nobody{i}", "10.0.0.1") in (401, 429)
    assert _fail(client, "nobody0", "10.0.0.1") == 429  # a name that failed from this address is refused
    r = _login(client, "li", "li-password", "10.0.0.1")
    assert r.status_code == 302  # li never failed here: not locked out by the others' failures
    # A per-user limit: li's name failing from several addresses is capped, whatever the address.
    assert [_fail(client, "li", f"10.0.1.{i}") for i in range(8)] == [401] * 8  # 4 × 2 failures
    assert _fail(client, "li", "10.0.2.1") == 429


def test_trusted_proxies_give_the_client_address(database_url: str, tmp_path: Any, db_engine: Any) -> None:
    for proxies, second in ((0, 429), (1, 401)):
        app = make_test_app(database_url, tmp_path, LOGIN_MAX_FAILURES=1, TRUSTED_PROXIES=proxies)
        client = app.test_client()
        name = f"p{proxies}"
        assert _fail(client, name, "10.9.9.9", headers={"X-Forwarded-For": "192.0.2.1"}) == 401
        # Untrusted, the forwarded address is ignored (both came from the proxy); trusted, they are two clients.
        assert _fail(client, name, "10.9.9.9", headers={"X-Forwarded-For": "192.0.2.2"}) == second
    app = make_test_app(database_url, tmp_path, TRUSTED_PROXIES=1)
    r = app.test_client().get("/api/v1/sectors", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in r.headers


@pytest.fixture
def china_coordinator(app: Any) -> dict[str, str]:
    return bearer(app, "coordinator", countries=("CN",))


def test_a_coordinator_edits_cities_in_scope_only(client: Any, china_coordinator: dict[str, str]) -> None:
    h = china_coordinator
    assert client.patch(f"/api/v1/cities/{PARIS}", json={"population": 5}, headers=h).status_code == 403
    assert client.patch(f"/api/v1/cities/{SUZHOU}", json={"admin1": "04"}, headers=h).status_code == 200
    city = {"name": "Newtown", "country": "FR", "latitude": 1.0, "longitude": 2.0}
    assert client.post("/api/v1/cities", json=city, headers=h).status_code == 403
    assert client.post("/api/v1/cities", json={**city, "country": "CN"}, headers=h).status_code == 201
