"""A real PostgreSQL server stopped and started under the app: a throwaway cluster in a temporary folder (the server
binaries of /usr/lib/postgresql/*/bin, run as the ``postgres`` OS user when the tests run as root, trust auth on
127.0.0.1, a free port). While it is down every request answers 503 JSON with Retry-After within 2 s; once it is
back the same app serves again by itself, without a restart."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import Session

from api.data.db import make_engine, migrate
from api.data.models import City, Country
from api.data.seeding import index_names_of_existing_cities
from tests.conftest import bearer, make_test_app

BIN_DIRS = sorted(
    (
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.path.exists(f"{d}/initdb") and os.path.exists(f"{d}/pg_ctl")
    ),
    key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
)
CITY, OTHER = 1886760, 4164138


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the postgres OS user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="twinning-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            _as_postgres([f"{self.bindir}/{args[0]}", *args[1:]]),
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not BIN_DIRS:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin")
    c = Cluster(BIN_DIRS[-1])
    try:
        c.init()
        c.start()
        yield c
    finally:
        if c.running():
            with contextlib.suppress(subprocess.SubprocessError, AssertionError):
                c.stop("immediate")
        shutil.rmtree(c.root, ignore_errors=True)


def _prepare(c: Cluster) -> str:
    """A migrated database with two cities (enough for the endpoints below; seeding all 34,006 takes longer)."""
    with psycopg.connect(host="127.0.0.1", port=c.port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE twinning")
    url = c.url("twinning")
    engine = make_engine(url)
    try:
        migrate(engine)
        with Session(engine) as session:
            session.add_all([Country(code="CN", name="China", continent="AS"), Country(code="US", name="USA")])
            session.flush()
            session.add_all(
                [
                    City(
                        id=CITY,
                        geonameid=CITY,
                        name="Suzhou",
                        search_name="suzhou",
                        country="CN",
                        latitude=31.3,
                        longitude=120.6,
                        population=1_000_000,
                    ),
                    City(
                        id=OTHER,
                        geonameid=OTHER,
                        name="Miami",
                        search_name="miami",
                        country="US",
                        latitude=25.8,
                        longitude=-80.2,
                        population=400_000,
                    ),
                ]
            )
            session.commit()
        with engine.begin() as conn:
            index_names_of_existing_cities(conn)  # what search reads
    finally:
        engine.dispose()
    return url


def assert_503(r: Any) -> None:
    assert r.status_code == 503, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json and r.get_json()["error"]["service"] == "database"
    assert int(r.headers["Retry-After"]) > 0


def test_a_stopped_postgres_answers_503_quickly_and_a_restarted_one_is_used_again(
    cluster: Cluster, tmp_path: Path
) -> None:
    app = make_test_app(_prepare(cluster), tmp_path)
    client = app.test_client()
    h = bearer(app, "admin")
    requests = [
        lambda: client.get("/api/v1/cities?q=suzhou"),
        lambda: client.get(f"/api/v1/cities/{CITY}"),
        lambda: client.get("/api/v1/partnerships"),
        lambda: client.get("/api/v1/me", headers=h),
        lambda: client.patch(f"/api/v1/cities/{CITY}", json={"population": 5}, headers=h),
        lambda: client.put(f"/api/v1/cities/{OTHER}/profile", json={"description": "x"}, headers=h),
    ]
    try:
        assert client.get("/api/v1/cities?q=suzhou").get_json()["count"] == 1
        assert client.get("/api/v1/me", headers=h).status_code == 200  # the pool holds live connections now

        cluster.stop("fast")
        for request in requests:
            t0 = time.monotonic()
            r = request()
            assert time.monotonic() - t0 < 2.0
            assert_503(r)
        assert client.get("/healthz").status_code == 503

        cluster.start()
        t0 = time.monotonic()
        status = 0
        while time.monotonic() - t0 < 10 and status != 200:  # no restart of the app: its pool reconnects
            status = client.get("/api/v1/cities?q=suzhou").status_code
            if status != 200:
                time.sleep(0.1)
        assert status == 200 and time.monotonic() - t0 < 5
        for request in requests:
            assert request().status_code == 200
        assert client.get(f"/api/v1/cities/{CITY}").get_json()["population"] == 5  # written after the restart
        assert client.get("/healthz").status_code == 200
    finally:
        app.extensions["twinning"].engine.dispose()  # before the cluster goes (the fixture stops it)
