"""Conference mode: registration, wishes, scheduling and re-scheduling, agendas, the organisers' grid, unmet
wishes, and meetings that become match proposals. No Flask here; the routes, console and CLI call these.

The optimiser is :mod:`matcher.conference` (pure); this module maps database rows to its indexed ``Instance``
(delegations ordered by id, slots by position; cancelled delegations and lost slots stay in with no availability,
so indices never move) and stores its ``Schedule`` back as meetings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlmodel import Session

from api.conference_schemas import ConferenceCreate, DelegationCreate, WishIn
from api.config import Settings
from api.data import conferences as q
from api.data import crud
from api.data.conference_models import Conference, ConferenceMeeting, ConferenceSlot, Delegation
from api.data.models import City
from api.domain import workflow
from api.domain.scoring import Built, MatcherService
from api.errors import Conflict, Forbidden, Invalid
from matcher.conference import Instance, Meeting, Schedule, explain_unmet, greedy, reschedule, solve
from matcher.sectors import label

WISH_KINDS = ("must_meet", "would_like", "follow_up", "no_thanks")
UNMET_LABELS = {
    "cancelled": "a delegation cancelled",
    "no_common_slot": "never available in the same slot",
    "no_interpreter": "no common language and no interpreter on duty",
    "no_table": "no table left in their common slots",
    "capacity": "crowded out by other must-meets",
}


class Actor(Protocol):
    """Who acts (``api.web.auth.Principal`` fits)."""

    id: int
    role: str
    cities: list[int]

    @property
    def is_admin(self) -> bool: ...


def is_organiser(user: Actor | None) -> bool:
    return user is not None and user.role in ("coordinator", "admin")


def may_act_for(user: Actor | None, city_id: int) -> bool:
    """Organisers act for every delegation; an official for their own cities' delegations."""
    return is_organiser(user) or (user is not None and user.role == "official" and int(city_id) in user.cities)


def _require_organiser(user: Actor) -> None:
    if not is_organiser(user):
        raise Forbidden("only coordinators and admins manage a conference")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _local(dt: datetime, tz: str) -> str:
    """ISO 8601 in the conference's time zone (what delegates read on their agenda)."""
    try:
        zone: Any = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return _aware(dt).astimezone(zone).isoformat()


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def get_conference(session: Session, conference_id: int) -> Conference:
    return q.get_conference(session, conference_id=conference_id)


def get_delegation(session: Session, conference_id: int, delegation_id: int) -> Delegation:
    get_conference(session, conference_id)
    return q.get_delegation(session, conference_id=conference_id, delegation_id=delegation_id)


# ---------------------------------------------------------------- conferences
def create_conference(
    session: Session, user: Actor, data: ConferenceCreate, *, illustrative: bool = False
) -> Conference:
    _require_organiser(user)
    return q.create_conference(
        session,
        name=data.name,
        place=data.place,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        timezone=data.timezone,
        pivot_language=data.pivot_language,
        description=data.description,
        slots=[s.model_dump() for s in data.slots],
        illustrative=illustrative,
    )


def slot_public(s: ConferenceSlot, tz: str = "UTC") -> dict[str, Any]:
    return {
        "id": s.id or 0,
        "position": s.position,
        "starts_at": _local(s.starts_at, tz),
        "ends_at": _local(s.ends_at, tz),
        "tables": s.tables,
        "interpreters": dict(s.interpreters or {}),
        "lost": s.lost,
    }


def conference_public(session: Session, conf: Conference) -> dict[str, Any]:
    assert conf.id is not None
    slots = q.conference_slots(session, conference_id=conf.id)
    dels = q.conference_delegations(session, conference_id=conf.id, registered_only=True)
    return {
        "id": conf.id,
        "name": conf.name,
        "place": conf.place,
        "starts_on": conf.starts_on.isoformat(),
        "ends_on": conf.ends_on.isoformat(),
        "timezone": conf.timezone,
        "pivot_language": conf.pivot_language,
        "description": conf.description,
        "illustrative": conf.illustrative,
        "slots": [slot_public(s, conf.timezone) for s in slots],
        "delegations": len(dels),
        "schedule": dict(conf.schedule_info or {}),
    }


