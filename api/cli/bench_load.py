"""``twinning bench load``: a bounded load test of the whole service, with a fault injected mid-run.

It starts its own servers on loopback — the app under gunicorn, against a throwaway PostgreSQL database (created,
migrated and seeded here, dropped afterwards) and a throwaway Redis database, and one real Celery worker — sends
mixed requests from concurrent clients, cuts PostgreSQL or Redis for a few seconds (a loopback proxy the app
connects through), and then checks the books: every write answered 2xx is in the database, no refused write left
a row, and every re-scoring job reached ``succeeded`` or ``failed``.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from sqlalchemy import Engine, text

from api.cli.tcp_proxy import Proxy

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432
KINDS = ("suggestions", "search", "profile", "match")
MIX = (0.35, 0.35, 0.15, 0.15)  # shares of the request kinds above
INVALID_SHARE = 0.1  # profile edits sent invalid on purpose (422; must leave no row)
REQUEST_TIMEOUT = (3.0, 30.0)  # connect, read (seconds)
DRAIN_LIMIT_S = 120.0  # at most this long waiting for the jobs after the load


class BenchError(RuntimeError):
    """The benchmark could not set itself up (a server did not start, PostgreSQL refused the admin user…)."""


def admin_user() -> str:
    """The PostgreSQL role that may create databases on 127.0.0.1:5432 (trust auth): postgres or root."""
    for user in ("postgres", "root"):
        try:
            with psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=3):
                return user
        except psycopg.OperationalError:
            continue
    raise BenchError(f"PostgreSQL at {PG_HOST}:{PG_PORT} accepts neither user postgres nor root")


def _admin_exec(user: str, sql: str) -> None:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.encode())  # fixed statements with a checked database name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------------- servers
def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - closed by _stop
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = out  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the process group (gunicorn's and celery's children too), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group
    proc.log.close()  # type: ignore[attr-defined]


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer 200 within {timeout:.0f} s:\n{_tail(log)}")


def _wait_worker(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the Celery worker exited ({proc.returncode}):\n{_tail(log)}")
        if " ready." in _tail(log, 20000):
            return
        time.sleep(0.2)
    raise BenchError(f"the Celery worker was not ready within {timeout:.0f} s:\n{_tail(log)}")


# ---------------------------------------------------------------------------------------------------- fixtures
@dataclass
class World:
    """What the clients need: tokens, the cities each client edits, the pairs it proposes, read targets."""

    admin: str
    coordinator: str
    officials: list[tuple[int, str]]  # (city, token), one per client
    pairs: list[list[tuple[int, int]]]  # per client
    read_cities: list[int]
    search_terms: list[str]


def prepare(engine: Engine, clients: int, matches_per_client: int, seed: int) -> World:
    """Users and tokens, written with the app's own functions; cities picked from the seeded gazetteer."""
    from sqlmodel import Session

    from api.domain.accounts import create_user, issue_token

    with engine.connect() as conn:
        big = [r[0] for r in conn.execute(text("SELECT id FROM city ORDER BY population DESC, id LIMIT 400"))]
        lonely = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT id FROM city WHERE id NOT IN (SELECT city_a_id FROM partnership UNION "
                    "SELECT city_b_id FROM partnership) ORDER BY id LIMIT :n"
                ),
                {"n": 2 * clients * matches_per_client},
            )
        ]
        names = [r[0] for r in conn.execute(text("SELECT search_name FROM city ORDER BY population DESC LIMIT 300"))]
    if len(big) < clients or len(lonely) < 2 * clients * matches_per_client:
        raise BenchError("the seeded database has too few cities for this concurrency")
    rng = random.Random(seed)
    edited = big[:clients]
    with Session(engine) as session:
        admin = issue_token(session, create_user(session, name="bench-admin", role="admin"))
        coordinator = issue_token(session, create_user(session, name="bench-coordinator", role="coordinator"))
        officials = [
            (
                city,
                issue_token(session, create_user(session, name=f"bench-official-{i}", role="official", cities=[city])),
            )
            for i, city in enumerate(edited)
        ]
        session.commit()
    pairs = [
        [
            (lonely[2 * (c * matches_per_client + k)], lonely[2 * (c * matches_per_client + k) + 1])
            for k in range(matches_per_client)
        ]
        for c in range(clients)
    ]
    terms = sorted({n[: rng.randint(3, 5)] for n in names if len(n) >= 3})
    return World(admin, coordinator, officials, pairs, big[clients:], terms)


