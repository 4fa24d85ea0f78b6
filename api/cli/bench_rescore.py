"""``twinning bench rescore``: the matcher's side of a full re-score, batched, against one ``suggest`` at a time.

What it measures (matcher level: the scoring that a re-scoring chunk does through ``TwinningMatcher.suggest_many``,
without the database writes or the Celery hop):

* the gazetteer (``--cities N``: the N most populous places of the chosen level; default all of it), the
  partnership-likelihood model fitted on ``--pairs`` (fit seconds, peak memory);
* live suggestions: ``suggest`` for single places over all candidates (p50 / p99 milliseconds);
* batched re-scoring: ``suggest_many`` (top ``k``) over ``--sources`` sources split over ``--workers`` forked
  processes (each pinned to one BLAS/OpenMP thread): wall seconds, sources per second, milliseconds per source per
  worker, peak resident memory per worker, and the time a full re-score of every place would take at that rate;
* the obvious alternative, ``suggest`` called once per source, on the same sources (per-source time, and the
  speed-up of the batched path).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _rss_peak_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of process ``pid`` (default: this one), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if pid == "self" else 0.0


def _reset_rss_peak() -> None:
    """Reset VmHWM (Linux: write 5 to /proc/self/clear_refs), so a forked worker reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9 if hasattr(os, "sysconf") else None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


_STATE: dict[str, Any] = {}
COMPILED_DIR = Path("var/bench/compiled")  # the compiled re-rankers of the fits here (by a hash of the booster)


def _worker(args: tuple[np.ndarray, int, int]) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    rows, k, batch = args
    _reset_rss_peak()
    matcher = _STATE["matcher"]
    with threadpool_limits(1):
        t0 = time.perf_counter()
        out = matcher.suggest_many(rows, k=k, batch=batch)
        seconds = time.perf_counter() - t0
    assert len(out) == len(rows)
    return {"sources": float(len(rows)), "seconds": seconds, "peak_rss_mb": _rss_peak_mb()}