# ---------------------------------------------------------------- delegations
def city_brief(city: City | None, city_id: int) -> dict[str, Any]:
    if city is None:
        return {"id": city_id, "name": f"place {city_id}", "country": "", "is_custom": False}
    return {"id": city.id, "name": city.name, "country": city.country, "is_custom": city.is_custom}


def delegations_public(session: Session, rows: list[Delegation]) -> list[dict[str, Any]]:
    cities = q.cities_of(session, ids=[d.city_id for d in rows])
    return [
        {
            "id": d.id or 0,
            "city": city_brief(cities.get(d.city_id), d.city_id),
            "status": d.status,
            "delegates": list(d.delegates or []),
            "languages": list(d.languages or []),
            "slot_ids": list(d.slot_ids or []),
        }
        for d in rows
    ]


def register(session: Session, user: Actor, conference_id: int, data: DelegationCreate) -> Delegation:
    """Register a place's delegation: officials for their own cities, organisers for any place."""
    get_conference(session, conference_id)
    if not may_act_for(user, data.city_id):
        raise Forbidden(f"an official may register only their own city's delegation, not {data.city_id}", "city_id")
    city = crud.referenced_city(session, city_id=data.city_id, field="city_id")
    slot_ids = [s.id or 0 for s in q.conference_slots(session, conference_id=conference_id) if not s.lost]
    if data.slot_ids is not None:
        unknown = sorted(set(data.slot_ids) - set(slot_ids))
        if unknown:
            raise Invalid(f"no such slot at this conference: {unknown[0]}", "slot_ids")
        slot_ids = sorted(set(data.slot_ids))
    languages = data.languages
    if not languages:
        languages = q.country_languages(session, codes=[city.country]).get(city.country, [])[:1] or ["en"]
    try:
        return q.add_delegation(
            session,
            conference_id=conference_id,
            city_id=city.id,
            delegates=[d.model_dump() for d in data.delegates],
            languages=languages,
            slot_ids=slot_ids,
            registered_by=user.id,
        )
    except Conflict as e:
        raise Conflict(e.message, "city_id") from e


def _require_delegation_actor(user: Actor, d: Delegation) -> None:
    if not may_act_for(user, d.city_id):
        raise Forbidden(f"only an official of city {d.city_id} or an organiser may change delegation {d.id}")


# ---------------------------------------------------------------- wishes
def set_wishes(
    session: Session, user: Actor, conference_id: int, delegation_id: int, wishes: list[WishIn]
) -> dict[int, str]:
    """Replace the delegation's wishes. ``follow_up`` only between cities that are already partners."""
    d = get_delegation(session, conference_id, delegation_id)
    _require_delegation_actor(user, d)
    others = {o.id: o for o in q.conference_delegations(session, conference_id=conference_id, registered_only=True)}
    partnered = q.partnered_pairs(session, city_ids=[o.city_id for o in others.values()] + [d.city_id])
    out: dict[int, str] = {}
    for i, w in enumerate(wishes):
        other = others.get(w.delegation_id)
        if other is None or other.id == d.id:
            raise Invalid(f"{w.delegation_id} is not another registered delegation here", f"wishes.{i}.delegation_id")
        key = (min(d.city_id, other.city_id), max(d.city_id, other.city_id))
        if w.wish == "follow_up" and key not in partnered:
            raise Invalid("a follow-up meeting is for cities that are already partners", f"wishes.{i}.wish")
        if w.wish != "none":
            out[w.delegation_id] = w.wish
    q.replace_wishes(session, conference_id=conference_id, from_id=delegation_id, wishes=out)
    return out


