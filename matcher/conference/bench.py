"""Benchmark of the conference scheduler on seeded random conferences (``instances.SCALES``): MILP vs greedy.

``run_benchmark()`` -> ``{"runs": [...]}``, one run per scale; ``format_table`` renders it. The CLI
``twinning bench conference [--json]`` calls these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .check import check
from .instances import SCALES, random_instance
from .solve import greedy, solve

DEFAULT_TIME_LIMITS: Mapping[str, float] = {"real": 10.0, "5x": 60.0}
COLUMNS = (
    ("scale", "{}"),
    ("delegations", "{}"),
    ("slots", "{}"),
    ("tables", "{}"),
    ("method", "{}"),
    ("solve_s", "{:.2f}"),
    ("objective", "{:.2f}"),
    ("bound", "{:.2f}"),
    ("gap", "{:.2%}"),
    ("greedy_objective", "{:.2f}"),
    ("vs_greedy_pct", "{:+.2f}"),
    ("must_meet_met", "{:.0%}"),
    ("meetings", "{}"),
    ("feasible", "{}"),
)


def run_benchmark(
    scales: Sequence[str] = ("real", "5x"),
    time_limit: float | None = None,
    seed: int = 0,
    mip_rel_gap: float = 0.005,
) -> dict[str, list[dict[str, Any]]]:
    """Solve each scale's seeded instance with ``solve`` (``time_limit`` seconds, default 10 s real / 60 s 5x) and
    with ``greedy``. ``gap`` is a fraction; ``must_meet_met`` the share of mutual must-meet pairs met (1.0 when there
    are none); ``vs_greedy_pct`` the MILP objective's percentage over greedy's; ``feasible`` that ``check`` finds no
    violation in either schedule."""
    runs = []
    for name in scales:
        sc = SCALES[name]
        inst = random_instance(name, seed=seed)
        limit = time_limit if time_limit is not None else DEFAULT_TIME_LIMITS.get(name, 60.0)
        base = greedy(inst)
        res = solve(inst, limit, mip_rel_gap=mip_rel_gap)
        runs.append(
            {
                "scale": name,
                "delegations": sc.delegations,
                "slots": sc.slots,
                "tables": sc.tables,
                "seed": seed,
                "time_limit": limit,
                "method": res.stats.get("method", "milp"),
                "status": res.status,
                "solve_s": round(res.solve_s, 3),
                "objective": round(res.objective, 4),
                "bound": round(res.bound, 4),
                "gap": round(res.gap, 6),
                "greedy_objective": round(base.objective, 4),
                "greedy_s": round(base.solve_s, 3),
                "vs_greedy_pct": round(100 * (res.objective - base.objective) / max(base.objective, 1e-9), 3),
                "must_meet_total": res.must_total,
                "must_meet_met": res.must_met / res.must_total if res.must_total else 1.0,
                "greedy_must_meet_met": base.must_met / base.must_total if base.must_total else 1.0,
                "meetings": len(res.meetings),
                "greedy_meetings": len(base.meetings),
                "unmet_reasons": sorted({u.reason for u in res.unmet}),
                "feasible": not check(inst, res) and not check(inst, base),
            }
        )
    return {"runs": runs}


def format_table(result: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The runs as an aligned plain-text table."""
    header = [c for c, _ in COLUMNS]
    rows = [
        [fmt.format(run.get(c, "")) if run.get(c) is not None else "" for c, fmt in COLUMNS] for run in result["runs"]
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)) for line in [header, *rows]]
    return "\n".join(lines)
