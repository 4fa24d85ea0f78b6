"""``twinning bench scoring``: vectorised pair scoring against the obvious alternative, a Python loop over pairs.

Both paths compute the same profile/gazetteer score for every candidate city (the loop is checked against the
vectorised result on the candidates it scores).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from matcher import CityTable, CountryTable, ProfileData, TwinningMatcher
from matcher.rank import top_k
from seed.readers import DEMO_PROFILES_FILE, read_cities, read_countries


def build() -> tuple[TwinningMatcher, CityTable]:
    import json

    cities = read_cities()
    countries = CountryTable.from_records(read_countries().to_dict("records"))
    doc = json.loads(DEMO_PROFILES_FILE.read_text())
    profiles = {p["geonameid"]: ProfileData(offers=p["offers"], seeks=p["seeks"]) for p in doc["profiles"]}
    table = CityTable.build(cities, profiles, countries)
    return TwinningMatcher().fit(table), table


def loop_score(m: TwinningMatcher, t: CityTable, i: int, j: int) -> float:
    """The same blend, one pair at a time, in plain Python."""
    w = m.weights_
    comps: dict[str, float] = {}
    if t.has_profile[i] and t.has_profile[j]:
        oi, si, oj, sj = (list(map(float, v)) for v in (t.offers[i], t.seeks[i], t.offers[j], t.seeks[j]))
        ii = [a + b for a, b in zip(oi, si, strict=True)]
        ij = [a + b for a, b in zip(oj, sj, strict=True)]
        ni, nj = math.sqrt(sum(x * x for x in ii)), math.sqrt(sum(x * x for x in ij))
        comps["interest"] = sum(a * b for a, b in zip(ii, ij, strict=True)) / (ni * nj) if ni and nj else 0.0
        ab = sum(a * b for a, b in zip(oi, sj, strict=True)) / sum(sj) if sum(sj) else 0.0
        ba = sum(a * b for a, b in zip(si, oj, strict=True)) / sum(si) if sum(si) else 0.0
        comps["complementarity"] = (ab + ba) / 2
        comps["reciprocity"] = 2 * ab * ba / (ab + ba) if ab + ba else 0.0
    lp = m.log_pop_
    comps["size"] = math.exp(-abs(lp[i] - lp[j]) / m.size_scale)
    shared = float(t.shared_language[t.country_idx[i], t.country_idx[j]])
    comps["context"] = 0.5 * shared + 0.5 * (1 - abs(abs(t.lat[i]) - abs(t.lat[j])) / 90)
    total = sum(w[k] * v for k, v in comps.items())
    return total / sum(w[k] for k in comps)


def run(queries: int = 20, loop_candidates: int = 3000) -> dict[str, object]:
    """Time both paths on the shipped gazetteer; returns JSON-ready results (milliseconds per query city)."""
    m, t = build()
    n = len(t)
    rng = np.random.default_rng(0)
    rows = rng.choice(n, queries, replace=False)
    rows[0] = t.row(1886760)  # Suzhou, with a profile

    t0 = time.perf_counter()
    for r in rows:
        m.suggest(int(r), 10)
    vec_one = (time.perf_counter() - t0) / len(rows)

    t0 = time.perf_counter()
    m.suggest_many(rows, 10, batch=len(rows))
    vec_batch = (time.perf_counter() - t0) / len(rows)

    cand = rng.choice(n, loop_candidates, replace=False)
    cand[0] = t.row(4164138)  # Miami, profiled
    q = int(rows[0])
    t0 = time.perf_counter()
    loop_scores = np.array([loop_score(m, t, q, int(j)) for j in cand])
    loop_time = (time.perf_counter() - t0) * (n / len(cand))  # extrapolated to all candidates
    _ = top_k(loop_scores, 10)
    vec = m.blend(m.components_batch([q]))[0][cand] / m.components_batch([q])["preference"][0][cand]
    if not np.allclose(loop_scores, vec, atol=1e-9):
        raise AssertionError("the loop and the vectorised path disagree")
    methods = [
        ("Python loop over pairs (extrapolated)", loop_time),
        ("vectorised, one city at a time (suggest)", vec_one),
        ("vectorised, batched (suggest_many)", vec_batch),
    ]
    return {
        "candidates": n,
        "queries": queries,
        "loop_candidates": loop_candidates,
        "methods": [
            {"method": name, "ms_per_city": round(sec * 1000, 2), "speedup": round(loop_time / sec, 1)}
            for name, sec in methods
        ],
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"Scoring one city against all {result['candidates']:,} candidates (profile + gazetteer components, top-10):",
        f"{'method':<44} {'ms / city':>10} {'speed-up':>9}",
    ]
    for m in result["methods"]:
        lines.append(f"{m['method']:<44} {m['ms_per_city']:>10.1f} {m['speedup']:>8.1f}x")
    lines.append(
        f"{result['queries']} query cities; the loop scored {result['loop_candidates']:,} candidates and was "
        "checked equal to the vectorised path."
    )
    return "\n".join(lines)