def wish_suggestions(
    session: Session, matchers: MatcherService, conference_id: int, delegation_id: int
) -> list[dict[str, Any]]:
    """The other attending delegations ranked by the matcher's pair score, each with its components, sectors
    (with reasons), whether the cities are already partners (a follow-up is possible) and the current wish."""
    d = get_delegation(session, conference_id, delegation_id)
    others = [
        o for o in q.conference_delegations(session, conference_id=conference_id, registered_only=True) if o.id != d.id
    ]
    if not others:
        return []
    built = matchers.get(session)
    row = built.table.row_of_id.get(d.city_id)
    cities = q.cities_of(session, ids=[o.city_id for o in others])
    partnered = q.partnered_pairs(session, city_ids=[o.city_id for o in others] + [d.city_id])
    current = q.wishes_of(session, delegation_id=delegation_id)
    rows = np.array([built.table.row_of_id.get(o.city_id, -1) for o in others], np.int64)
    known = rows >= 0
    scores = np.zeros(len(others))
    comps: dict[str, np.ndarray] = {}
    fits: list[list[Any]] = [[] for _ in others]
    if row is not None and known.any():
        all_comps = built.matcher.components_batch([row])  # one row against every city, vectorised
        scores[known] = built.matcher.blend(all_comps)[0][rows[known]]
        comps = {name: v[0] for name, v in all_comps.items()}
        known_fits = iter(built.matcher.sector_fits(row, rows[known]))
        fits = [next(known_fits) if k else [] for k in known]
    out: list[dict[str, Any]] = []
    for i, o in enumerate(others):
        c = {n: round(float(v[rows[i]]), 4) for n, v in comps.items() if known[i] and not np.isnan(v[rows[i]])}
        out.append(
            {
                "delegation_id": o.id,
                "city": city_brief(cities.get(o.city_id), o.city_id),
                "languages": list(o.languages or []),
                "score": round(float(scores[i]), 4),
                "components": c,
                "sectors": [
                    {"sector": f.sector, "label": label(f.sector), "score": f.score, "reason": f.reason}
                    for f in fits[i]
                ],
                "partners": (min(d.city_id, o.city_id), max(d.city_id, o.city_id)) in partnered,
                "wish": current.get(o.id or 0, "none"),
            }
        )
    out.sort(key=lambda r: (-r["score"], r["city"]["name"]))
    return out


# ---------------------------------------------------------------- the instance
@dataclass
class Context:
    """A conference as the optimiser sees it, and the way back to database ids."""

    conference: Conference
    instance: Instance
    delegations: list[Delegation]
    slots: list[ConferenceSlot]
    index_of_delegation: dict[int, int] = field(default_factory=dict)
    index_of_slot: dict[int, int] = field(default_factory=dict)
    cities: dict[int, City] = field(default_factory=dict)

    def name(self, i: int) -> str:
        return self.instance.names[i]


def pair_scores(built: Built, city_ids: list[int]) -> np.ndarray:
    """The matcher's symmetric pair scores among ``city_ids``, vectorised (a chunk of rows against every city)."""
    n = len(city_ids)
    out = np.zeros((n, n))
    rows = np.array([built.table.row_of_id.get(c, -1) for c in city_ids], np.int64)
    known = np.flatnonzero(rows >= 0)
    for start in range(0, known.size, 16):
        part = known[start : start + 16]
        s = built.matcher.score_rows(rows[part])  # (len(part), all cities)
        out[np.ix_(part, known)] = s[:, rows[known]]
    return np.maximum(out, out.T)


def build_context(session: Session, conference_id: int, matchers: MatcherService | None = None) -> Context:
    """The conference's ``Instance``; pair scores from the matcher when ``matchers`` is given (else zeros)."""
    conf = get_conference(session, conference_id)
    slots = q.conference_slots(session, conference_id=conference_id)
    dels = q.conference_delegations(session, conference_id=conference_id)
    cities = q.cities_of(session, ids=[d.city_id for d in dels])
    slot_index = {s.id or 0: k for k, s in enumerate(slots)}
    del_index = {d.id or 0: i for i, d in enumerate(dels)}
    n, s_count = len(dels), len(slots)
    available = np.zeros((n, s_count), bool)
    for i, d in enumerate(dels):
        if d.status != "registered":
            continue
        for sid in d.slot_ids or []:
            if sid in slot_index and not slots[slot_index[sid]].lost:
                available[i, slot_index[sid]] = True
    tables = np.array([0 if s.lost else s.tables for s in slots], np.int64)
    langs = sorted({lang for s in slots for lang in (s.interpreters or {})})
    interpreters = {
        lang: np.array([0 if s.lost else int((s.interpreters or {}).get(lang, 0)) for s in slots], np.int64)
        for lang in langs
        if lang != conf.pivot_language
    }
    wishes: dict[tuple[int, int], str] = {}
    for w in q.conference_wishes(session, conference_id=conference_id):
        if w.from_id in del_index and w.to_id in del_index:
            wishes[(del_index[w.from_id], del_index[w.to_id])] = w.kind
    scores = pair_scores(matchers.get(session), [d.city_id for d in dels]) if matchers and n else np.zeros((n, n))
    names = tuple(cities[d.city_id].name if d.city_id in cities else f"place {d.city_id}" for d in dels)
    instance = Instance(
        tables=tables,
        languages=tuple(frozenset(d.languages or ()) for d in dels),
        available=available,
        wishes=wishes,  # type: ignore[arg-type]  # the Instance accepts a sparse dict
        scores=scores,
        interpreters=interpreters,
        pivot=conf.pivot_language,
        names=names,
    )
    return Context(conf, instance, dels, slots, del_index, slot_index, cities)