def run(
    cities: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    n_cities: int | None = None,
    sources: int = 2000,
    workers: tuple[int, ...] = (1,),
    k: int = 20,
    batch: int = 32,
    live: int = 200,
    one_at_a_time: int = 100,
    seed: int = 0,
    model_params: dict[str, Any] | None = None,
    compile_trees: bool = True,
) -> dict[str, Any]:
    """Fit, then time live suggestions and the batched re-score; returns a JSON-ready dict."""
    import multiprocessing as mp

    from threadpoolctl import threadpool_limits

    from matcher import CityTable, CountryTable, TwinningMatcher
    from matcher.likelihood import PartnershipLikelihood

    if n_cities is not None and n_cities < len(cities):
        cities = cities.sort_values(["population", "geonameid"], ascending=[False, True]).head(n_cities)
    cities = cities.reset_index(drop=True)
    ids = set(cities["geonameid"].tolist())
    pairs = pairs[pairs["geonameid_a"].isin(ids) & pairs["geonameid_b"].isin(ids)]
    result: dict[str, Any] = {
        "level": "matcher (TwinningMatcher.suggest_many in forked processes; no database writes, no Celery)",
        "machine": machine(),
        "cities": len(cities),
        "pairs": len(pairs),
        "k": k,
        "batch": batch,
        "workers": list(workers),
    }
    t0, c0 = time.perf_counter(), time.process_time()
    model = PartnershipLikelihood(**(model_params or {})).fit(cities, pairs)
    result["train"] = {
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "peak_rss_mb": round(_rss_peak_mb()),
    }
    compiled = None
    if compile_trees:  # as the service scores (TWINNING_COMPILED_TREES): the re-ranker's trees in machine code
        from api.domain.compiled_trees import compiled_predictor

        t0 = time.perf_counter()
        compiled = compiled_predictor(model.booster_, COMPILED_DIR)
        model.use_booster_predict(compiled)
        result["compile_seconds"] = round(time.perf_counter() - t0, 1)
    result["compiled_trees"] = compiled is not None
    table = CityTable.build(cities, {}, CountryTable.empty())
    a = pairs["geonameid_a"].map(table.row_of_id).to_numpy()
    b = pairs["geonameid_b"].map(table.row_of_id).to_numpy()
    matcher = TwinningMatcher(likelihood=model).fit(table, np.stack([a, b], axis=1).astype(np.int64))
    rng = np.random.default_rng(seed)
    n = len(table)

    # live: one place at a time over all candidates (the API's path when no stored set covers the place)
    with threadpool_limits(1):
        matcher.suggest(0, k=10)  # warm caches
        lat = []
        for r in rng.choice(n, min(live, n), replace=False):
            t0 = time.perf_counter()
            matcher.suggest(int(r), k=10)
            lat.append(time.perf_counter() - t0)
    ms = np.array(lat) * 1000.0
    result["live_suggest_ms"] = {
        "calls": len(ms),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "max": round(float(ms.max()), 1),
    }

    # batched re-score over `sources` places, split over W forked processes, for each W
    src = np.arange(n) if sources <= 0 or sources >= n else np.sort(rng.choice(n, sources, replace=False))
    _STATE["matcher"] = matcher
    ctx = mp.get_context("fork")
    result["rescore"] = []
    for w in workers:
        parts = [p for p in np.array_split(src, w) if len(p)]
        t0 = time.perf_counter()
        with ctx.Pool(len(parts)) as pool:
            per_worker = pool.map(_worker, [(p, k, batch) for p in parts])
        wall = time.perf_counter() - t0
        ms_per_source = [1000.0 * x["seconds"] / max(x["sources"], 1) for x in per_worker]
        rate = len(src) / wall
        result["rescore"].append(
            {
                "workers": w,
                "sources": len(src),
                "wall_seconds": round(wall, 1),
                "sources_per_second": round(rate, 1),
                "ms_per_source_per_worker": round(float(np.mean(ms_per_source)), 2),
                "peak_rss_mb_per_worker": [round(x["peak_rss_mb"]) for x in per_worker],
                "full_rescore_minutes_estimate": round(n / rate / 60.0, 1),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )

    # the obvious alternative: suggest() once per source
    few = src[: min(one_at_a_time, len(src))]
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for r in few:
            matcher.suggest(int(r), k=k)
        single = (time.perf_counter() - t0) / max(len(few), 1) * 1000.0
        t0 = time.perf_counter()
        matcher.suggest_many(few, k=k, batch=batch)
        batched = (time.perf_counter() - t0) / max(len(few), 1) * 1000.0
        sklearn_ms = None
        if compiled is not None:  # the same batches with scikit-learn's predict_proba for the re-ranker
            model.use_booster_predict(None)
            t0 = time.perf_counter()
            matcher.suggest_many(few, k=k, batch=batch)
            sklearn_ms = round((time.perf_counter() - t0) / max(len(few), 1) * 1000.0, 2)
            model.use_booster_predict(compiled)
    result["one_at_a_time"] = {
        "sources": len(few),
        "suggest_ms_per_source": round(single, 2),
        "suggest_many_ms_per_source": round(batched, 2),
        "speedup": round(single / max(batched, 1e-9), 2),
        "suggest_many_sklearn_trees_ms_per_source": sklearn_ms,
    }
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def format_table(result: dict[str, Any]) -> str:
    live, one = result["live_suggest_ms"], result["one_at_a_time"]
    lines = [
        f"{result['cities']:,} places, {result['pairs']:,} pairs, top {result['k']}; {result['level']}",
        f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, load {result['machine']['load_average']}",
        f"train: {result['train']['seconds']} s ({result['train']['cpu_seconds']} s CPU), "
        f"peak {result['train']['peak_rss_mb']} MB",
        f"live suggest: p50 {live['p50']} ms, p99 {live['p99']} ms over {live['calls']} calls",
    ]
    for r in result["rescore"]:
        lines.append(
            f"re-score, {r['workers']} worker(s): {r['sources']:,} sources in {r['wall_seconds']} s = "
            f"{r['sources_per_second']} sources/s ({r['ms_per_source_per_worker']} ms per source per worker), "
            f"peak RSS per worker {r['peak_rss_mb_per_worker']} MB; all {result['cities']:,} places ≈ "
            f"{r['full_rescore_minutes_estimate']} min"
        )
    lines.append(
        f"one at a time (suggest): {one['suggest_ms_per_source']} ms/source; batched (suggest_many): "
        f"{one['suggest_many_ms_per_source']} ms/source; speed-up {one['speedup']}×"
    )
    if one.get("suggest_many_sklearn_trees_ms_per_source") is not None:
        lines.append(
            f"re-ranker trees compiled (in {result.get('compile_seconds')} s): batched with scikit-learn's trees "
            f"{one['suggest_many_sklearn_trees_ms_per_source']} ms/source, compiled "
            f"{one['suggest_many_ms_per_source']} ms/source"
        )
    elif not result.get("compiled_trees"):
        lines.append("re-ranker trees: scikit-learn (not compiled)")
    return "\n".join(lines)