# ---------------------------------------------------------------------------------------------------- the load
@dataclass
class Record:
    kind: str
    status: int  # 0: no answer (connection refused or reset, timeout)
    start: float
    end: float


@dataclass
class Ledger:
    """What each client was told: the basis of the accounting."""

    profile_ok: dict[int, dict[str, Any]] = field(default_factory=dict)  # city → last body answered 2xx
    profile_refused_after: dict[int, list[str]] = field(default_factory=dict)  # descriptions refused since
    invalid_descriptions: list[str] = field(default_factory=list)
    job_ids: set[str] = field(default_factory=set)
    matches: dict[int, str] = field(default_factory=dict)  # id → status of the last 2xx answer
    # id → statuses a decision asked for after that answer without a 2xx (503, no answer): it may have committed
    matches_unanswered: dict[int, set[str]] = field(default_factory=dict)
    match_conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client(threading.Thread):
    def __init__(self, n: int, base: str, world: World, ledger: Ledger, plan: list[str], out: list[Record]) -> None:
        super().__init__(daemon=True, name=f"bench-client-{n}")
        self.n, self.base, self.world, self.ledger, self.plan, self.out = n, base, world, ledger, plan, out
        self.rng = random.Random(n)
        self.city, token = world.officials[n]
        self.official = {"Authorization": f"Bearer {token}"}
        self.admin = {"Authorization": f"Bearer {world.admin}"}
        self.coordinator = {"Authorization": f"Bearer {world.coordinator}"}
        self.pairs = list(world.pairs[n])
        self.match: tuple[int, str] | None = None  # the open match this client is moving on
        self.seq = 0
        self.session = requests.Session()
        self.stop_at = float("inf")

    def run(self) -> None:
        try:
            for kind in self.plan:
                if time.monotonic() > self.stop_at:
                    return
                self.one(kind)
        finally:
            self.session.close()

    def call(self, kind: str, method: str, path: str, **kw: Any) -> requests.Response | None:
        t0 = time.monotonic()
        try:
            r: requests.Response | None = self.session.request(method, self.base + path, timeout=REQUEST_TIMEOUT, **kw)
        except requests.RequestException:
            r = None
        self.out.append(Record(kind, r.status_code if r is not None else 0, t0, time.monotonic()))
        return r

    def one(self, kind: str) -> None:
        rng = self.rng
        if kind == "suggestions":
            self.call(kind, "GET", f"/api/v1/cities/{rng.choice(self.world.read_cities)}/suggestions?k=10")
        elif kind == "search":
            self.call(kind, "GET", f"/api/v1/cities?q={rng.choice(self.world.search_terms)}&per_page=20")
        elif kind == "profile":
            self.profile()
        else:
            self.decide()

    def profile(self) -> None:
        self.seq += 1
        invalid = self.rng.random() < INVALID_SHARE
        desc = f"{'INVALID' if invalid else 'bench'} client {self.n} edit {self.seq}"
        body = {
            "offers": {"education": 1.5 if invalid else round(self.rng.random(), 3)},
            "seeks": {"culture_arts": round(self.rng.random(), 3)},
            "description": desc,
        }
        r = self.call("profile", "PUT", f"/api/v1/cities/{self.city}/profile", json=body, headers=self.official)
        with self.ledger.lock:
            if invalid:
                self.ledger.invalid_descriptions.append(desc)
            elif r is not None and 200 <= r.status_code < 300:
                self.ledger.profile_ok[self.city] = body
                self.ledger.profile_refused_after[self.city] = []
                job = r.json().get("rescore_job")
                if job:
                    self.ledger.job_ids.add(job)
            else:
                self.ledger.profile_refused_after.setdefault(self.city, []).append(desc)

    def decide(self) -> None:
        """One step of a match: propose (admin) → review → accept or reject (coordinator)."""
        if self.match is None:
            if not self.pairs:
                return self.one("search")
            city, partner = self.pairs[0]
            body = {"city_id": city, "partner_id": partner, "message": "bench", "sectors": ["education"]}
            r = self.call("match", "POST", "/api/v1/matches", json=body, headers=self.admin)
            if r is not None and r.status_code == 201:
                self.pairs.pop(0)
                m = r.json()
                self.match = (m["id"], m["status"])
                with self.ledger.lock:
                    self.ledger.matches[m["id"]] = m["status"]
            elif r is not None and r.status_code == 409:  # an earlier refused proposal was written after all
                self.pairs.pop(0)
                with self.ledger.lock:
                    self.ledger.match_conflicts += 1
            return None
        mid, status = self.match
        if status == "proposed":
            body = {"action": "review"}
        elif self.rng.random() < 0.5:
            body = {"action": "accept", "note": "fits"}
        else:
            body = {"action": "reject", "note": "not now"}
        r = self.call("match", "POST", f"/api/v1/matches/{mid}/decisions", json=body, headers=self.coordinator)
        if r is not None and r.status_code == 200:
            new = r.json()["status"]
            with self.ledger.lock:
                self.ledger.matches[mid] = new
                self.ledger.matches_unanswered.pop(mid, None)
            self.match = None if new in {"accepted", "rejected"} else (mid, new)
        elif r is None or r.status_code >= 500:
            target = {"review": "under_review", "accept": "accepted", "reject": "rejected"}[str(body["action"])]
            with self.ledger.lock:
                self.ledger.matches_unanswered.setdefault(mid, set()).add(target)
        return None


