"""Scheduling meetings: a lexicographic MILP through HiGHS (``scipy.optimize.milp``), a greedy baseline, and
re-scheduling that keeps unaffected meetings where they are.

The MILP has one binary per option (pair, slot, interpreter-or-none) from ``candidates.build`` and these rows:

- each delegation in at most one meeting per slot (options exist only in slots both sides attend);
- each pair at most once;
- meetings per slot <= tables of that slot;
- options using an interpreter of language L in slot s <= interpreters of L on duty in s;
- pinned (fixed) options have lower bound 1.

Objective, lexicographic: phase 1 maximises the number of mutual must-meet pairs met (a small model over only
those pairs, skipped when greedy already meets every must-meet pair that has an option); phase 2 maximises total
meeting value with that number held as a lower bound.

Phase 2 on a model of up to ``DIRECT_MAX_OPTIONS`` options (the real scale: ~3k) is one HiGHS MILP; ``bound`` is its
dual bound. Larger models (5x: ~85k options, where HiGHS presolve alone exceeds a minute) start from greedy and run
large-neighbourhood search: free every meeting in 2-3 random slots, re-solve those slots exactly as a small MILP with
the rest held, keep improvements; ``bound`` is then the LP relaxation of the full model. Either way the result is
never worse than greedy (``status`` ``greedy_fallback`` says the MILP found nothing better in time); ``gap`` is
``(bound - objective) / objective`` for the candidate set (the whole set unless ``top_k`` prunes it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from . import candidates as cand_mod
from .candidates import Candidates
from .check import assign_tables, explain_unmet, interpreter_ok, mutual_must_pairs
from .model import NO_THANKS, Instance, Meeting, Schedule, Weights

DIRECT_MAX_OPTIONS = 20_000  # larger models: greedy + large-neighbourhood search, bound from the LP relaxation


def greedy(
    instance: Instance,
    *,
    weights: Weights | None = None,
    fixed: Sequence[Meeting] = (),
    top_k: int | None = None,
    _cand: Candidates | None = None,
) -> Schedule:
    """Best pair first (mutual must-meets first, then by value), each in the earliest slot where both sides are
    free and a table (and, if needed, the interpreter with most spare capacity) is left. ``fixed`` goes first."""
    t0 = time.perf_counter()
    cand = _cand or cand_mod.build(instance, weights, top_k, keep=[m.pair for m in fixed])
    chosen = _greedy_options(instance, cand, _fixed_options(cand, fixed))
    return _finish(instance, cand, chosen, fixed, status="greedy", t0=t0)


def solve(
    instance: Instance,
    time_limit: float = 10.0,
    *,
    fixed: Sequence[Meeting] = (),
    weights: Weights | None = None,
    mip_rel_gap: float = 0.005,
    top_k: int | None = None,
    max_direct_options: int = DIRECT_MAX_OPTIONS,
    seed: int = 0,
) -> Schedule:
    """The MILP schedule within about ``time_limit`` seconds in all; see the module docstring.

    ``fixed`` meetings are kept exactly (slot, table, interpreter); they must be feasible together (``reschedule``
    makes sure of it). ``top_k`` prunes candidate pairs to the best ``top_k`` per delegation (``None``: keep all).
    Models with more than ``max_direct_options`` options go through large-neighbourhood search; ``seed`` makes
    its choice of neighbourhoods reproducible."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    cand = cand_mod.build(instance, weights, top_k, keep=[m.pair for m in fixed])
    fixed_opts = _fixed_options(cand, fixed)
    start = _greedy_options(instance, cand, fixed_opts)
    must_cols = cand.must[cand.opt_pair]
    must_reachable = int(np.unique(cand.opt_pair[must_cols]).size)
    stats: dict[str, object] = {"pairs": cand.n_pairs, "options": cand.n_options, "phase1": "skipped"}
    stats["greedy_objective"] = _value(cand, start)

    if int(must_cols[start].sum()) < must_reachable:  # phase 1: how many mutual must-meets can be met at all?
        cols = np.union1d(np.flatnonzero(must_cols), fixed_opts)
        res = _run_milp(
            instance, cand, cols, -must_cols[cols].astype(float), fixed_opts, None, _left(deadline) / 3, 0.0
        )
        stats["phase1"] = res[1] if res is not None else "no_solution"
        if res is not None and res[0] is not None and must_cols[res[0]].sum() > must_cols[start].sum():
            # complete the phase-1 must-meets greedily: the start for phase 2 (and the fallback)
            start = _greedy_options(instance, cand, np.union1d(res[0], fixed_opts))
    k = int(must_cols[start].sum())
    all_cols = np.arange(cand.n_options)
    cost = -cand.value[cand.opt_pair]

    if cand.n_options == 0:  # nothing to decide
        stats["method"] = "milp"
        chosen, status, bound = start, "optimal", 0.0
    elif cand.n_options <= max_direct_options:
        stats["method"] = "milp"
        res2 = _run_milp(instance, cand, all_cols, cost, fixed_opts, k, _left(deadline), mip_rel_gap)
        chosen, status, bound = start, "greedy_fallback", math.nan
        if res2 is not None:
            bound = res2[2]
            if res2[0] is not None and _value(cand, res2[0]) + 1e-9 >= _value(cand, start):
                chosen, status = res2[0], res2[1]
    else:
        stats["method"] = "lns"
        bound = _lp_bound(instance, cand, fixed_opts, k, _left(deadline) / 2)
        chosen, rounds = _lns(instance, cand, start, fixed_opts, bound, mip_rel_gap, deadline, seed)
        stats["lns_rounds"] = rounds
        status = "feasible"
    return _finish(instance, cand, chosen, fixed, status=status, t0=t0, bound=bound, stats=stats)