def _as_meetings(ctx: Context, rows: list[ConferenceMeeting]) -> dict[int, Meeting]:
    out = {}
    for r in rows:
        if r.a_id in ctx.index_of_delegation and r.b_id in ctx.index_of_delegation and r.slot_id in ctx.index_of_slot:
            a, b = sorted((ctx.index_of_delegation[r.a_id], ctx.index_of_delegation[r.b_id]))
            out[r.id or 0] = Meeting(a, b, ctx.index_of_slot[r.slot_id], r.table_no, r.interpreter, r.value, r.must)
    return out


def _key(m: Meeting) -> tuple[int, int, int, int, str | None]:
    return (m.a, m.b, m.slot, m.table, m.interpreter)


def _store(session: Session, ctx: Context, sched: Schedule, info: dict[str, Any]) -> dict[str, Any]:
    """Write the schedule: meetings identical to stored ones keep their rows (and their match links)."""
    conf_id = ctx.conference.id or 0
    stored = _as_meetings(ctx, q.conference_meetings(session, conference_id=conf_id))
    by_key = {_key(m): mid for mid, m in stored.items()}
    keep_ids, new = [], []
    for m in sched.meetings:
        mid = by_key.get(_key(m))
        if mid is not None:
            keep_ids.append(mid)
            continue
        new.append(
            {
                "slot_id": ctx.slots[m.slot].id,
                "a_id": ctx.delegations[m.a].id,
                "b_id": ctx.delegations[m.b].id,
                "table_no": m.table,
                "interpreter": m.interpreter,
                "value": round(m.value, 6),
                "must": m.must,
            }
        )
    q.replace_meetings(session, conference_id=conf_id, keep_ids=keep_ids, new=new)
    summary = {
        "status": sched.status,
        "objective": _num(sched.objective),
        "bound": _num(sched.bound),
        "gap": _num(sched.gap),
        "must_met": sched.must_met,
        "must_total": sched.must_total,
        "meetings": len(sched.meetings),
        "solve_s": round(sched.solve_s, 3),
        "at": datetime.now(UTC).isoformat(),
        **info,
    }
    q.set_schedule_info(session, conference=ctx.conference, info=summary)
    session.commit()
    return summary


def schedule(
    session: Session, user: Actor | None, matchers: MatcherService, conference_id: int, *, time_limit: float
) -> dict[str, Any]:
    """Solve the conference from scratch (the MILP within ``time_limit``, never worse than greedy) and store it,
    with the greedy schedule's objective for comparison. ``user`` None is the command line (trusted)."""
    if user is not None:
        _require_organiser(user)
    conf_id = get_conference(session, conference_id).id or 0
    if any(m.match_id for m in q.conference_meetings(session, conference_id=conf_id)):
        raise Conflict("meetings of this schedule already became match proposals; change it by cancelling instead")
    ctx = build_context(session, conf_id, matchers)
    sched = solve(ctx.instance, time_limit)
    base = greedy(ctx.instance)
    info = {
        "kind": "solve",
        "time_limit": time_limit,
        "greedy_objective": _num(base.objective),
        "greedy_must_met": base.must_met,
        "vs_greedy_pct": _num(100.0 * (sched.objective / base.objective - 1.0)) if base.objective > 0 else None,
    }
    return _store(session, ctx, sched, info)


