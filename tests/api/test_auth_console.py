"""Console sessions through the Flask test client: CSRF, login required, city scope, demo accounts."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from api.config import Settings
from api.domain.accounts import DEMO_ACCOUNTS, create_user, ensure_demo_accounts, get_user
from api.domain.bootstrap import demo_accounts
from tests.conftest import csrf_token

SUZHOU, MIAMI = 1886760, 4164138


def _login(app: Any, client: Any, name: str = "li", role: str = "official", cities: tuple[int, ...] = (SUZHOU,)) -> str:
    with Session(app.extensions["twinning"].engine) as s:
        create_user(s, name=name, role=role, cities=cities, password="pw-123")
        s.commit()
    token = csrf_token(client)
    r = client.post("/console/login", data={"username": name, "password": "pw-123", "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    return csrf_token(client, "/console/matches")  # a login starts a new session, with a new CSRF token


def test_console_needs_login_andcsrf_token(app: Any, client: Any) -> None:
    r = client.get("/console/matches")
    assert r.status_code == 302 and "/console/login" in r.headers["Location"]
    # No CSRF token: refused.
    r = client.post("/console/login", data={"username": "li", "password": "pw-123"})
    assert r.status_code == 400 and "form has expired" in r.get_data(as_text=True)
    token = _login(app, client)
    assert client.get("/console/").headers["Location"].endswith(f"/console/cities/{SUZHOU}/suggestions")
    assert client.post("/console/matches", data={"city_id": SUZHOU, "partner_id": MIAMI}).status_code == 400
    r = client.post(
        "/console/matches",
        data={"city_id": SUZHOU, "partner_id": MIAMI, "message": "hi", "sectors": ["education"], "csrf_token": token},
    )
    assert r.status_code == 302 and "/console/matches/" in r.headers["Location"]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Proposed" in page and "Withdraw proposal" in page


def test_console_city_scope(app: Any, client: Any) -> None:
    _login(app, client)
    assert client.get(f"/console/cities/{SUZHOU}/profile").status_code == 200
    r = client.get(f"/console/cities/{MIAMI}/profile")
    assert r.status_code == 403 and "Not allowed" in r.get_data(as_text=True)
    assert client.get("/console/jobs").status_code == 403
    assert client.get("/console/cities/42/profile").status_code == 404
    # Saving an invalid profile shows the errors, saves nothing.
    token = csrf_token(client, f"/console/cities/{SUZHOU}/profile")
    r = client.post(f"/console/cities/{SUZHOU}/profile", data={"offers-education": "7", "csrf_token": token})
    assert r.status_code == 422 and "offers-education" in r.get_data(as_text=True)


def test_logout_ends_the_session(app: Any, client: Any) -> None:
    token = _login(app, client)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/matches").status_code == 302


def test_demo_accounts_only_in_embedded_mode(app: Any) -> None:
    said: list[str] = []
    demo_accounts(app, echo=said.append)  # the test app uses PostgreSQL: not embedded
    with Session(app.extensions["twinning"].engine) as s:
        assert all(get_user(s, name) is None for name in DEMO_ACCOUNTS)
    assert said == []
    assert not Settings.from_env(DATABASE_URL="postgresql+psycopg://x@y/z", SECRET_KEY="s").embedded
    with Session(app.extensions["twinning"].engine) as s:  # what the embedded mode creates
        made = ensure_demo_accounts(s)
        assert {n for n, _r, _p in made} == set(DEMO_ACCOUNTS)
        suzhou = get_user(s, "suzhou")
        assert suzhou is not None and suzhou.cities == [SUZHOU] and suzhou.demo