# ---------------------------------------------------------------------------------------------------- accounting
def account(engine: Engine, ledger: Ledger) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        rows = {
            r.city_id: r
            for r in conn.execute(
                text("SELECT city_id, offers, seeks, description FROM profile WHERE city_id = ANY(:c)"),
                {"c": list(set(ledger.profile_ok) | set(ledger.profile_refused_after))},
            )
        }
        lost = written_refused = 0
        for city, body in ledger.profile_ok.items():
            row = rows.get(city)
            if row is not None and row.description in ledger.profile_refused_after.get(city, []):
                written_refused += 1
            elif row is None or (row.description, row.offers, row.seeks) != (
                body["description"],
                body["offers"],
                body["seeks"],
            ):
                lost += 1
        for city, refused in ledger.profile_refused_after.items():
            row = rows.get(city)
            if city not in ledger.profile_ok and row is not None and row.description in refused:
                written_refused += 1
        invalid_rows = conn.execute(
            text("SELECT count(*) FROM profile WHERE description LIKE 'INVALID %'")
        ).scalar_one()
        out["profiles"] = {
            "edited_cities": len(ledger.profile_ok),
            "last_2xx_value_missing": lost,
            "whole_writes_answered_503": written_refused,  # see the matches' below
            "invalid_write_stored": invalid_rows,
        }
        matches = {
            r.id: r
            for r in conn.execute(
                text(
                    "SELECT m.id, m.status, m.version, count(e.id) AS events, "
                    "(array_agg(e.to_status ORDER BY e.id DESC))[1] AS last_to "
                    "FROM match m LEFT JOIN matchevent e ON e.match_id = m.id GROUP BY m.id"
                )
            )
        }
        behind = sum(1 for mid in ledger.matches if mid not in matches)
        # A status other than the last 2xx answer is wrong unless a later decision on the match got no 2xx answer
        # (503 or none) and asked for exactly that status: then the commit went through before the answer was lost.
        wrong = committed_unanswered = 0
        for mid, st in ledger.matches.items():
            if mid not in matches or matches[mid].status == st:
                continue
            if matches[mid].status in ledger.matches_unanswered.get(mid, set()):
                committed_unanswered += 1
            else:
                wrong += 1
        # Whole rows whose answer was a 503 (the commit went through, the connection died before the answer): not
        # half-written, and a retry learns of them (409 with the current match); counted, not a failure.
        unacknowledged = sum(1 for mid in matches if mid not in ledger.matches)
        torn = sum(1 for m in matches.values() if m.events != m.version or m.last_to != m.status)
        out["matches"] = {
            "acknowledged": len(ledger.matches),
            "last_answered": dict(sorted(Counter(ledger.matches.values()).items())),
            "missing": behind,
            "status_differs": wrong,
            "decisions_committed_answered_503": committed_unanswered,
            "whole_rows_answered_503": unacknowledged,
            "audit_trail_torn": torn,
            "proposal_conflicts": ledger.match_conflicts,
        }
        states: dict[str, int] = dict(conn.execute(text("SELECT state, count(*) FROM job GROUP BY state")).all())
        known = {r[0] for r in conn.execute(text("SELECT id FROM job WHERE id = ANY(:i)"), {"i": list(ledger.job_ids)})}
    out["jobs"] = {
        "acknowledged": len(ledger.job_ids),  # jobs of edits answered 503 after their commit are not among them
        "acknowledged_missing": len(ledger.job_ids - known),
        "states": states,
        "stuck": sum(n for s, n in states.items() if s not in {"succeeded", "failed"}),
    }
    p, m, j = out["profiles"], out["matches"], out["jobs"]
    out["ok"] = not (
        p["last_2xx_value_missing"]
        or p["invalid_write_stored"]
        or m["missing"]
        or m["status_differs"]
        or m["audit_trail_torn"]
        or j["acknowledged_missing"]
        or j["stuck"]
    )
    return out