def _replan(session: Session, ctx: Context, change: str, time_limit: float) -> dict[str, Any]:
    previous = list(_as_meetings(ctx, q.conference_meetings(session, conference_id=ctx.conference.id or 0)).values())
    sched = reschedule(ctx.instance, previous, time_limit)
    names = ctx.instance.names
    info = {
        "kind": "reschedule",
        "change": change,
        "time_limit": time_limit,
        "kept": len(sched.stats.get("kept", [])),
        "released": [f"{names[a]} / {names[b]}" for a, b in sched.stats.get("released", [])],
        "greedy_objective": _num(float(sched.stats.get("greedy_objective", math.nan))),
    }
    return _store(session, ctx, sched, info)


def cancel_delegation(
    session: Session,
    user: Actor | None,
    matchers: MatcherService,
    conference_id: int,
    delegation_id: int,
    *,
    time_limit: float,
) -> dict[str, Any] | None:
    """The delegation cancels; if a schedule exists, it is re-planned keeping every unaffected meeting."""
    d = get_delegation(session, conference_id, delegation_id)
    if user is not None:
        _require_delegation_actor(user, d)
    if d.status == "cancelled":
        return None
    q.set_delegation_status(session, delegation=d, status="cancelled")
    session.commit()
    if not q.conference_meetings(session, conference_id=conference_id):
        return None
    ctx = build_context(session, conference_id, matchers)
    return _replan(session, ctx, f"{ctx.name(ctx.index_of_delegation[delegation_id])} cancelled", time_limit)


def lose_slot(
    session: Session,
    user: Actor | None,
    matchers: MatcherService,
    conference_id: int,
    slot_id: int,
    *,
    time_limit: float,
) -> dict[str, Any] | None:
    """A slot is lost (room gone, programme change); its meetings move where they can, the rest stays."""
    if user is not None:
        _require_organiser(user)
    get_conference(session, conference_id)
    slot = q.get_slot(session, conference_id=conference_id, slot_id=slot_id)
    if slot.lost:
        return None
    q.mark_slot_lost(session, slot=slot)
    session.commit()
    if not q.conference_meetings(session, conference_id=conference_id):
        return None
    ctx = build_context(session, conference_id, matchers)
    return _replan(session, ctx, f"slot {slot.position + 1} lost", time_limit)


# ---------------------------------------------------------------- outputs
def _meeting_rows(session: Session, ctx: Context, rows: list[ConferenceMeeting]) -> list[dict[str, Any]]:
    statuses = q.match_statuses(session, ids=[r.match_id for r in rows])
    dels = {d.id: d for d in ctx.delegations}
    slots = {s.id: s for s in ctx.slots}
    out = []
    for r in sorted(rows, key=lambda r: (slots[r.slot_id].position, r.table_no)):
        s = slots[r.slot_id]
        a, b = dels[r.a_id], dels[r.b_id]
        out.append(
            {
                "id": r.id,
                "slot_id": r.slot_id,
                "slot": s.position + 1,
                "starts_at": _local(s.starts_at, ctx.conference.timezone),
                "ends_at": _local(s.ends_at, ctx.conference.timezone),
                "table": r.table_no + 1,
                "interpreter": r.interpreter,
                "must": r.must,
                "value": round(r.value, 4),
                "a": {"delegation_id": a.id, **city_brief(ctx.cities.get(a.city_id), a.city_id)},
                "b": {"delegation_id": b.id, **city_brief(ctx.cities.get(b.city_id), b.city_id)},
                "match_id": r.match_id,
                "match_status": statuses.get(r.match_id) if r.match_id else None,
            }
        )
    return out


def agenda(session: Session, conference_id: int, delegation_id: int) -> dict[str, Any]:
    """A delegation's meetings in time order, each with the partner delegation's place, table and interpreter."""
    d = get_delegation(session, conference_id, delegation_id)
    ctx = build_context(session, conference_id)
    rows = _meeting_rows(
        session, ctx, q.delegation_meetings(session, conference_id=conference_id, delegation_id=delegation_id)
    )
    for r in rows:
        r["partner"] = r["b"] if r["a"]["delegation_id"] == d.id else r["a"]
    me = delegations_public(session, [d])[0]
    return {"conference": conference_public(session, ctx.conference), "delegation": me, "meetings": rows}


