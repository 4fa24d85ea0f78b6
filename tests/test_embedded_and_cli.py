"""The embedded default (SQLite, in-process jobs) and the ``twinning`` command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api import create_app
from api.cli import main
from api.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TWINNING_JOBS_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TWINNING_MODEL_PATH", str(tmp_path / "model.joblib"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_help_explains_every_command() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "embedded" in top.output
    for cmd in ("serve", "seed", "rescore", "suggest", "db"):
        assert cmd in top.output
        sub = runner.invoke(main, [cmd, "--help"])
        assert sub.exit_code == 0 and "Usage:" in sub.output and len(sub.output.splitlines()) > 4, cmd


def test_cli_on_sqlite_seed_suggest_rescore(sqlite_env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["seed"])
    assert r.exit_code == 0, r.output
    assert "34006 cities" in r.output and (sqlite_env / "twinning.db").exists()
    r = runner.invoke(main, ["suggest", "Suzhou", "-k", "12", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["city"]["id"] == 1886760 and len(out["data"]) == 12
    assert all(0 <= s["score"] <= 1 and s["components"] and s["sectors"] for s in out["data"])
    table = runner.invoke(main, ["suggest", "1886760", "-k", "3"])
    lines = table.output.splitlines()
    assert table.exit_code == 0 and "Suggestions for Suzhou" in table.output and len(lines) == 6
    assert lines[-1].startswith("Note: No places in China are suggested")  # Chinese places rarely twin at home
    r = runner.invoke(main, ["rescore", "--city", "Suzhou", "--city", "Miami"])
    assert r.exit_code == 0, r.output
    assert "succeeded" in r.output and "2 cities" in r.output
    bad = runner.invoke(main, ["suggest", "Nowhere-upon-Nothing"])
    assert bad.exit_code == 2 and "not found" in bad.output
    bad = runner.invoke(main, ["suggest", "Suzhou", "--sector", "astrology"])
    assert bad.exit_code == 2 and "unknown sector" in bad.output


def test_default_secret_refused_outside_embedded_mode(sqlite_env: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "MIGRATE_ON_START": False})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_serve_embedded_default_end_to_end(sqlite_env: Path) -> None:
    """What a new user does: `twinning serve` on an empty directory, then ask for Suzhou's suggestions."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=sqlite_env,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Twinning is running" in line:
                break
        assert f"http://127.0.0.1:{port}/" in "".join(lines), lines
        body = get_json(f"http://127.0.0.1:{port}/api/v1/cities/1886760/suggestions?k=10")
        assert body["count"] >= 10
        assert all(s["components"] and s["sectors"] and 0 <= s["score"] <= 1 for s in body["data"])
        health = get_json(f"http://127.0.0.1:{port}/healthz")
        assert health["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def test_account_commands_say_when_the_schema_is_missing(sqlite_env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["users", "list"])
    assert r.exit_code == 1 and "twinning db upgrade" in r.output
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(main, ["users", "list"])
    assert r.exit_code == 0 and r.output == ""