def reschedule(
    instance: Instance,
    previous: Schedule | Sequence[Meeting],
    time_limit: float = 10.0,
    **kwargs: object,
) -> Schedule:
    """Re-plan after a change already applied to ``instance`` (``Instance.cancel``, ``lose_slot``, new availability,
    fewer tables or interpreters, a new no_thanks): every previous meeting that is still feasible stays at its slot,
    table and interpreter; the rest of the conference is filled by ``solve``. If a capacity shrank below what the
    kept meetings need, the least valuable of them are released. ``stats["kept"]`` / ``stats["released"]`` list
    the previous meetings' pairs."""
    prev = previous.meetings if isinstance(previous, Schedule) else tuple(previous)
    keep = keepable(instance, prev)
    kept_pairs = {m.pair for m in keep}
    sched = solve(instance, time_limit, fixed=keep, **kwargs)  # type: ignore[arg-type]
    stats = dict(sched.stats)
    stats["kept"] = sorted(kept_pairs)
    stats["released"] = sorted(m.pair for m in prev if m.pair not in kept_pairs)
    return Schedule(**{**sched.__dict__, "stats": stats})


def keepable(instance: Instance, meetings: Iterable[Meeting]) -> list[Meeting]:
    """The meetings still feasible in ``instance`` and jointly within its capacities (most valuable kept first)."""
    out: list[Meeting] = []
    busy: set[tuple[int, int]] = set()
    tables: set[tuple[int, int]] = set()
    interp: dict[tuple[str, int], int] = {}
    n, s_count = instance.n_delegations, instance.n_slots
    for m in sorted(meetings, key=lambda m: (-m.must, -m.value, m.slot, m.table)):
        if not (0 <= m.a < m.b < n and 0 <= m.slot < s_count and 0 <= m.table < instance.tables[m.slot]):
            continue
        if not (instance.available[m.a, m.slot] and instance.available[m.b, m.slot]):
            continue
        if NO_THANKS in (instance.wishes[m.a, m.b], instance.wishes[m.b, m.a]):
            continue
        if not interpreter_ok(instance, m.a, m.b, m.interpreter) or (m.a, m.slot) in busy or (m.b, m.slot) in busy:
            continue
        if (m.slot, m.table) in tables:
            continue
        if m.interpreter is not None:
            used = interp.get((m.interpreter, m.slot), 0)
            if used >= instance.interpreters[m.interpreter][m.slot]:
                continue
            interp[(m.interpreter, m.slot)] = used + 1
        busy |= {(m.a, m.slot), (m.b, m.slot)}
        tables.add((m.slot, m.table))
        out.append(m)
    return out


# --- internals -------------------------------------------------------------------------------------------------


def _left(deadline: float) -> float:
    return max(0.05, deadline - time.perf_counter())


def _value(cand: Candidates, chosen: np.ndarray) -> float:
    return float(cand.value[cand.opt_pair[chosen]].sum())


def _lp_bound(instance: Instance, cand: Candidates, fixed_opts: np.ndarray, k: int, time_limit: float) -> float:
    """Upper bound on the value from the LP relaxation (nan if it does not finish in time)."""
    cols = np.arange(cand.n_options)
    mat, ub = _rows(instance, cand, cols)
    must = cand.must[cand.opt_pair].astype(float)
    a_ub = sparse.vstack([mat, sparse.csr_array(-must[None, :])]).tocsr()
    b_ub = np.append(ub, -float(k))
    lb = np.isin(cols, fixed_opts).astype(float)
    res = linprog(
        -cand.value[cand.opt_pair],
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=np.column_stack([lb, np.ones(cols.size)]),
        method="highs-ipm",  # faster than simplex here (17 s vs 25 s at 5x)
        options={"time_limit": max(time_limit, 0.05), "presolve": False},
    )
    return -float(res.fun) if res.status == 0 else math.nan