def wait_jobs(engine: Engine, deadline: float) -> None:
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            open_jobs = conn.execute(
                text("SELECT count(*) FROM job WHERE state NOT IN ('succeeded', 'failed')")
            ).scalar_one()
        if not open_jobs:
            return
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------- statistics
def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 1)


def summarise(records: list[Record], t0: float, duration: float, window: tuple[float, float] | None) -> dict[str, Any]:
    def stats(rs: list[Record]) -> dict[str, Any]:
        ms = sorted((r.end - r.start) * 1000 for r in rs)
        return {
            "count": len(rs),
            "status": {str(k): v for k, v in sorted(Counter(r.status for r in rs).items())},
            "p50_ms": _pct(ms, 0.50),
            "p95_ms": _pct(ms, 0.95),
            "p99_ms": _pct(ms, 0.99),
        }

    def inside(r: Record) -> bool:
        return window is not None and r.start <= window[1] and r.end >= window[0]

    bad_in = Counter(r.status for r in records if inside(r) and (r.status >= 500 or r.status == 0))
    bad_out = Counter(r.status for r in records if not inside(r) and (r.status >= 500 or r.status == 0))
    return {
        "kinds": {k: stats([r for r in records if r.kind == k]) for k in KINDS},
        "all": stats(records),
        "requests_per_s": round(len(records) / duration, 1) if duration else 0.0,
        "inside_window": sum(1 for r in records if inside(r)),
        "errors_inside_window": {str(k): v for k, v in sorted(bad_in.items())},
        "errors_outside_window": {str(k): v for k, v in sorted(bad_out.items())},
        "five_xx_inside": sum(v for k, v in bad_in.items() if k >= 500),
        "five_xx_outside": sum(v for k, v in bad_out.items() if k >= 500),
        "no_answer": sum(1 for r in records if r.status == 0),
        "outside_examples": [  # the first few failures outside the window: kind, status, start and end (s)
            [r.kind, r.status, round(r.start - t0, 3), round(r.end - t0, 3)]
            for r in records
            if not inside(r) and (r.status >= 500 or r.status == 0)
        ][:5],
    }


