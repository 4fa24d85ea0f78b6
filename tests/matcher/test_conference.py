"""Conference scheduler: a hand-solved instance, re-scheduling, unmet reasons, and the benchmark at real scale."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.conference import (
    CANCELLED,
    NO_COMMON_SLOT,
    NO_INTERPRETER,
    Instance,
    Scale,
    check,
    greedy,
    random_instance,
    reschedule,
    solve,
)
from matcher.conference.bench import format_table, run_benchmark


def tiny() -> Instance:
    """4 delegations, 2 slots, 1 table each; zh interpreter only in slot 1; delegation 3 only in slot 0.

    Values: (0,1) mutual must 0.2 + 2 * 0.6 = 1.4; (0,3) 0.9; (1,3) 0.8; (1,2) 0.6 (unwished, needs the interpreter,
    so slot 1); (2,3) 0.4 + 0.3 (needs the interpreter in slot 1, but 3 is away); (0,2) no_thanks.
    Greedy puts the must-meet in the earliest slot, 0, and can then only add (1,2) in slot 1: 2.0.
    Optimum: (0,3) in slot 0 and the must-meet in slot 1: 2.3."""
    scores = {(0, 1): 0.2, (0, 3): 0.9, (1, 3): 0.8, (2, 3): 0.4, (1, 2): 0.6, (0, 2): 0.7}
    wishes = {(0, 1): "must_meet", (1, 0): "must_meet", (2, 3): "would_like", (0, 2): "no_thanks"}
    return Instance(
        tables=[1, 1],
        languages=[{"en"}, {"en"}, {"zh"}, {"en"}],
        available=[[1, 1], [1, 1], [1, 1], [1, 0]],
        wishes=wishes,
        scores=scores,
        interpreters={"zh": [0, 1]},
    )


def test_tiny_instance_solved_to_hand_computed_optimum() -> None:
    inst = tiny()
    res = solve(inst, 5.0)
    assert check(inst, res) == []
    assert res.status == "optimal"
    assert res.objective == pytest.approx(2.3)
    assert res.bound == pytest.approx(2.3) and res.gap == pytest.approx(0.0, abs=1e-9)
    assert {(m.pair, m.slot, m.table, m.interpreter) for m in res.meetings} == {
        ((0, 3), 0, 0, None),
        ((0, 1), 1, 0, None),
    }
    assert res.must_met == res.must_total == 1 and res.unmet == ()
    g = greedy(inst)
    assert check(inst, g) == []
    assert g.objective == pytest.approx(2.0) and g.must_met == 1
    assert {(m.pair, m.slot, m.interpreter) for m in g.meetings} == {((0, 1), 0, None), ((1, 2), 1, "zh")}


def test_unmet_reasons() -> None:
    inst = Instance(
        tables=[2, 2],
        languages=[{"en"}, {"zh"}, {"en"}, {"en"}, {"en"}, {"ja"}],
        available=[[1, 1], [1, 1], [1, 0], [0, 1], [0, 0], [1, 1]],
        wishes={(0, 1): 2, (1, 0): 2, (2, 3): 2, (3, 2): 2, (0, 4): 2, (4, 0): 2, (1, 5): 2, (5, 1): 2},
        scores=np.zeros((6, 6)),
        interpreters={"zh": [0, 0]},
    )
    res = solve(inst, 5.0)
    assert check(inst, res) == [] and res.meetings == ()
    reasons = {(u.a, u.b): u.reason for u in res.unmet}
    assert reasons == {(0, 1): NO_INTERPRETER, (2, 3): NO_COMMON_SLOT, (0, 4): CANCELLED, (1, 5): NO_INTERPRETER}


SMALL = Scale(delegations=20, slots=4, tables=6, interpreters=2)


def test_reschedule_after_cancellation_keeps_unaffected_meetings() -> None:
    inst = random_instance(SMALL, seed=3)
    first = solve(inst, 5.0)
    assert check(inst, first) == []
    gone = max(range(inst.n_delegations), key=lambda d: sum(d in m.pair for m in first.meetings))
    changed = inst.cancel(gone)
    again = reschedule(changed, first, 5.0)
    assert check(changed, again) == []
    placed = {(m.pair, m.slot, m.table, m.interpreter) for m in again.meetings}
    unaffected = [m for m in first.meetings if gone not in m.pair]
    assert all((m.pair, m.slot, m.table, m.interpreter) in placed for m in unaffected)
    assert not any(gone in m.pair for m in again.meetings)
    assert sorted(again.stats["released"]) == sorted(m.pair for m in first.meetings if gone in m.pair)
    assert all(u.reason == CANCELLED for u in again.unmet if gone in (u.a, u.b))


def test_reschedule_after_losing_a_slot_moves_only_its_meetings() -> None:
    inst = random_instance(SMALL, seed=5)
    first = solve(inst, 5.0)
    changed = inst.lose_slot(1)
    again = reschedule(changed, first, 5.0)
    assert check(changed, again) == []
    placed = {(m.pair, m.slot, m.table) for m in again.meetings}
    assert all((m.pair, m.slot, m.table) in placed for m in first.meetings if m.slot != 1)
    assert not any(m.slot == 1 for m in again.meetings)
    assert again.key >= greedy(changed, fixed=[m for m in first.meetings if m.slot != 1]).key


def test_large_neighbourhood_search_path_is_feasible_and_beats_greedy() -> None:
    inst = random_instance(SMALL, seed=7)
    res = solve(inst, 3.0, max_direct_options=0, mip_rel_gap=0.0)
    assert res.stats["method"] == "lns"
    assert check(inst, res) == []
    base = greedy(inst)
    assert res.key >= base.key
    assert res.bound >= res.objective - 1e-6


def test_real_scale_benchmark_milp_at_least_greedy() -> None:
    result = run_benchmark(scales=("real",), time_limit=10.0, seed=0)
    (run,) = result["runs"]
    assert run["feasible"]
    assert run["delegations"] == 50 and run["slots"] == 8 and run["tables"] == 15
    assert run["objective"] >= run["greedy_objective"] - 1e-9 and run["vs_greedy_pct"] >= 0
    assert run["gap"] <= 0.01 and run["solve_s"] < 10
    assert run["must_meet_met"] >= run["greedy_must_meet_met"]
    table = format_table(result)
    assert "vs_greedy_pct" in table and "real" in table


def test_generator_is_reproducible_and_realistic() -> None:
    a, b = random_instance("real", seed=11), random_instance("real", seed=11)
    assert np.array_equal(a.wishes, b.wishes) and np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.available, b.available) and a.languages == b.languages
    marked = ((a.wishes > 0) | (a.wishes < 0)).sum(axis=1)
    assert 5 <= np.median(marked) <= 14
    mutual = np.triu((a.wishes == 2) & (a.wishes.T == 2), 1).sum()
    assert 5 <= mutual <= 40
    assert sum("zh" in x for x in a.languages) >= 18 and sum("en" in x for x in a.languages) >= 28
