"""``twinning bench first-start``: how soon the embedded default serves after ``twinning serve`` on an empty folder
(issue 8's target: within 30 s of the command, after the install), against a second start on the same folder,
which finds the data there: the difference is what the first start's seeding costs.

Each start is ``python -m api.cli serve`` in a throwaway folder with the embedded default's environment (no
``DATABASE_URL``, ``REDIS_URL`` or other ``TWINNING_*`` setting but the gazetteer level): SQLite ``./twinning.db``,
jobs in-process, no model yet, as on a fresh clone. Serving is the first answer 200 to a city search; the prefix
pages (stored in the background after a first start's seed) are read from the SQLite file. The server and its
background jobs (training, the demo conference) are stopped once measured.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from api.cli.bench_api import _machine
from api.cli.bench_load import free_port

TARGET_S = 30.0
_SEEDED = re.compile(r"demo profiles in ([0-9.]+)s")


def _env(level: str) -> dict[str, str]:
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("TWINNING_")}
    env["TWINNING_GAZETTEER"] = level
    return env


def _pages(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM cityprefix").fetchone()[0])
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def start_once(folder: Path, level: str, timeout: float, pages_timeout: float) -> dict[str, Any]:
    """One ``serve`` in ``folder``: seconds to the first search answered, the seed's own seconds (first start),
    seconds until the prefix pages are stored (first start), and the lines it printed with their times."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/cities?q=koln&per_page=1"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=folder,
        env=_env(level),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((round(time.perf_counter() - t0, 2), line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    serving = pages_s = None
    try:
        while time.perf_counter() - t0 < timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        serving = time.perf_counter() - t0
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        first = any("First start" in text for _, text in lines)
        if serving is not None and first:
            while time.perf_counter() - t0 < serving + pages_timeout and proc.poll() is None:
                if _pages(folder / "twinning.db") > 0:
                    pages_s = time.perf_counter() - t0
                    break
                time.sleep(0.25)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
    seeded = next((float(m.group(1)) for _, text in lines if (m := _SEEDED.search(text))), None)
    return {
        "serving_s": None if serving is None else round(serving, 2),
        "seed_s": seeded,
        "prefix_pages_s": None if pages_s is None else round(pages_s, 2),
        "first_start": first,
        "lines": lines[:40],
    }


def run(level: str = "cities1000", timeout: float = 300.0, pages_timeout: float = 120.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="twinning-first-start-") as tmp:
        folder = Path(tmp)
        first = start_once(folder, level, timeout, pages_timeout)
        second = start_once(folder, level, timeout, pages_timeout)
    serving = first["serving_s"]
    return {
        "command": "twinning bench first-start",
        "level": level,
        "server": "python -m api.cli serve (embedded default: SQLite ./twinning.db, jobs in-process) in an empty folder",
        "first": first,
        "second": second,
        "target": {"serving_s": f"< {TARGET_S:g}", "pass": serving is not None and serving < TARGET_S},
        "valid": serving is not None and second["serving_s"] is not None and first["first_start"],
        "machine": _machine(),
    }


def format_table(r: dict[str, Any]) -> str:
    def cell(v: float | None) -> str:
        return "–" if v is None else f"{v:.1f}"

    m = r["machine"]
    lines = [
        f"first start of {r['server']}, {r['level']}; machine: {m['cpus']} CPUs ({m['cpu']}), "
        f"load average {m['load_average'][0]}",
        "",
        f"{'start':<34} {'serving s':>10} {'seed s':>8} {'prefix pages stored s':>22}",
    ]
    for name, s in (("first (empty folder)", r["first"]), ("second (the data there)", r["second"])):
        lines.append(f"{name:<34} {cell(s['serving_s']):>10} {cell(s['seed_s']):>8} {cell(s['prefix_pages_s']):>22}")
    t = r["target"]
    lines += ["", f"target: serving {t['serving_s']} s after the command: {'met' if t['pass'] else 'NOT met'}"]
    return "\n".join(lines)
