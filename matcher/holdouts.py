"""Grouped hold-outs: how the rankers do where the network is thin (new country pairs, places without partners).

Both reuse :func:`matcher.evaluate.evaluate_split` (the one evaluation path: every ranker fitted on TRAIN only,
both directions of every held-out pair, every gazetteer place a candidate, ties against the true partner):

* **leave-country-pair-out** (:func:`evaluate_country_pairs`): for each country pair (e.g. the 20 with the most
  partnerships, and US–CN), every pair between the two countries is TEST and the rest TRAIN, one split per
  country pair. *Pooled* is the concatenation of the splits' queries: its ``hit@k`` and MRR are the query-weighted
  means of the per-pair values, its median rank the median of all their ranks.
* **cold places** (:func:`evaluate_cold_places`): a random share of the places of the network (seeded) is held
  out with all its partnerships, so a held-out pair's cold end has no partner in TRAIN. The subsets
  ``source_cold`` / ``target_cold`` are the queries whose source / target is such a place (a pair of two cold
  places is in both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import evaluate_split
from .features import CountryTable, parse_country_pair

__all__ = [
    "cold_place_split",
    "country_pair_split",
    "evaluate_cold_places",
    "evaluate_country_pairs",
    "format_country_pairs",
    "parse_country_pair",
    "pool",
    "top_country_pairs",
]

LEARNED = ("twinning", "served")


def _pair_countries(cities: pd.DataFrame, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The sorted ``(country a, country b)`` of every pair ("" for a place outside the gazetteer)."""
    country = dict(zip(cities["geonameid"].to_numpy(np.int64), cities["country"].astype(str), strict=True))
    a = np.array([country.get(int(g), "") for g in pairs["geonameid_a"].to_numpy(np.int64)], dtype=object)
    b = np.array([country.get(int(g), "") for g in pairs["geonameid_b"].to_numpy(np.int64)], dtype=object)
    lo = np.where(a <= b, a, b)
    hi = np.where(a <= b, b, a)
    return lo, hi


def top_country_pairs(cities: pd.DataFrame, pairs: pd.DataFrame, top: int = 20) -> list[tuple[str, str]]:
    """The ``top`` country pairs (sorted codes; domestic pairs count) with the most partnerships in ``pairs``;
    equal counts are ordered by the codes."""
    lo, hi = _pair_countries(cities, pairs)
    ok = (lo != "") & (hi != "")
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([lo[ok], hi[ok]])).groupby(level=[0, 1]).sum()
    frame = counts.rename("n").reset_index().sort_values(["n", "level_0", "level_1"], ascending=[False, True, True])
    return [(str(a), str(b)) for a, b in frame[["level_0", "level_1"]].head(max(int(top), 0)).to_numpy()]


def country_pair_split(
    cities: pd.DataFrame, pairs: pd.DataFrame, country_pair: tuple[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)``: every pair between the two countries is TEST, every other pair TRAIN."""
    lo, hi = _pair_countries(cities, pairs)
    a, b = sorted(country_pair)
    held = (lo == a) & (hi == b)
    return pairs[~held], pairs[held]


def cold_place_split(
    pairs: pd.DataFrame, share: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``(train, test, cold)``: ``cold`` is a random ``share`` of the places of ``pairs`` (seeded); every pair
    that involves one of them is TEST, so a cold place has no partner in TRAIN."""
    if not 0.0 < share < 1.0:
        raise ValueError("share must be in (0, 1)")
    a = pairs["geonameid_a"].to_numpy(np.int64)
    b = pairs["geonameid_b"].to_numpy(np.int64)
    places = np.unique(np.concatenate([a, b]))
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(places, size=int(round(share * len(places))), replace=False))
    held = np.isin(a, cold) | np.isin(b, cold)
    return pairs[~held], pairs[held], cold


