"""The stored-suggestions hot path (two Core queries, no ORM objects) answers exactly what the former one did
(ORM score set, ORM suggestion rows, ``cities_by_id``), and sees every change: exclusions, city edits, new profiles,
newer score sets."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlmodel import Session

from api.data import crud
from api.data.models import ScoreSet
from api.domain import workflow
from api.schemas import CityPublic, SuggestionQuery
from matcher.rank import pick_diverse, spread_codes
from matcher.sectors import label
from tests.conftest import bearer

SUZHOU = 1886760
MIAMI = 4164138


def _former_stored(session: Session, city_id: int, k: int, cooldown: float, share: float) -> dict[str, Any] | None:
    """The stored path as it was before the hot path (the reference)."""
    excluded = workflow.excluded_partners(session, city_id, cooldown)
    score_set = crud.latest_score_set_for_city(session, city_id=city_id)
    if score_set is None or score_set.id is None or k > score_set.k:
        return None
    rows = [
        s
        for s in crud.stored_suggestions(session, score_set_id=score_set.id, city_id=city_id, k=score_set.k)
        if s.candidate_id not in excluded
    ]
    cands = crud.cities_by_id(session, ids=[s.candidate_id for s in rows])
    rows = [s for s in rows if s.candidate_id in cands]
    # the country cap of the live list: spread across the countries the city prefers, their sizes and areas
    profile = crud.get_profile(session, city_id=city_id)
    preferred = list(profile.pref_countries) if profile is not None and profile.pref_countries else []
    listed = [cands[s.candidate_id] for s in rows]
    spread = spread_codes(
        np.array([c.population for c in listed], float),
        np.array([c.latitude for c in listed], float),
        np.array([c.longitude for c in listed], float),
    )
    subgroups = [tuple(r) for r in spread.tolist()] if preferred else None
    keep = pick_diverse([c.country for c in listed], k, share, preferred=preferred, subgroups=subgroups)
    data = [
        {
            "city": cands[s.candidate_id].model_dump(mode="json"),
            "score": s.score,
            "components": s.components,
            "sectors": [{**f, "label": label(f["sector"])} for f in s.sectors],
            "distance_km": s.distance_km,
            "rank": rank,
        }
        for rank, s in enumerate((rows[p] for p in keep), start=1)
    ]
    meta = {
        "id": score_set.id,
        "live": False,
        "model_version": score_set.model_version,
        "created_at": score_set.created_at.isoformat(),
        "completed_at": score_set.completed_at.isoformat() if score_set.completed_at else None,
    }
    return {"data": data, "count": len(data), "score_set": meta}


def _check(app: Any, client: Any, city_id: int, k: int) -> dict[str, Any]:
    body = client.get(f"/api/v1/cities/{city_id}/suggestions?k={k}").get_json()
    settings = app.extensions["twinning"].settings
    with Session(app.extensions["twinning"].engine) as session:
        former = _former_stored(session, city_id, k, settings.MATCH_COOLDOWN_DAYS, settings.MAX_COUNTRY_SHARE)
    assert {key: v for key, v in body.items() if key != "notes"} == former  # notes: tests/api/test_suggestion_notes.py
    return body


def test_stored_answers_equal_the_former_path_through_every_change(app: Any, client: Any) -> None:
    admin = bearer(app, "admin")
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU, MIAMI]}, headers=admin).status_code == 202
    for city, k in ((SUZHOU, 10), (SUZHOU, 20), (MIAMI, 5), (SUZHOU, 1)):
        assert _check(app, client, city, k)["score_set"]["live"] is False
    assert client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=21").get_json()["score_set"]["live"] is True

    first = _check(app, client, SUZHOU, 10)["data"]
    # A rejected pair leaves the list at once.
    partner = first[0]["city"]["id"]
    mid = client.post("/api/v1/matches", json={"city_id": SUZHOU, "partner_id": partner}, headers=admin).get_json()
    r = client.post(f"/api/v1/matches/{mid['id']}/decisions", json={"action": "reject", "note": "no"}, headers=admin)
    assert r.status_code == 200, r.get_json()
    assert partner not in [s["city"]["id"] for s in _check(app, client, SUZHOU, 10)["data"]]

    # A city edit and a new profile of a candidate show at once (nothing of a candidate is cached).
    other = first[1]["city"]
    r = client.patch(f"/api/v1/cities/{other['id']}", json={"population": other["population"] + 1}, headers=admin)
    assert r.status_code == 200, r.get_json()
    profile = {"offers": {"education": 0.5}, "seeks": {"tourism": 0.5}}
    if not other["has_profile"]:
        assert client.put(f"/api/v1/cities/{other['id']}/profile", json=profile, headers=admin).status_code == 200
    now = {s["city"]["id"]: s["city"] for s in _check(app, client, SUZHOU, 10)["data"]}
    # (the profile's re-scoring covers that city only: Suzhou's list is still read from the same set)
    assert now[other["id"]]["population"] == other["population"] + 1 and now[other["id"]]["has_profile"]

    # A newer complete set is read at once; a newer set still running is not.
    before = _check(app, client, SUZHOU, 10)["score_set"]["id"]
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=admin).status_code == 202
    newer = _check(app, client, SUZHOU, 10)["score_set"]["id"]
    assert newer > before
    with Session(app.extensions["twinning"].engine) as session:
        session.add(ScoreSet(status="running", k=20))
        session.commit()
        head = crud.newest_complete_set_for_city(session, city_id=SUZHOU)
        former = crud.latest_score_set_for_city(session, city_id=SUZHOU)
        assert head is not None and former is not None and head.id == former.id == newer
        assert crud.newest_complete_set_for_city(session, city_id=MIAMI + 1) is None


def test_stored_city_records_are_the_public_records(app: Any, client: Any) -> None:
    """Every field of every candidate as :class:`CityPublic` dumps it (types included: floats stay floats)."""
    admin = bearer(app, "admin")
    assert client.post("/api/v1/jobs/rescore", json={"city_ids": [SUZHOU]}, headers=admin).status_code == 202
    with Session(app.extensions["twinning"].engine) as session:
        head = crud.newest_complete_set_for_city(session, city_id=SUZHOU)
        assert head is not None
        rows = crud.stored_rows(session, score_set_id=head.id, city_id=SUZHOU, k=head.k)
        public = crud.cities_by_id(session, ids=[r.candidate_id for r in rows])
    assert len(rows) == head.k
    for r in rows:
        expected = public[r.candidate_id].model_dump(mode="json")
        assert r.city == expected and list(r.city) == list(CityPublic.model_fields)
        assert [type(v) for v in r.city.values()] == [type(v) for v in expected.values()]


def test_query_schema_is_built_once() -> None:
    from pydantic import BaseModel

    fresh = BaseModel.model_json_schema.__func__(SuggestionQuery)  # type: ignore[attr-defined]
    assert SuggestionQuery.model_json_schema() == fresh
    assert SuggestionQuery.model_json_schema() is SuggestionQuery.model_json_schema()
    serialization = BaseModel.model_json_schema.__func__(SuggestionQuery, mode="serialization")  # type: ignore[attr-defined]
    assert SuggestionQuery.model_json_schema(mode="serialization") == serialization


def test_city_to_read_is_get_city_without_the_session(app: Any, client: Any) -> None:
    from api.errors import NotFound

    with Session(app.extensions["twinning"].engine) as session:
        fast = crud.city_to_read(session, city_id=SUZHOU)
        orm = crud.get_city(session, city_id=SUZHOU)
        assert fast.model_dump() == orm.model_dump() and fast is not orm
        for read in (crud.city_to_read, crud.get_city):
            try:
                read(session, city_id=42)
            except NotFound as e:
                assert e.message == "city 42 not found"
            else:
                raise AssertionError("no NotFound")
    body = client.get("/api/v1/cities/42/suggestions").get_json()
    assert body["error"]["status"] == 404 and body["error"]["message"] == "city 42 not found"
