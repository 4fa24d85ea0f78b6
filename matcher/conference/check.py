"""Validating a schedule, numbering its tables, and explaining unmet mutual must-meets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .candidates import language_matrix
from .model import (
    CANCELLED,
    CAPACITY,
    MUST_MEET,
    NO_COMMON_SLOT,
    NO_INTERPRETER,
    NO_TABLE,
    NO_THANKS,
    Instance,
    Meeting,
    Schedule,
    Unmet,
)


def interpreter_ok(instance: Instance, a: int, b: int, interpreter: str | None) -> bool:
    """Can ``a`` and ``b`` talk: a shared language (``interpreter is None``), or one interpreter that bridges them."""
    la, lb = instance.languages[a], instance.languages[b]
    if interpreter is None:
        return bool(la & lb)
    piv = instance.pivot
    return (
        not (la & lb)
        and interpreter in instance.interpreters
        and interpreter != piv
        and ((interpreter in la and piv in lb) or (interpreter in lb and piv in la))
    )


def check(instance: Instance, schedule: Schedule | Sequence[Meeting]) -> list[str]:
    """Every violated constraint, as a readable line; empty when the schedule is feasible."""
    meetings = schedule.meetings if isinstance(schedule, Schedule) else tuple(schedule)
    n, s_count = instance.n_delegations, instance.n_slots
    out: list[str] = []
    seen_pair: Counter[tuple[int, int]] = Counter()
    seen_busy: Counter[tuple[int, int]] = Counter()
    seen_table: Counter[tuple[int, int]] = Counter()
    per_slot: Counter[int] = Counter()
    interp: Counter[tuple[str, int]] = Counter()
    for m in meetings:
        tag = f"meeting {m.a}-{m.b} in slot {m.slot}"
        if not (0 <= m.a < m.b < n) or not (0 <= m.slot < s_count):
            out.append(f"{tag}: bad indices")
            continue
        for d in (m.a, m.b):
            if not instance.available[d, m.slot]:
                out.append(f"{tag}: delegation {d} not available")
            seen_busy[(d, m.slot)] += 1
        if not 0 <= m.table < instance.tables[m.slot]:
            out.append(f"{tag}: table {m.table} not in 0..{instance.tables[m.slot] - 1}")
        if NO_THANKS in (instance.wishes[m.a, m.b], instance.wishes[m.b, m.a]):
            out.append(f"{tag}: no_thanks")
        if not interpreter_ok(instance, m.a, m.b, m.interpreter):
            out.append(f"{tag}: no way to talk with interpreter {m.interpreter!r}")
        seen_pair[m.pair] += 1
        seen_table[(m.slot, m.table)] += 1
        per_slot[m.slot] += 1
        if m.interpreter is not None:
            interp[(m.interpreter, m.slot)] += 1
    out += [f"pair {p} meets {c} times" for p, c in seen_pair.items() if c > 1]
    out += [f"delegation {d} has {c} meetings in slot {s}" for (d, s), c in seen_busy.items() if c > 1]
    out += [f"slot {s} table {t} used {c} times" for (s, t), c in seen_table.items() if c > 1]
    out += [
        f"slot {s}: {c} meetings > {instance.tables[s]} tables" for s, c in per_slot.items() if c > instance.tables[s]
    ]
    out += [
        f"slot {s}: {c} {lang} interpreters needed > {instance.interpreters[lang][s]}"
        for (lang, s), c in interp.items()
        if lang in instance.interpreters and c > instance.interpreters[lang][s]
    ]
    return out


def assign_tables(instance: Instance, meetings: Iterable[Meeting], fixed: Iterable[Meeting] = ()) -> list[Meeting]:
    """Number the tables slot by slot: ``fixed`` meetings keep theirs, the others take the lowest free numbers."""
    taken: dict[int, set[int]] = {}
    out: list[Meeting] = []
    for m in fixed:
        taken.setdefault(m.slot, set()).add(m.table)
        out.append(m)
    fixed_pairs = {m.pair for m in out}
    for m in sorted((m for m in meetings if m.pair not in fixed_pairs), key=lambda m: (m.slot, -m.value, m.a, m.b)):
        used = taken.setdefault(m.slot, set())
        table = next(t for t in range(int(instance.tables[m.slot]) + len(used) + 1) if t not in used)
        used.add(table)
        out.append(Meeting(m.a, m.b, m.slot, table, m.interpreter, m.value, m.must))
    return sorted(out, key=lambda m: (m.slot, m.table))


def mutual_must_pairs(instance: Instance) -> list[tuple[int, int]]:
    w = instance.wishes
    a, b = np.nonzero(np.triu((w == MUST_MEET) & (w.T == MUST_MEET), 1))
    return list(zip(a.tolist(), b.tolist(), strict=True))


def explain_unmet(instance: Instance, meetings: Sequence[Meeting]) -> list[Unmet]:
    """Why each mutual must-meet pair missing from ``meetings`` is missing (see the reason codes in ``model``)."""
    met = {m.pair for m in meetings}
    busy = {(d, m.slot) for m in meetings for d in m.pair}
    per_slot = Counter(m.slot for m in meetings)
    interp: Counter[tuple[str, int]] = Counter((m.interpreter, m.slot) for m in meetings if m.interpreter is not None)
    lmat, col = language_matrix(instance)
    piv = col[instance.pivot]
    out: list[Unmet] = []
    for a, b in mutual_must_pairs(instance):
        if (a, b) in met:
            continue
        name = f"{instance.names[a]} / {instance.names[b]}"
        gone = [instance.names[d] for d in (a, b) if not instance.available[d].any()]
        if gone:
            out.append(Unmet(a, b, CANCELLED, f"{' and '.join(gone)} cancelled"))
            continue
        common = np.flatnonzero(instance.available[a] & instance.available[b])
        if common.size == 0:
            out.append(Unmet(a, b, NO_COMMON_SLOT, f"{name} are never available in the same slot"))
            continue
        # slot -> interpreter languages that would do (None = shared language)
        ways: dict[int, list[str | None]] = {}
        for s in common.tolist():
            if (lmat[a] & lmat[b]).any():
                ways[s] = [None]
            else:
                ways[s] = [
                    lang
                    for lang, cap in instance.interpreters.items()
                    if cap[s] > 0
                    and lang != instance.pivot
                    and ((lmat[a, col[lang]] and lmat[b, piv]) or (lmat[b, col[lang]] and lmat[a, piv]))
                ]
        ways = {s: w for s, w in ways.items() if w}
        if not ways:
            out.append(Unmet(a, b, NO_INTERPRETER, f"{name} share no language and no interpreter is on duty"))
            continue
        if all(instance.tables[s] == 0 for s in ways):
            out.append(Unmet(a, b, NO_TABLE, f"{name}: their common slots have no tables"))
            continue
        blockers: dict[int, list[str]] = {}
        for s, langs in ways.items():
            why = [f"{instance.names[d]} busy" for d in (a, b) if (d, s) in busy]
            if per_slot[s] >= instance.tables[s]:
                why.append("tables full")
            named = [x for x in langs if x is not None]
            if len(named) == len(langs) and all(interp[(x, s)] >= instance.interpreters[x][s] for x in named):
                why.append("interpreters busy")
            blockers[s] = why
        detail = "; ".join(f"slot {s}: {', '.join(w) or 'free'}" for s, w in sorted(blockers.items()))
        if all(w == ["tables full"] for w in blockers.values()):
            reason = NO_TABLE
        elif all(w == ["interpreters busy"] for w in blockers.values()):
            reason = NO_INTERPRETER
        else:
            reason = CAPACITY
        out.append(Unmet(a, b, reason, f"{name}: {detail}"))
    return out