def pool(results: Sequence[Mapping[str, Any]], keep_ranks: bool = False) -> dict[str, Any]:
    """The concatenation of several splits' queries (results of ``evaluate_split(..., return_ranks=True)``):
    ``hit@k`` and MRR are query-weighted means, the median rank is the median of all ranks (kept, with
    ``keep_ranks``, as each ranker's ``ranks``)."""
    live = [r for r in results if r["queries"] > 0]
    out: dict[str, Any] = {"queries": int(sum(r["queries"] for r in live)), "rankers": {}}
    if not live:
        return out
    weights = np.array([r["queries"] for r in live], float)
    for name, first in live[0]["rankers"].items():
        row: dict[str, Any] = {}
        for metric in [m for m in first if m.startswith("hit@")] + ["mrr"]:
            row[metric] = float(np.average([r["rankers"][name][metric] for r in live], weights=weights))
        ranks = np.concatenate([np.asarray(r["rankers"][name]["ranks"]) for r in live])
        row["median_rank"] = float(np.median(ranks))
        row["queries"] = int(len(ranks))
        if keep_ranks:
            row["ranks"] = ranks
        for key in ("fit_seconds", "score_seconds"):
            row[key] = float(sum(r["rankers"][name][key] for r in live))
        out["rankers"][name] = row
    return out


