"""Plain data for conference mode: the instance (who, when, which languages, who wishes what) and the schedule.

Everything is indexed: delegations ``0..D-1``, slots ``0..S-1``, tables ``0..tables[s]-1``. The API layer keeps the
mapping to database ids, names and times.

Wishes are per *ordered* pair: ``wishes[i, j]`` is what delegation ``i`` said about ``j``, one of ``NO_WISH``,
``WOULD_LIKE``, ``MUST_MEET`` or ``NO_THANKS``. An existing sister city asking for a follow-up meeting is just a wish
(``"follow_up"`` is accepted as an alias of ``"would_like"``; the caller may pass ``"must_meet"`` instead).

Interpreters: ``interpreters[L][s]`` interpreters for language ``L`` are on duty in slot ``s``. An interpreter of
``L`` works between ``L`` and the pivot language (English by default), so a pair without a common language can meet
with one interpreter of ``L`` when one side speaks ``L`` and the other speaks the pivot. Pairs that no single
interpreter can bridge (e.g. Chinese and Japanese only) cannot meet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NO_THANKS = -1
NO_WISH = 0
WOULD_LIKE = 1
MUST_MEET = 2
WISH_CODES: dict[str, int] = {
    "no_thanks": NO_THANKS,
    "none": NO_WISH,
    "would_like": WOULD_LIKE,
    "follow_up": WOULD_LIKE,
    "must_meet": MUST_MEET,
}

# Reasons a mutual must-meet pair is not in the schedule (``Unmet.reason``).
CANCELLED = "cancelled"  # a side has no available slot left (cancelled / not attending)
NO_COMMON_SLOT = "no_common_slot"  # both attend, but never in the same slot
NO_INTERPRETER = "no_interpreter"  # no common language and no interpreter on duty in any common slot
NO_TABLE = "no_table"  # every common slot that could work has no table left (or lost its tables)
CAPACITY = "capacity"  # feasible alone, crowded out by other must-meets (busy delegations / interpreters)


@dataclass(frozen=True)
class Weights:
    """Value of one meeting; documented in the package docstring. Mutual must-meets are lexicographically first:
    the solver first maximises their number, then the total value with that number held."""

    score: float = 1.0  # times the matcher pair score in [0, 1]
    would_like: float = 0.3  # per side that said would_like (a follow-up counts as would_like)
    one_sided_must: float = 0.6  # per side that said must_meet (a mutual must-meet gets it twice, and comes first)
    min_score_unwished: float = 0.5  # a pair nobody wished for is a candidate only from this score up


@dataclass(frozen=True)
class Instance:
    """One conference. Arrays are coerced on construction; ``wishes`` and ``scores`` also accept sparse dicts.

    - ``tables``: (S,) tables per slot.
    - ``languages``: per delegation, the language codes it speaks.
    - ``available``: (D, S) bool, delegation attends slot.
    - ``wishes``: (D, D) int8 ordered-pair wishes, or ``{(i, j): "must_meet" | "would_like" | ...}``.
    - ``scores``: (D, D) symmetric matcher pair score in [0, 1], or ``{(i, j): score}`` (either order, missing = 0).
    - ``interpreters``: ``{language: (S,) capacity}`` of interpreters between that language and ``pivot``.
    """

    tables: np.ndarray
    languages: tuple[frozenset[str], ...]
    available: np.ndarray
    wishes: np.ndarray
    scores: np.ndarray
    interpreters: Mapping[str, np.ndarray] = field(default_factory=dict)
    pivot: str = "en"
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        tables = np.asarray(self.tables, np.int64).reshape(-1)
        langs = tuple(frozenset(x) for x in self.languages)
        n, s = len(langs), tables.shape[0]
        avail = np.asarray(self.available, bool).reshape(n, s)
        interp = {str(k): np.asarray(v, np.int64).reshape(s) for k, v in dict(self.interpreters).items()}
        names = tuple(self.names) if self.names else tuple(f"D{i}" for i in range(n))
        for name, value in (
            ("tables", tables),
            ("languages", langs),
            ("available", avail),
            ("wishes", _dense_wishes(self.wishes, n)),
            ("scores", _dense_scores(self.scores, n)),
            ("interpreters", interp),
            ("names", names),
        ):
            object.__setattr__(self, name, value)
        if len(names) != n:
            raise ValueError("names must have one entry per delegation")
        if (tables < 0).any() or any((v < 0).any() for v in interp.values()):
            raise ValueError("tables and interpreter capacities must be non-negative")

    @property
    def n_delegations(self) -> int:
        return len(self.languages)

    @property
    def n_slots(self) -> int:
        return int(self.tables.shape[0])

    def replace(self, **changes: Any) -> Instance:
        return dataclasses.replace(self, **changes)

    def cancel(self, delegation: int) -> Instance:
        """The same conference with ``delegation`` cancelled (no available slot left)."""
        avail = self.available.copy()
        avail[delegation] = False
        return self.replace(available=avail)

    def lose_slot(self, slot: int) -> Instance:
        """The same conference with ``slot`` lost (no tables, nobody available)."""
        tables, avail = self.tables.copy(), self.available.copy()
        tables[slot] = 0
        avail[:, slot] = False
        return self.replace(tables=tables, available=avail)


@dataclass(frozen=True)
class Meeting:
    """Delegations ``a < b`` meet in ``slot`` at ``table``; ``interpreter`` is the language of the interpreter
    they use (``None`` when they share a language)."""

    a: int
    b: int
    slot: int
    table: int
    interpreter: str | None = None
    value: float = 0.0
    must: bool = False  # a mutual must-meet

    @property
    def pair(self) -> tuple[int, int]:
        return (self.a, self.b)


@dataclass(frozen=True)
class Unmet:
    """A mutual must-meet pair ``a < b`` not in the schedule, with a reason code and a human-readable detail."""

    a: int
    b: int
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Schedule:
    """A schedule and how it was found.

    ``objective`` is the total meeting value (see ``Weights``); ``must_met`` of ``must_total`` mutual must-meet pairs
    are met, and schedules compare lexicographically by ``(must_met, objective)`` (``key``). ``bound`` is a proven
    upper bound on ``objective`` given ``must_met`` (the solver's dual bound; ``objective`` itself when optimal,
    ``nan`` for greedy) and ``gap = (bound - objective) / objective``. ``status`` is ``optimal``, ``time_limit``,
    ``greedy`` or ``greedy_fallback`` (the MILP found nothing better than greedy in time)."""

    meetings: tuple[Meeting, ...]
    objective: float
    must_met: int
    must_total: int
    bound: float = float("nan")
    gap: float = float("nan")
    status: str = "greedy"
    solve_s: float = 0.0
    unmet: tuple[Unmet, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, float]:
        return (self.must_met, round(self.objective, 9))

    def by_slot(self) -> dict[int, list[Meeting]]:
        out: dict[int, list[Meeting]] = {}
        for m in sorted(self.meetings, key=lambda m: (m.slot, m.table)):
            out.setdefault(m.slot, []).append(m)
        return out


def _dense_wishes(wishes: Any, n: int) -> np.ndarray:
    if isinstance(wishes, Mapping):
        out = np.zeros((n, n), np.int8)
        for (i, j), w in wishes.items():
            out[i, j] = WISH_CODES[w] if isinstance(w, str) else int(w)
    else:
        out = np.asarray(wishes, np.int8).reshape(n, n).copy()
    if not np.isin(out, (NO_THANKS, NO_WISH, WOULD_LIKE, MUST_MEET)).all():
        raise ValueError("unknown wish code")
    np.fill_diagonal(out, NO_WISH)
    return out


def _dense_scores(scores: Any, n: int) -> np.ndarray:
    if isinstance(scores, Mapping):
        out = np.zeros((n, n), np.float64)
        for (i, j), v in scores.items():
            out[i, j] = out[j, i] = float(v)
    else:
        out = np.asarray(scores, np.float64).reshape(n, n)
        out = np.maximum(out, out.T)  # symmetric; a one-sided entry counts for the pair
    out = np.clip(np.nan_to_num(out), 0.0, 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def pairs_of(meetings: Sequence[Meeting]) -> set[tuple[int, int]]:
    return {m.pair for m in meetings}