# ---------------------------------------------------------------------------------------------------- the run
def run(
    *,
    requests_n: int = 10_000,
    concurrency: int = 50,
    fault: str = "db",
    fault_seconds: float = 3.0,
    time_limit: float = 600.0,
    database: str = "twinning_bench_load",
    redis_url: str = "redis://127.0.0.1:6379/13",
    workers: int = 2,
    threads: int = 4,
    seed: int = 0,
    logs_dir: str | None = None,
) -> dict[str, Any]:
    """Set up, load, fault, drain, account, tear down; the result as a dict (``ok`` says whether it held)."""
    import redis as redis_lib
    from sqlalchemy.engine import make_url

    from api.data.db import make_engine, migrate
    from api.data.seeding import load_all

    if not database.replace("_", "").isalnum():
        raise BenchError(f"bad database name {database!r}")
    t_begin = time.monotonic()
    hard_deadline = t_begin + time_limit
    user = admin_user()
    direct_url = f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{database}"
    redis_parts = make_url(redis_url.replace("redis://", "postgresql://", 1))
    redis_db = redis_parts.database or "0"
    redis_target = (redis_parts.host or "127.0.0.1", redis_parts.port or 6379)
    rng = random.Random(seed)
    kinds = rng.choices(KINDS, weights=MIX, k=requests_n)
    plans = [kinds[i::concurrency] for i in range(concurrency)]
    matches_per_client = max(1, max(p.count("match") for p in plans) // 3 + 2)

    procs: list[subprocess.Popen[bytes]] = []
    proxies: list[Proxy] = []
    engine: Engine | None = None
    tmp = tempfile.TemporaryDirectory(prefix="twinning-bench-load-")
    logs = Path(logs_dir or tmp.name)
    logs.mkdir(parents=True, exist_ok=True)
    rclient = redis_lib.Redis.from_url(redis_url, socket_timeout=5)
    try:
        _admin_exec(user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _admin_exec(user, f'CREATE DATABASE "{database}"')
        rclient.flushdb()
        engine = make_engine(direct_url)
        migrate(engine)
        load_all(engine)
        world = prepare(engine, concurrency, matches_per_client, seed)
        t_setup = time.monotonic()

        pg_proxy = Proxy((PG_HOST, PG_PORT))
        redis_proxy = Proxy(redis_target)
        proxies += [pg_proxy, redis_proxy]
        secret = secrets.token_hex(16)
        common = {
            **os.environ,
            "SECRET_KEY": secret,
            "PYTHONPATH": str(ROOT),
            "TWINNING_MODEL_PATH": str(logs / "no-model.joblib"),
            "TWINNING_MIGRATE_ON_START": "0",
            "TWINNING_SEED_ON_START": "0",
            "TWINNING_TRAIN_ON_START": "0",
            "TWINNING_JOBS_MODE": "celery",
        }
        port = free_port()
        app_env = {
            **common,
            "DATABASE_URL": f"postgresql+psycopg://{user}@127.0.0.1:{pg_proxy.port}/{database}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{redis_db}",
        }
        gunicorn_cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads)]
        gunicorn_cmd += ["-b", f"127.0.0.1:{port}", "--timeout", "60", "--graceful-timeout", "5", "api.web.wsgi:app"]
        procs.append(_start(gunicorn_cmd, app_env, logs / "gunicorn.log"))
        worker_env = {**common, "DATABASE_URL": direct_url, "REDIS_URL": redis_url}
        worker_cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "twinning"]
        worker_cmd += [
            "-P",
            "prefork",
            "-c",
            "2",
            "-n",
            f"bench-{port}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ]
        procs.append(_start(worker_cmd, worker_env, logs / "worker.log"))
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/healthz", procs[0], logs / "gunicorn.log", timeout=60)
        _wait_worker(procs[1], logs / "worker.log", timeout=60)

        # Warm-up, not counted: each gunicorn worker builds its matcher on its first suggestions (seconds).
        warm = [
            threading.Thread(
                target=lambda c=c: requests.get(f"{base}/api/v1/cities/{c}/suggestions?k=10", timeout=120),
                daemon=True,
            )
            for c in world.read_cities[: 2 * workers * threads]
        ]
        for w in warm:
            w.start()
        for w in warm:
            w.join(timeout=130)

        ledger = Ledger()
        records: list[Record] = []
        clients = [Client(n, base, world, ledger, plans[n], records) for n in range(concurrency)]
        load_deadline = hard_deadline - 60  # keep time to drain, account and clean up
        for c in clients:
            c.stop_at = load_deadline
        target = {"db": pg_proxy, "redis": redis_proxy}.get(fault)
        window: list[float] = []
        done = threading.Event()

        def injector() -> None:
            if target is None:
                return
            # Cut when about a third of the requests are answered (or a third of the time allowed has passed).
            wait_until = time.monotonic() + (load_deadline - time.monotonic()) / 3
            while len(records) < requests_n // 3 and time.monotonic() < wait_until and not done.is_set():
                time.sleep(0.01)
            if done.is_set():
                return
            window.append(time.monotonic())
            target.cut()
            time.sleep(fault_seconds)
            target.restore()
            window.append(time.monotonic())

        inj = threading.Thread(target=injector, daemon=True)
        t0 = time.monotonic()
        inj.start()
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=max(1.0, hard_deadline - 30 - time.monotonic()))
        done.set()
        inj.join(timeout=fault_seconds + 5)
        if target is not None:
            target.restore()
        t_load = time.monotonic()
        truncated = any(c.is_alive() for c in clients) or len(records) < requests_n
        wait_jobs(engine, min(hard_deadline - 15, time.monotonic() + DRAIN_LIMIT_S))
        t_drained = time.monotonic()
        accounting = account(engine, ledger)
        win = (window[0], window[1]) if len(window) == 2 else None
        stats = summarise(list(records), t0, t_load - t0, win)
        inside_ok = all(k == "503" for k in stats["errors_inside_window"])
        result: dict[str, Any] = {
            "requests": requests_n,
            "sent": len(records),
            "concurrency": concurrency,
            "gunicorn": f"{workers} workers x {threads} threads",
            "fault": {
                "service": fault,
                "seconds": round(win[1] - win[0], 2) if win else 0.0,
                "starts_at_s": round(win[0] - t0, 2) if win else None,
            },
            "setup_s": round(t_setup - t_begin, 1),
            "load_s": round(t_load - t0, 2),
            "drain_s": round(t_drained - t_load, 2),
            **stats,
            "accounting": accounting,
            "truncated": truncated,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
        result["ok"] = bool(
            accounting["ok"]
            and stats["five_xx_outside"] == 0
            and stats["no_answer"] == 0
            and inside_ok
            and not truncated
        )
        return result
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for proxy in proxies:
            proxy.close()
        if engine is not None:
            engine.dispose()
        with contextlib.suppress(Exception):
            rclient.flushdb()
        rclient.close()
        with contextlib.suppress(psycopg.Error):
            _admin_exec(user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        tmp.cleanup()


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['sent']} requests ({r['requests']} planned) from {r['concurrency']} clients against gunicorn "
        f"{r['gunicorn']}, in {r['load_s']} s: {r['requests_per_s']} requests/s; load average "
        f"{' '.join(map(str, r['load_average']))} on {r['cpus']} CPUs",
        "",
        f"{'kind':<12} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses",
    ]
    for name, s in [*r["kinds"].items(), ("all", r["all"])]:
        statuses = " ".join(f"{k}:{v}" for k, v in s["status"].items())
        lines.append(f"{name:<12} {s['count']:>6} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8}  {statuses}")
    f = r["fault"]
    lines += [
        "",
        f"fault: {f['service']}"
        + (f", cut for {f['seconds']} s at {f['starts_at_s']} s" if f["starts_at_s"] is not None else ""),
        f"  5xx inside the window: {r['five_xx_inside']} {r['errors_inside_window']} "
        f"({r['inside_window']} requests overlapped it)",
        f"  5xx outside the window: {r['five_xx_outside']}; no answer: {r['no_answer']}",
    ]
    if r["outside_examples"]:
        lines.append(f"  first failures outside (kind, status, start s, end s): {r['outside_examples']}")
    a = r["accounting"]
    lines += ["", "accounting (after the jobs drained, " + f"{r['drain_s']} s):"]
    for part in ("profiles", "matches", "jobs"):
        lines.append(f"  {part}: " + ", ".join(f"{k}={v}" for k, v in a[part].items()))
    lines += ["", "OK" if r["ok"] else "FAILED" + (" (truncated by the time limit)" if r["truncated"] else "")]
    return "\n".join(lines)
