"""The list says what it leaves out: a city whose country's places rarely twin at home is served none of them, and
its answer (API, console, command line) says so, with the figures and how to see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.cli import main
from api.data import crud
from api.data.models import City
from api.domain.training import TRAINING_STATUSES
from matcher.rank import rare_at_home
from tests.conftest import bearer, console_login, set_cli_env

LYON = 2996944  # France: 20+ known partnerships, under 5 % of them at home
MUNICH = 2867714  # Germany: a fifth of its places' partnerships are at home


def _counts(engine: Engine) -> dict[str, tuple[int, int]]:
    with Session(engine) as s:
        return crud.partnership_country_ends(s, statuses=TRAINING_STATUSES)


def test_country_counts_follow_the_partnerships(db_engine: Engine) -> None:
    counts = _counts(db_engine)
    with Session(db_engine) as s:
        pairs = crud.partnership_pairs(s, statuses=TRAINING_STATUSES)
        country = {c.id: c.country for c in s.exec(select(City)).all()}
    assert sum(e for e, _ in counts.values()) == 2 * len(pairs)
    fr_home = sum(1 for a, b in pairs if country[a] == country[b] == "FR")
    fr_ends = sum((country[a] == "FR") + (country[b] == "FR") for a, b in pairs)
    assert counts["FR"] == (fr_ends, 2 * fr_home)
    assert bool(rare_at_home(*counts["FR"])) and not bool(rare_at_home(*counts["DE"]))


@pytest.mark.parametrize("stored", [False, True], ids=["live", "stored"])
def test_home_country_left_out_is_said(client: Any, app: Any, stored: bool) -> None:
    if stored:
        r = client.post("/api/v1/jobs/rescore", json={"city_ids": [LYON, MUNICH]}, headers=bearer(app, "admin"))
        assert r.status_code == 202, r.get_json()
    body = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10").get_json()
    assert body["score_set"]["live"] is (not stored)
    assert len(body["data"]) == 10 and all(s["city"]["country"] != "FR" for s in body["data"])
    assert [n["code"] for n in body["notes"]] == ["home_country_left_out"]
    note = body["notes"][0]
    assert note["country"] == "FR"
    ends, at_home = _counts(app.extensions["twinning"].engine)["FR"]
    assert at_home > 0 and f"of the {ends:,} known partnerships" in note["message"]
    assert f"only {at_home / ends:.1%} are with another place in France" in note["message"]
    assert "France" in note["message"]

    # Munich's country twins at home often enough: no rule, no note.
    assert client.get(f"/api/v1/cities/{MUNICH}/suggestions?k=10").get_json()["notes"] == []


def test_no_note_where_the_user_chose_the_countries(client: Any, app: Any) -> None:
    body = client.get(f"/api/v1/cities/{LYON}/suggestions?k=5&country=FR").get_json()
    assert body["data"] and all(s["city"]["country"] == "FR" for s in body["data"])
    assert body["notes"] == []
    # the diversity rule off (a country share of 1): the home rule is off too, and the list may hold French places
    body = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10&max_country_share=1").get_json()
    assert body["notes"] == []


def test_no_note_when_the_profile_seeks_the_home_country(client: Any, app: Any) -> None:
    official = bearer(app, "official", name="lyon", cities=(LYON,))
    profile = {"offers": {"culture_arts": 1.0}, "seeks": {"youth": 1.0}, "pref_countries": ["FR", "DE"]}
    r = client.put(f"/api/v1/cities/{LYON}/profile", json=profile, headers=official)
    assert r.status_code == 200, r.get_json()
    body = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10").get_json()
    assert body["notes"] == []
    assert any(s["city"]["country"] == "FR" for s in body["data"])


def test_console_and_cli_show_the_note(
    app: Any, client: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10").get_json()["notes"][0]["message"]
    console_login(app, client, "lyon-c", (LYON,))
    page = client.get(f"/console/cities/{LYON}/suggestions?k=10").get_data(as_text=True)
    assert 'data-note="home_country_left_out"' in page and "No places in France are suggested" in page

    set_cli_env(monkeypatch, database_url, tmp_path)
    out = CliRunner().invoke(main, ["suggest", str(LYON), "-k", "10"])
    assert out.exit_code == 0, out.output
    assert f"Note: {message}" in out.output


def test_the_counts_follow_a_new_partnership(client: Any, app: Any) -> None:
    """The counts are kept per data version: a partnership recorded since shows in the next answer's figures."""
    before = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10").get_json()["notes"][0]["message"]
    ends, at_home = _counts(app.extensions["twinning"].engine)["FR"]
    marseille, nice = 2995469, 2990440
    r = client.post(
        "/api/v1/partnerships", json={"city_a_id": marseille, "city_b_id": nice}, headers=bearer(app, "admin")
    )
    assert r.status_code == 201, r.get_json()
    after = client.get(f"/api/v1/cities/{LYON}/suggestions?k=10").get_json()["notes"][0]["message"]
    assert f"of the {ends:,} known" in before and f"of the {ends + 2:,} known" in after
    assert f"only {(at_home + 2) / (ends + 2):.1%} are" in after
