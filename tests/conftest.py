"""Shared fixtures: a real PostgreSQL database (seeded once per run) and apps built by the factory.

The database is ``twinning_test`` on 127.0.0.1:5432 (created if missing); set TEST_DATABASE_URL to use another.
Redis is the real one at 127.0.0.1:6379 (TEST_REDIS_URL), database 15 so nothing else is touched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from api import create_app
from api.data.db import make_engine, migrate
from api.data.seeding import load_all, load_demo_profiles

TEST_DB = os.environ.get("TWINNING_TEST_DB", "twinning_test")
# The suite runs on the cities15000 level (34,006 cities: a fast session seed); the cities1000 level and its
# alternate names are tested on small slices loaded through the same loader (tests/seed/test_towns.py).
TEST_GAZETTEER = "cities15000"
os.environ["TWINNING_GAZETTEER"] = TEST_GAZETTEER
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _admin_user() -> str:
    for user in ("postgres", "root"):
        try:
            with psycopg.connect(host="127.0.0.1", port=5432, user=user, dbname="test", connect_timeout=3):
                return user
        except psycopg.OperationalError:
            continue
    raise RuntimeError("PostgreSQL at 127.0.0.1:5432 accepts neither user postgres nor root (run scripts/test.sh)")


def _database_url() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    user = _admin_user()
    with psycopg.connect(host="127.0.0.1", port=5432, user=user, dbname="test", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DB,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    return f"postgresql+psycopg://{user}@127.0.0.1:5432/{TEST_DB}"


@pytest.fixture(scope="session")
def database_url() -> str:
    return _database_url()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """A freshly migrated and seeded PostgreSQL database for this test run."""
    eng = make_engine(database_url)
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(eng)
    load_all(eng, level=TEST_GAZETTEER)
    yield eng
    eng.dispose()


VOLATILE_TABLES = ("suggestion", "jobchunk", "job", "scoreset")


def reset_db(engine: Engine) -> None:
    """Back to the seeded state: no jobs or score sets, demo profiles only, seed partnerships and cities only."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(VOLATILE_TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(text("DELETE FROM conference WHERE NOT illustrative"))  # conference mode; the seeded demo stays
        # Accounts and matches (TRUNCATE is how tests reset the append-only audit table: its trigger refuses DELETE).
        conn.execute(text('TRUNCATE matchevent, match, apitoken, loginattempt, "user" RESTART IDENTITY CASCADE'))
        conn.execute(text("DELETE FROM profile"))
        conn.execute(text("DELETE FROM partnership WHERE source <> 'wikidata'"))
        conn.execute(text("DELETE FROM city WHERE is_custom"))
        load_demo_profiles(conn)


@pytest.fixture
def db_engine(engine: Engine) -> Iterator[Engine]:
    reset_db(engine)
    yield engine


_APPS: list[Any] = []


@pytest.fixture(autouse=True)
def _dispose_app_engines() -> Iterator[None]:
    """Close the connection pools of the apps a test made (open connections would warn, and warnings fail)."""
    yield
    while _APPS:
        _APPS.pop().extensions["twinning"].engine.dispose()


def make_test_app(database_url: str, tmp_path: Any, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "TESTING": True,
        "JOBS_MODE": "sync",
        "REDIS_URL": None,
        "MODEL_PATH": str(tmp_path / "no-model.joblib"),
        "MIGRATE_ON_START": False,
        "SECRET_KEY": "test-secret",
    }
    settings.update(overrides)
    app = create_app(settings)
    _APPS.append(app)
    return app


@pytest.fixture
def app(db_engine: Engine, database_url: str, tmp_path: Any) -> Any:
    return make_test_app(database_url, tmp_path)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def admin_headers(app: Any) -> dict[str, str]:
    """Headers for an API call with full rights (write endpoints use it).

    An admin's bearer token, so the core API tests exercise the same endpoints with authentication on.
    """
    return bearer(app, "admin")


@pytest.fixture
def admin_headers_for() -> Any:
    """Admin headers for another app instance (same database)."""

    def _for(app: Any) -> dict[str, str]:
        return bearer(app, "admin")

    return _for


def bearer(
    app: Any,
    role: str,
    *,
    name: str | None = None,
    cities: tuple[int, ...] = (),
    countries: tuple[str, ...] = (),
    password: str | None = None,
) -> dict[str, str]:
    """``Authorization`` headers for a user with ``role`` (created on first use in the app's database)."""
    from sqlmodel import Session

    from api.domain.accounts import create_user, get_user, issue_token

    name = name or f"test-{role}" + "".join(f"-{c}" for c in (*cities, *countries))
    with Session(app.extensions["twinning"].engine) as session:
        user = get_user(session, name) or create_user(
            session, name=name, role=role, cities=cities, countries=countries, password=password
        )
        token = issue_token(session, user)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client: Any, url: str = "/console/login") -> str:
    """The console form's CSRF token on the page at ``url``."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True))
    assert m
    return m.group(1)


def console_login(app: Any, client: Any, name: str, cities: tuple[int, ...], role: str = "official") -> None:
    """Log ``client`` in to the console as a user ``name`` (created with ``role`` and ``cities``, password pw-123)."""
    bearer(app, role, name=name, cities=cities, password="pw-123")
    r = client.post("/console/login", data={"username": name, "password": "pw-123", "csrf_token": csrf_token(client)})
    assert r.status_code == 302, r.get_data(as_text=True)


def set_cli_env(monkeypatch: Any, database_url: str, tmp_path: Any, **extra: str) -> None:
    """Environment for a ``twinning`` command run with CliRunner against the test database (no model, no Redis)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "TWINNING_MODEL_PATH": str(tmp_path / "no-model.joblib"),
        "TWINNING_MIGRATE_ON_START": "0",
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def clean_redis() -> Iterator[None]:
    """The test Redis database, emptied before and after (queue and fault tests)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield
    client.flushdb()
    client.close()
