"""Property-based checks of the conference scheduler on small random instances (hypothesis).

Every constraint holds for both the MILP and greedy; greedy never beats the MILP; and the MILP meets as many mutual
must-meet pairs as a brute-force search says is possible (so all of them whenever all can be met)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.conference import Instance, check, greedy, mutual_must_pairs, solve
from matcher.conference.check import interpreter_ok

LANGS = [frozenset({"en"}), frozenset({"zh"}), frozenset({"en", "zh"}), frozenset({"ja"})]


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    n = draw(st.integers(2, 7))
    s = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    wishes = rng.choice([-1, 0, 0, 0, 1, 2, 2], size=(n, n)).astype(np.int8)
    upper = np.triu(rng.random((n, n)) < 0.3, 1)  # some pairs made mutual must-meets
    wishes[upper | upper.T] = 2
    return Instance(
        tables=rng.integers(0, 4, s),
        languages=[LANGS[k] for k in rng.choice(4, n, p=[0.45, 0.35, 0.1, 0.1])],
        available=rng.random((n, s)) < 0.8,
        wishes=wishes,
        scores=rng.random((n, n)),
        interpreters={"zh": rng.integers(0, 3, s), "ja": rng.integers(0, 2, s)},
    )


def max_must_met(inst: Instance) -> int:
    """Brute force: the most mutual must-meet pairs that can be scheduled together."""
    pairs = mutual_must_pairs(inst)
    options = {
        p: [
            (s, lang)
            for s in range(inst.n_slots)
            if inst.available[p[0], s] and inst.available[p[1], s] and inst.tables[s] > 0
            for lang in [None, *inst.interpreters]
            if interpreter_ok(inst, p[0], p[1], lang) and (lang is None or inst.interpreters[lang][s] > 0)
        ]
        for p in pairs
    }
    best = 0

    def search(i: int, met: int, busy: set[tuple[int, int]], tables: dict[int, int], interp: dict) -> None:
        nonlocal best
        best = max(best, met)
        if i == len(pairs) or met + len(pairs) - i <= best:
            return
        a, b = pairs[i]
        for s, lang in options[pairs[i]]:
            if (a, s) in busy or (b, s) in busy or tables.get(s, 0) >= inst.tables[s]:
                continue
            if lang is not None and interp.get((lang, s), 0) >= inst.interpreters[lang][s]:
                continue
            tables[s] = tables.get(s, 0) + 1
            if lang is not None:
                interp[(lang, s)] = interp.get((lang, s), 0) + 1
            search(i + 1, met + 1, busy | {(a, s), (b, s)}, tables, interp)
            tables[s] -= 1
            if lang is not None:
                interp[(lang, s)] -= 1
        search(i + 1, met, busy, tables, interp)

    search(0, 0, set(), {}, {})
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_constraints_hold_and_must_meets_are_maximal(inst: Instance) -> None:
    res = solve(inst, 5.0, mip_rel_gap=0.0)
    base = greedy(inst)
    assert check(inst, res) == []
    assert check(inst, base) == []
    assert res.status == "optimal"
    assert res.key >= base.key  # greedy never beats the MILP, lexicographically
    assert res.must_met == max_must_met(inst)
    met = {m.pair for m in res.meetings}
    assert {(u.a, u.b) for u in res.unmet} == {p for p in mutual_must_pairs(inst) if p not in met}
    assert res.objective == sum(m.value for m in res.meetings)
    assert res.bound >= res.objective - 1e-6


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.data())
def test_reschedule_keeps_what_is_still_feasible(inst: Instance, data: st.DataObject) -> None:
    from matcher.conference import keepable, reschedule

    first = solve(inst, 5.0)
    d = data.draw(st.integers(0, inst.n_delegations - 1))
    changed = inst.cancel(d)
    again = reschedule(changed, first, 5.0)
    assert check(changed, again) == []
    placed = {(m.pair, m.slot, m.table, m.interpreter) for m in again.meetings}
    kept = keepable(changed, first.meetings)
    assert {m.pair for m in kept} == {m.pair for m in first.meetings if d not in m.pair}
    assert all((m.pair, m.slot, m.table, m.interpreter) in placed for m in kept)


def test_brute_force_helper_on_a_conflict() -> None:
    # three mutual must-meets in a triangle, one slot: only one can be met
    w = np.full((3, 3), 2, np.int8)
    inst = Instance([3], [{"en"}] * 3, np.ones((3, 1), bool), w, np.zeros((3, 3)))
    assert max_must_met(inst) == 1
    res = solve(inst, 5.0)
    assert res.must_met == 1 and len(res.unmet) == 2
