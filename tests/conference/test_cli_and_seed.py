"""``twinning conference …`` through click's CliRunner, and the demo conference seed (idempotent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from api.cli import main
from api.data.conference_seed import DEMO_CONFERENCE_FILE, load_demo_conference
from tests.conference.helpers import SUZHOU, setup_conference
from tests.conftest import set_cli_env


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    set_cli_env(monkeypatch, database_url, tmp_path)


def test_conference_commands(client: Any, app: Any, cli_env: None, tmp_path: Path) -> None:
    c = setup_conference(client, app, schedule=False)
    run = CliRunner().invoke
    r = run(main, ["conference", "list"])
    assert r.exit_code == 0, r.output
    assert "Test conference" in r.output and "not scheduled" in r.output
    r = run(main, ["conference", "schedule", "--time-limit", "1"])
    assert r.exit_code == 0, r.output
    assert "mutual must-meets 2/3" in r.output and "greedy" in r.output
    r = run(main, ["conference", "show", "-c", str(c["id"])])
    assert r.exit_code == 0 and "6 delegations" in r.output and "slot 3" in r.output
    ics = tmp_path / "suzhou.ics"
    r = run(main, ["conference", "agenda", "Suzhou", "--ics", str(ics)])
    assert r.exit_code == 0, r.output
    assert "Miami (US), interpreter zh  [must meet]" in r.output
    assert ics.read_bytes().count(b"BEGIN:VEVENT") == r.output.count("table ")
    r = run(main, ["conference", "agenda", str(SUZHOU), "--json"])
    assert json.loads(r.output)["delegation"]["city"]["id"] == SUZHOU
    r = run(main, ["conference", "grid"])
    assert r.exit_code == 0 and "3 slots × 2 tables" in r.output
    r = run(main, ["conference", "unmet", "--json"])
    assert json.loads(r.output)["data"][0]["reason"] == "no_common_slot"
    r = run(main, ["conference", "agenda", "Atlantis"])
    assert r.exit_code == 2 and "no delegation" in r.output
    r = run(main, ["conference", "show", "-c", "999999"])
    assert r.exit_code == 2 and "999999" in r.output


def test_demo_conference_seed_is_plausible_and_idempotent(db_engine: Engine) -> None:
    doc = json.loads(DEMO_CONFERENCE_FILE.read_text())
    assert "ILLUSTRATIVE" in doc["_note"]
    with db_engine.begin() as conn:
        conn.execute(text("DELETE FROM conference WHERE illustrative"))  # the session's seed loaded it already
        assert load_demo_conference(conn) == 50
    with db_engine.begin() as conn:
        assert load_demo_conference(conn) == 0  # already there: nothing changes
        rows = conn.execute(
            text("SELECT c.country, c.admin1, c.is_custom FROM delegation d JOIN city c ON c.id = d.city_id")
        ).all()
        assert len(rows) == 50
        us = [r for r in rows if r[0] == "US"]
        assert len(us) == 30 and len({r[1] for r in us}) == 22
        assert sum(r[0] == "CN" for r in rows) == 20 and sum(r[2] for r in rows) == 8  # provinces and counties
        slots = conn.execute(text("SELECT tables, interpreters FROM conferenceslot")).all()
        assert len(slots) == 8 and all(t == 15 for t, _ in slots)
        kinds = conn.execute(text("SELECT kind, count(*) FROM wish GROUP BY kind")).all()
        assert {k for k, _ in kinds} == {"must_meet", "would_like", "follow_up", "no_thanks"}
        mutual = conn.execute(
            text(
                "SELECT count(*) FROM wish a JOIN wish b ON a.from_id = b.to_id AND a.to_id = b.from_id "
                "WHERE a.kind = 'must_meet' AND b.kind = 'must_meet' AND a.from_id < a.to_id"
            )
        ).scalar()
        assert mutual and mutual >= 10
        # Every follow-up is between cities that are already partners.
        bad = conn.execute(
            text(
                "SELECT count(*) FROM wish w JOIN delegation a ON a.id = w.from_id JOIN delegation b ON b.id = w.to_id "
                "WHERE w.kind = 'follow_up' AND NOT EXISTS (SELECT 1 FROM partnership p WHERE "
                "p.city_a_id = LEAST(a.city_id, b.city_id) AND p.city_b_id = GREATEST(a.city_id, b.city_id))"
            )
        ).scalar()
        assert bad == 0


def test_embedded_first_start_schedules_the_demo_conference(tmp_path: Path) -> None:
    """On the embedded default (SQLite), the first start schedules the demo conference in the background."""
    from sqlmodel import Session

    from api import create_app
    from api.data import conferences as conference_data
    from api.data.seeding import load_all
    from api.domain.bootstrap import schedule_demo_conference

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
            "REDIS_URL": None,
            "JOBS_MODE": "sync",
            "MODEL_PATH": str(tmp_path / "no-model.joblib"),
            "CONFERENCE_TIME_LIMIT": 3.0,
        }
    )
    engine = app.extensions["twinning"].engine
    try:
        load_all(engine)
        said: list[str] = []
        thread = schedule_demo_conference(app, echo=said.append)
        assert thread is not None and "demo conference" in said[0]
        thread.join(120)
        assert not thread.is_alive()
        with Session(engine) as session:
            (demo,) = [c for c in conference_data.list_conferences(session) if c.illustrative]
            assert demo.id is not None
            assert len(conference_data.conference_meetings(session, conference_id=demo.id)) > 50
        assert schedule_demo_conference(app, echo=said.append) is None  # already scheduled: nothing to do
    finally:
        engine.dispose()