def _lns(
    instance: Instance,
    cand: Candidates,
    start: np.ndarray,
    fixed_opts: np.ndarray,
    bound: float,
    gap: float,
    deadline: float,
    seed: int,
) -> tuple[np.ndarray, int]:
    """Large-neighbourhood search: free all meetings in a few slots (``window``), re-optimise those slots exactly
    with everything else held, keep the result if better; until the gap to ``bound`` is reached, the time is up
    or every window of the round failed."""
    rng = np.random.default_rng(seed)
    s_count = instance.n_slots
    window = min(s_count, 2 if cand.n_options / s_count > 4000 else 3)
    chosen = np.asarray(start, np.int64)
    fixed_set = np.zeros(cand.n_options, bool)
    fixed_set[fixed_opts] = True
    rounds, failures = 0, 0
    while time.perf_counter() < deadline - 0.2:
        if np.isfinite(bound) and bound - _value(cand, chosen) <= gap * _value(cand, chosen):
            break
        free = np.zeros(s_count, bool)
        free[rng.choice(s_count, window, replace=False)] = True
        inside = chosen[free[cand.opt_slot[chosen]]]
        met_outside = np.zeros(cand.n_pairs, bool)
        met_outside[cand.opt_pair[chosen[~free[cand.opt_slot[chosen]]]]] = True
        fixed_pair = np.zeros(cand.n_pairs, bool)
        fixed_pair[cand.opt_pair[fixed_opts]] = True
        cols = np.flatnonzero(
            free[cand.opt_slot] & ~met_outside[cand.opt_pair] & (~fixed_pair[cand.opt_pair] | fixed_set)
        )
        k_in = int(cand.must[cand.opt_pair[inside]].sum())
        res = _run_milp(
            instance,
            cand,
            cols,
            -cand.value[cand.opt_pair[cols]],
            fixed_opts[np.isin(fixed_opts, cols)],
            k_in,
            min(_left(deadline) - 0.1, 10.0),
            1e-4,
        )
        rounds += 1
        if res is not None and res[0] is not None and _value(cand, res[0]) > _value(cand, inside) + 1e-9:
            chosen = np.sort(np.concatenate([chosen[~free[cand.opt_slot[chosen]]], res[0]]))
            failures = 0
        else:
            failures += 1
            if failures >= 3 * s_count:
                break
    return chosen, rounds


def _fixed_options(cand: Candidates, fixed: Sequence[Meeting]) -> np.ndarray:
    if not fixed:
        return np.empty(0, np.int64)
    index = cand.pair_index()
    lang_ix = {x: k for k, x in enumerate(cand.langs)}
    start, stop = cand.option_ranges()
    out = []
    for m in fixed:
        p = index[m.pair]
        want = -1 if m.interpreter is None else lang_ix[m.interpreter]
        cols = np.arange(start[p], stop[p])
        hit = cols[(cand.opt_slot[cols] == m.slot) & (cand.opt_lang[cols] == want)]
        if hit.size != 1:
            raise ValueError(f"fixed meeting {m} is not a feasible option")
        out.append(int(hit[0]))
    return np.asarray(out, np.int64)


def _greedy_options(instance: Instance, cand: Candidates, fixed_opts: np.ndarray) -> np.ndarray:
    busy = np.zeros((instance.n_delegations, instance.n_slots), bool)
    free_tables = instance.tables.astype(np.int64).copy()
    free_interp = np.vstack([cand.capacity, np.zeros((1, instance.n_slots), np.int64)])  # row -1: no interpreter
    met = np.zeros(cand.n_pairs, bool)
    chosen: list[int] = []

    def take(c: int) -> None:
        p, s, lang = cand.opt_pair[c], cand.opt_slot[c], cand.opt_lang[c]
        busy[cand.a[p], s] = busy[cand.b[p], s] = True
        free_tables[s] -= 1
        if lang >= 0:
            free_interp[lang, s] -= 1
        met[p] = True
        chosen.append(int(c))

    for c in fixed_opts.tolist():
        take(c)
    start, stop = cand.option_ranges()
    order = np.lexsort((cand.b, cand.a, -cand.value, ~cand.must))
    for p in order.tolist():
        if met[p] or start[p] == stop[p]:
            continue
        cols = np.arange(start[p], stop[p])
        s, lang = cand.opt_slot[cols], cand.opt_lang[cols]
        spare = np.where(lang >= 0, free_interp[lang, s], 1)
        ok = ~busy[cand.a[p], s] & ~busy[cand.b[p], s] & (free_tables[s] > 0) & (spare > 0)
        if ok.any():
            cols, s, spare = cols[ok], s[ok], spare[ok]
            first = cols[s == s.min()]
            take(int(first[np.argmax(spare[s == s.min()])]))
    return np.asarray(sorted(chosen), np.int64)