def agenda_ics(session: Session, conference_id: int, delegation_id: int) -> bytes:
    """The agenda as an iCalendar file: one VEVENT per meeting (times in UTC)."""
    from icalendar import Calendar, Event

    ag = agenda(session, conference_id, delegation_id)
    conf, me = ag["conference"], ag["delegation"]
    cal = Calendar()
    cal.add("prodid", "-//Twinning//Conference mode//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{conf['name']} — {me['city']['name']}")
    stamp = datetime.now(UTC)
    for m in ag["meetings"]:
        ev = Event()
        ev.add("uid", f"conference-{conf['id']}-meeting-{m['id']}@twinning")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", datetime.fromisoformat(m["starts_at"]).astimezone(UTC))
        ev.add("dtend", datetime.fromisoformat(m["ends_at"]).astimezone(UTC))
        ev.add("summary", f"{me['city']['name']} meets {m['partner']['name']}")
        ev.add("location", f"{conf['place']}, table {m['table']}".strip(", "))
        note = f"Slot {m['slot']}, table {m['table']}."
        if m["interpreter"]:
            note += f" Interpreter: {m['interpreter']}–{conf['pivot_language']}."
        if m["must"]:
            note += " Both delegations asked for this meeting (must meet)."
        ev.add("description", note)
        cal.add_component(ev)
    return cal.to_ical()


def grid(session: Session, conference_id: int) -> dict[str, Any]:
    """The organisers' grid: for each slot, each table's meeting (or None)."""
    ctx = build_context(session, conference_id)
    rows = _meeting_rows(session, ctx, q.conference_meetings(session, conference_id=conference_id))
    by_cell = {(r["slot_id"], r["table"]): r for r in rows}
    n_tables = max([s.tables for s in ctx.slots] + [0])
    out = []
    for s in ctx.slots:
        out.append(
            {
                **slot_public(s, ctx.conference.timezone),
                "cells": [by_cell.get((s.id, t + 1)) for t in range(n_tables)],
            }
        )
    return {
        "conference": conference_public(session, ctx.conference),
        "tables": n_tables,
        "slots": out,
        "meetings": len(rows),
    }


def unmet(session: Session, conference_id: int) -> list[dict[str, Any]]:
    """Mutual must-meet pairs without a meeting, each with the reason (from the optimiser's diagnosis)."""
    ctx = build_context(session, conference_id)
    meetings = list(_as_meetings(ctx, q.conference_meetings(session, conference_id=conference_id)).values())
    out = []
    for u in explain_unmet(ctx.instance, meetings):
        a, b = ctx.delegations[u.a], ctx.delegations[u.b]
        out.append(
            {
                "a": {"delegation_id": a.id, **city_brief(ctx.cities.get(a.city_id), a.city_id)},
                "b": {"delegation_id": b.id, **city_brief(ctx.cities.get(b.city_id), b.city_id)},
                "reason": u.reason,
                "reason_label": UNMET_LABELS.get(u.reason, u.reason),
                "detail": u.detail,
            }
        )
    return out


# ---------------------------------------------------------------- after the conference
def propose_from_meeting(
    session: Session,
    user: Any,
    settings: Settings,
    conference_id: int,
    meeting_id: int,
    *,
    message: str,
    sectors: list[str],
) -> int:
    """Turn a meeting into a match proposal (the match workflow's ``propose``) and record it on the meeting.

    The proposing city is the user's side (an official of either city); an admin proposes for the first side.
    Returns the match id."""
    get_conference(session, conference_id)
    m = q.get_meeting(session, conference_id=conference_id, meeting_id=meeting_id)
    if m.match_id is not None:
        raise Conflict(f"this meeting already became match {m.match_id}", "meeting_id")
    a = get_delegation(session, conference_id, m.a_id)
    b = get_delegation(session, conference_id, m.b_id)
    if user.role == "official" and b.city_id in user.cities and a.city_id not in user.cities:
        a, b = b, a
    text = message.strip() or f"We met at {get_conference(session, conference_id).name} and want to work together."
    match = workflow.propose(
        session, user, settings, city_id=a.city_id, partner_id=b.city_id, message=text, sectors=sectors
    )
    if not q.link_meeting_match(session, meeting_id=meeting_id, match_id=match.id or 0):
        session.rollback()
        raise Conflict("this meeting already became a match proposal", "meeting_id")
    session.commit()
    return match.id or 0
