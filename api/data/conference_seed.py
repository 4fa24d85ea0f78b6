"""The illustrative demo conference (``seed/demo_conference.json``), loaded with the demo profiles; idempotent.

Modelled on the 5th China–US Sister Cities Conference: about 50 delegations (30 US cities and counties from 22
states, 20 Chinese cities and provinces), 8 slots, 15 tables, Chinese–English interpreters. Provinces and counties
are custom places, created once (found again by name and country). The conference is loaded only when no
illustrative conference of that name exists, so a second run changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.data import conferences as q
from api.data.conference_models import Conference
from api.data.crud import index_main_name
from api.data.models import CUSTOM_ID_START, City
from api.data.text import fold
from seed.readers import SEED_DIR

log = logging.getLogger(__name__)
DEMO_CONFERENCE_FILE: Path = SEED_DIR / "demo_conference.json"


def _custom_place(session: Session, p: dict[str, Any]) -> int:
    existing = q.custom_place(session, name=p["name"], country=p["country"])
    if existing is not None:
        return existing.id
    next_id = max(CUSTOM_ID_START, (session.exec(select(func.max(City.id))).one() or 0) + 1)
    fields = {k: p[k] for k in ("name", "country", "admin1", "latitude", "longitude", "population", "timezone")}
    city = City(id=next_id, search_name=fold(p["name"]), is_custom=True, **fields)
    session.add(city)
    session.flush()
    index_main_name(session, city=city)
    session.flush()
    return next_id


def load_demo_conference(conn: Any, path: Path = DEMO_CONFERENCE_FILE) -> int:
    """Load the demo conference on ``conn`` (inside the caller's transaction); returns its delegations (0 when
    it is already there or the gazetteer lacks its places)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    c = doc["conference"]
    with Session(bind=conn) as session:
        if session.exec(
            select(Conference.id).where(Conference.name == c["name"], col(Conference.illustrative).is_(True))
        ).first():
            return 0
        gazetteer = [d["place"] for d in doc["delegations"] if isinstance(d["place"], int)]
        if len(q.cities_of(session, ids=gazetteer)) < len(set(gazetteer)):
            log.warning("demo conference skipped: the gazetteer is not loaded")
            return 0
        keys = {p["key"]: _custom_place(session, p) for p in doc["custom_places"]}
        conf = q.create_conference(
            session,
            name=c["name"],
            place=c["place"],
            starts_on=date.fromisoformat(c["starts_on"]),
            ends_on=date.fromisoformat(c["ends_on"]),
            timezone=c["timezone"],
            pivot_language=c["pivot_language"],
            description=c["description"],
            slots=[
                {
                    **s,
                    "starts_at": datetime.fromisoformat(s["starts_at"]),
                    "ends_at": datetime.fromisoformat(s["ends_at"]),
                }
                for s in c["slots"]
            ],
            illustrative=True,
        )
        assert conf.id is not None
        slot_ids = [s.id or 0 for s in q.conference_slots(session, conference_id=conf.id)]
        by_name: dict[str, int] = {}
        for d in doc["delegations"]:
            city_id = d["place"] if isinstance(d["place"], int) else keys[d["place"]]
            positions = d.get("slots") or range(1, len(slot_ids) + 1)
            row = q.add_delegation(
                session,
                conference_id=conf.id,
                city_id=city_id,
                delegates=d["delegates"],
                languages=d["languages"],
                slot_ids=[slot_ids[p - 1] for p in positions],
                registered_by=None,
            )
            by_name[d["name"]] = row.id or 0
        q.add_wishes(session, conference_id=conf.id, rows=[(by_name[a], by_name[b], w) for a, b, w in doc["wishes"]])
        session.commit()
    log.info("demo conference: %d delegations (illustrative)", len(by_name))
    return len(by_name)