def _run_milp(
    instance: Instance,
    cand: Candidates,
    cols: np.ndarray,
    cost: np.ndarray,
    fixed_opts: np.ndarray,
    must_lb: int | None,
    time_limit: float,
    gap: float,
) -> tuple[np.ndarray | None, str, float] | None:
    """Minimise ``cost @ x`` over the options ``cols``; returns (chosen options or None, status, upper bound on
    the value, i.e. minus the dual bound), or None when there is nothing to decide."""
    if cols.size == 0:
        return None
    mat, ub = _rows(instance, cand, cols)
    constraints = [LinearConstraint(mat, -np.inf, ub)]
    if must_lb is not None and must_lb > 0:
        must = cand.must[cand.opt_pair[cols]].astype(float)
        constraints.append(LinearConstraint(must[None, :], must_lb, np.inf))
    lb = np.isin(cols, fixed_opts).astype(float)
    res = milp(
        cost,
        integrality=np.ones(cols.size),
        bounds=Bounds(lb, np.ones(cols.size)),
        constraints=constraints,
        options={"time_limit": max(time_limit, 0.05), "mip_rel_gap": gap, "presolve": True, "disp": False},
    )
    dual = getattr(res, "mip_dual_bound", None)
    bound = -float(dual) if dual is not None and np.isfinite(dual) else math.nan
    if res.x is None:
        return None, "time_limit" if res.status == 1 else "infeasible", bound
    status = "optimal" if res.status == 0 else "time_limit"
    if status == "optimal" and not np.isfinite(bound):
        bound = -float(res.fun)
    return cols[res.x > 0.5], status, bound


def _rows(instance: Instance, cand: Candidates, cols: np.ndarray) -> tuple[sparse.csr_array, np.ndarray]:
    """The capacity rows (``mat @ x <= ub``) over options ``cols``; rows no option touches are left out."""
    s_count = instance.n_slots
    pair, slot, lang = cand.opt_pair[cols], cand.opt_slot[cols], cand.opt_lang[cols]
    j = np.arange(cols.size)
    n_d, n_p = instance.n_delegations * s_count, cand.n_pairs
    interp = lang >= 0
    rows = np.concatenate(
        [
            cand.a[pair] * s_count + slot,  # delegation busy once per slot
            cand.b[pair] * s_count + slot,
            n_d + pair,  # a pair at most once
            n_d + n_p + slot,  # tables
            n_d + n_p + s_count + lang[interp] * s_count + slot[interp],  # interpreters
        ]
    )
    colix = np.concatenate([j, j, j, j, j[interp]])
    ub_all = np.concatenate(
        [np.ones(n_d + n_p), instance.tables.astype(float), cand.capacity.astype(float).reshape(-1)]
    )
    used, rows = np.unique(rows, return_inverse=True)
    mat = sparse.csr_array((np.ones(rows.size), (rows, colix)), shape=(used.size, cols.size))
    return mat, ub_all[used]


def _finish(
    instance: Instance,
    cand: Candidates,
    chosen: np.ndarray,
    fixed: Sequence[Meeting],
    *,
    status: str,
    t0: float,
    bound: float = math.nan,
    stats: dict[str, object] | None = None,
) -> Schedule:
    fixed_pairs = {m.pair for m in fixed}
    meetings = [
        Meeting(
            int(cand.a[p]),
            int(cand.b[p]),
            int(s),
            -1,
            None if lang < 0 else cand.langs[lang],
            float(cand.value[p]),
            bool(cand.must[p]),
        )
        for p, s, lang in zip(cand.opt_pair[chosen], cand.opt_slot[chosen], cand.opt_lang[chosen], strict=True)
    ]
    by_pair = {m.pair: m for m in meetings}
    fixed_valued = [
        Meeting(m.a, m.b, m.slot, m.table, m.interpreter, by_pair[m.pair].value, by_pair[m.pair].must) for m in fixed
    ]
    final = assign_tables(instance, [m for m in meetings if m.pair not in fixed_pairs], fixed_valued)
    objective = float(sum(m.value for m in final))
    if np.isfinite(bound):
        bound = max(bound, objective)
    gap = (bound - objective) / max(objective, 1e-9) if np.isfinite(bound) else math.nan
    return Schedule(
        meetings=tuple(final),
        objective=objective,
        must_met=sum(m.must for m in final),
        must_total=len(mutual_must_pairs(instance)),
        bound=bound,
        gap=gap,
        status=status,
        solve_s=time.perf_counter() - t0,
        unmet=tuple(explain_unmet(instance, final)),
        stats=dict(stats or {}),
    )