def _strip_ranks(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready part of an ``evaluate_split(..., return_ranks=True)`` result."""
    out = {k: v for k, v in result.items() if k not in ("sources", "targets")}
    out["rankers"] = {n: {k: v for k, v in r.items() if k != "ranks"} for n, r in result["rankers"].items()}
    return out


def evaluate_country_pairs(
    cities: pd.DataFrame,
    countries: CountryTable | None,
    pairs: pd.DataFrame,
    country_pairs: Sequence[tuple[str, str]],
    *,
    on_split: Callable[[str, int, int], None] | None = None,
    on_result: Callable[[Mapping[str, Any]], None] | None = None,
    pair_folds: int = 0,
    seed: int = 0,
    **split_kwargs: Any,
) -> dict[str, Any]:
    """Leave-country-pair-out: one :func:`evaluate_split` per country pair (its pairs TEST, the rest TRAIN).

    With ``pair_folds`` = K ≥ 2 the pair is only partly held out: its pairs are split into K folds (seeded by
    ``seed``), each fold TEST in turn with the rest of the pair in TRAIN, and the pair's row pools its K splits —
    what a model that knows the listed partnerships of a pair makes of the ones it does not list.

    Returns ``{"holdout": "country-pairs", "country_pairs": [{"pair": "CN-US", "train_pairs", "test_pairs",
    **split result}], "pooled": {"queries", "rankers"}, "beats": {metric: {ranker: splits where twinning is
    strictly better}}}``. ``on_split(label, i, n)`` is called before each split, ``on_result(row)`` after it with
    its row of ``"country_pairs"``; ``split_kwargs`` go to
    :func:`evaluate_split`.
    """
    per_pair: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    todo: list[tuple[str, str]] = list(dict.fromkeys((min(a, b), max(a, b)) for a, b in country_pairs))
    for i, cp in enumerate(todo):
        label = "-".join(cp)
        if on_split is not None:
            on_split(label, i, len(todo))
        train, test = country_pair_split(cities, pairs, cp)
        if pair_folds >= 2:
            fold = np.random.default_rng(seed).permutation(len(test)) % pair_folds
            parts = [
                evaluate_split(
                    cities,
                    countries,
                    pd.concat([train, test[fold != j]], ignore_index=True),
                    test[fold == j],
                    return_ranks=True,
                    **split_kwargs,
                )
                for j in range(pair_folds)
            ]
            res = {**pool(parts, keep_ranks=True), "pair_folds": pair_folds}
            res["skipped"] = int(sum(p["skipped"] for p in parts))
        else:
            res = evaluate_split(cities, countries, train, test, return_ranks=True, **split_kwargs)
        raw.append(res)
        per_pair.append(
            {"pair": label, "train_pairs": int(len(train)), "test_pairs": int(len(test)), **_strip_ranks(res)}
        )
        if on_result is not None:
            on_result(per_pair[-1])
    return {
        "holdout": "country-pairs",
        "country_pairs": per_pair,
        "pooled": pool(raw),
        "beats": _beats(per_pair),
    }


def _beats(per_pair: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per metric, for every baseline, the number of splits (with queries) where ``twinning`` is strictly better."""
    out: dict[str, dict[str, int]] = {}
    live = [p for p in per_pair if p["queries"] > 0 and "twinning" in p["rankers"]]
    if not live:
        return out
    metrics = [m for m in live[0]["rankers"]["twinning"] if m.startswith("hit@")] + ["mrr"]
    for m in metrics:
        out[m] = {}
        for name in live[0]["rankers"]:
            if name in LEARNED:
                continue
            out[m][name] = sum(p["rankers"]["twinning"][m] > p["rankers"][name][m] for p in live)
    out["splits"] = {"count": len(live)}
    return out


def evaluate_cold_places(
    cities: pd.DataFrame,
    countries: CountryTable | None,
    pairs: pd.DataFrame,
    *,
    share: float = 0.2,
    seed: int = 0,
    subsets: Mapping[str, Any] | None = None,
    **split_kwargs: Any,
) -> dict[str, Any]:
    """Cold places: :func:`cold_place_split` then one :func:`evaluate_split`, with the subsets ``source_cold`` and
    ``target_cold`` (plus ``subsets``). Returns the split result with ``"holdout": "cold"``, ``"share"``,
    ``"seed"``, ``"cold_places"``, ``"train_pairs"`` and ``"test_pairs"``."""
    train, test, cold = cold_place_split(pairs, share, seed)

    def source_cold(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return np.isin(src, cold)

    def target_cold(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return np.isin(tgt, cold)

    rules: dict[str, Any] = {"source_cold": source_cold, "target_cold": target_cold, **(subsets or {})}
    res = evaluate_split(cities, countries, train, test, subsets=rules, **split_kwargs)
    head = {
        "holdout": "cold",
        "share": float(share),
        "seed": int(seed),
        "cold_places": int(len(cold)),
        "train_pairs": int(len(train)),
        "test_pairs": int(len(test)),
    }
    return {**head, **res}


def format_country_pairs(result: Mapping[str, Any], metrics: Sequence[str] = ("hit@10", "hit@50", "mrr")) -> str:
    """One line per country pair: queries, ``twinning``, ``population`` and the best other baseline (by the last
    of ``metrics``) on each metric; then the count of pairs where ``twinning`` beats each baseline."""
    rows = result["country_pairs"]
    cols = [m for m in metrics if rows and rows[0]["rankers"] and m in next(iter(rows[0]["rankers"].values()))]

    def block(vals: Mapping[str, Any] | None) -> str:
        return "".join(f"{(vals[m] if vals else float('nan')):>9.4f}" for m in cols)

    names = ["twinning", "population"]
    head = f"{'pair':<8}{'test':>6}{'queries':>8}" + "".join(
        f"  {n + ' ' + '/'.join(cols):>{9 * len(cols)}}" for n in names
    )
    head += f"  {'best other baseline':<18}" + "".join(f"{m:>9}" for m in cols)
    lines = [head, "-" * len(head)]
    for p in rows:
        r = p["rankers"]
        others = {n: v for n, v in r.items() if n not in (*LEARNED, "population")}
        best = max(others, key=lambda n: others[n][cols[-1]]) if others and p["queries"] else None
        line = f"{p['pair']:<8}{p['test_pairs']:>6}{p['queries']:>8}"
        line += "".join(f"  {block(r.get(n)):>{9 * len(cols)}}" for n in names)
        line += f"  {best or '-':<18}" + block(others.get(best) if best else None)
        lines.append(line)
    beats = result.get("beats") or {}
    n = (beats.get("splits") or {}).get("count", 0)
    for m in cols:
        if m in beats:
            parts = ", ".join(f"{name} {cnt}" for name, cnt in beats[m].items())
            lines.append(f"twinning {m} strictly above, out of {n} country pairs: {parts}")
    return "\n".join(lines)
