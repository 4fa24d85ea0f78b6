"""The API, the console and the command line show the same suggestions: they all ask one service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main
from tests.conftest import bearer, console_login, set_cli_env

SUZHOU = 1886760


def _console_ids(app: Any, client: Any) -> list[int]:
    console_login(app, client, "li", (SUZHOU,))
    page = client.get(f"/console/cities/{SUZHOU}/suggestions?k=10").get_data(as_text=True)
    return [int(i) for i in re.findall(r'<li class="card suggestion" id="s-(\d+)"', page)]


@pytest.mark.parametrize("stored", [False, True], ids=["live", "stored"])
def test_api_console_and_cli_agree(
    app: Any, client: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored: bool
) -> None:
    admin = bearer(app, "admin")
    official = bearer(app, "official", name="li-api", cities=(SUZHOU,))
    first = client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()["data"][0]["city"]["id"]
    # A rejected pair stays out of every list for the cooldown (the CLI used to skip this rule).
    mid = client.post("/api/v1/matches", json={"city_id": SUZHOU, "partner_id": first}, headers=official)
    assert mid.status_code == 201, mid.get_json()
    r = client.post(
        f"/api/v1/matches/{mid.get_json()['id']}/decisions", json={"action": "reject", "note": "no"}, headers=admin
    )
    assert r.status_code == 200, r.get_json()
    if stored:
        r = client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=admin)
        assert r.status_code == 202

    body = client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()
    assert body["score_set"]["live"] is (not stored)
    api_ids = [s["city"]["id"] for s in body["data"]]
    assert len(api_ids) == 10 and first not in api_ids

    set_cli_env(monkeypatch, database_url, tmp_path)
    out = CliRunner().invoke(main, ["suggest", str(SUZHOU), "-k", "10", "--json"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.output)
    assert [s["city"]["id"] for s in cli["data"]] == api_ids
    assert [s["score"] for s in cli["data"]] == [s["score"] for s in body["data"]]
    assert cli["score_set"]["live"] is (not stored)

    assert _console_ids(app, client) == api_ids
