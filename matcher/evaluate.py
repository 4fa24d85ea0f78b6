"""The one evaluation path of Twinning: held-out real partnerships, ranked by every ranker.

:func:`evaluate_split` evaluates one TRAIN/TEST split, :func:`evaluate_kfold` runs it on every fold of a k-fold
split of one pair table and reports mean and standard deviation, :func:`format_table` prints either result.
``twinning evaluate`` (one split, or k-fold with ``--folds``) calls them. Protocol (see docs/evaluation.md):

* every ranker is fitted on TRAIN only;
* each TEST pair ``(a, b)`` whose two cities are in the gazetteer gives two queries, ``a -> b`` and ``b -> a``;
* for a query ``a -> b`` every gazetteer city is a candidate except ``a`` itself and ``a``'s TRAIN partners;
* ``rank(b) = 1 + #{candidates scored strictly higher than b} + #{other candidates scored exactly equal to b}``
  (ties are broken against b);
* per ranker we report ``hit@k`` (share of queries with ``rank <= k``), the MRR (mean of ``1 / rank``), the
  median rank and the number of queries.

Rows:

* ``twinning`` — :class:`~matcher.model.TwinningRanker`: the served score of a pair of cities without profiles
  (the learned partnership likelihood on the log scale of the ``likelihood`` component);
* ``served`` — the list an official sees: the ``twinning`` scores through the same country cap as suggestions
  (:func:`~matcher.rank.top_k` with ``max_country_share``; none of the source's own country where TRAIN says its
  places rarely twin at home, :func:`~matcher.rank.rare_home_groups`). ``hit@k`` counts the target when it is in the
  diversified top-k served for that k (the cap, ``floor(k × share)`` per country, depends on k). The served rank
  (MRR, median) is the target's position in the diversified list of the largest k, ``K``; a target beyond that
  list gets ``K +`` its rank among the remaining candidates in score order (ties against the target);
* the baselines of :mod:`matcher.baselines`: random, population, popularity, nearest, adamic_adar,
  country_affinity.

A query whose target is already a TRAIN partner of its source (the pair is in both tables) has no defined rank
and is skipped; ``skipped`` counts them. Scoring is vectorised: each ranker scores a batch of sources against all
cities at once and ranks are computed with matrix comparisons.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .baselines import (
    AdamicAdarRanker,
    CountryAffinityRanker,
    NearestRanker,
    PopularityRanker,
    PopulationRanker,
    RandomRanker,
    Ranker,
)
from .features import CountryTable
from .graph import CityIndex, adjacency, pair_positions
from .rank import home_caps, rare_home_groups, top_k
from .ranker import TwinningRanker

__all__ = [
    "QuerySubset",
    "Ranker",
    "build_queries",
    "default_rankers",
    "evaluate_kfold",
    "evaluate_split",
    "format_table",
    "ranks_for",
    "served_ranks",
]

SERVED = "served"
QuerySubset = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (source ids, target ids) -> bool mask
DEFAULT_MAX_COUNTRY_SHARE = 1 / 3  # as TwinningMatcher.max_country_share


def default_rankers(
    countries: CountryTable | None = None,
    random_state: int = 0,
    likelihood_params: Mapping[str, Any] | None = None,
) -> dict[str, Ranker]:
    """``twinning`` (the served score, :class:`~matcher.ranker.TwinningRanker`, with ``likelihood_params`` for its
    model) and the six baselines, unfitted."""
    return {
        "twinning": TwinningRanker(countries=countries, likelihood_params=likelihood_params, random_state=random_state),
        "random": RandomRanker(random_state=random_state),
        "population": PopulationRanker(),
        "popularity": PopularityRanker(),
        "nearest": NearestRanker(),
        "adamic_adar": AdamicAdarRanker(),
        "country_affinity": CountryAffinityRanker(),
    }


def build_queries(index: CityIndex, train_edges: np.ndarray, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Directed ``(source, target)`` gazetteer positions for the TEST pairs.

    Returns ``(sources, targets, skipped)``. Pairs with a city outside the gazetteer or a self-pair are dropped;
    queries whose target is a TRAIN partner of the source are dropped and counted in ``skipped``.
    """
    a = index.positions(test["geonameid_a"].to_numpy(), strict=False)
    b = index.positions(test["geonameid_b"].to_numpy(), strict=False)
    ok = (a >= 0) & (b >= 0) & (a != b)
    a, b = a[ok], b[ok]
    src = np.concatenate([a, b])
    tgt = np.concatenate([b, a])
    if len(src) == 0:
        return src, tgt, 0
    adj = adjacency(index.n, train_edges)
    known = np.asarray(adj[src, tgt]).ravel() > 0
    return src[~known], tgt[~known], int(known.sum())


def _candidate_scores(scores: np.ndarray, sources: np.ndarray, excluded: list[np.ndarray]) -> np.ndarray:
    """Scores with non-candidates (the source, its TRAIN partners) set to NaN and non-finite scores to -inf.

    Floating scores keep their dtype (a float32 ranker is compared in float32: no extra ties, half the memory);
    anything else becomes float64.
    """
    scores = np.asarray(scores)
    dtype = scores.dtype if scores.dtype in (np.float32, np.float64) else np.float64
    s = np.array(scores, dtype=dtype, copy=True)
    s[~np.isfinite(s)] = -np.inf
    m = len(sources)
    rows = np.repeat(np.arange(m), [len(e) for e in excluded])
    cols = np.concatenate(excluded) if excluded else np.zeros(0, dtype=np.int64)
    s[rows, cols.astype(np.int64)] = np.nan  # NaN compares False: drops the candidate
    s[np.arange(m), sources] = np.nan
    return s


def ranks_for(scores: np.ndarray, sources: np.ndarray, targets: np.ndarray, excluded: list[np.ndarray]) -> np.ndarray:
    """Protocol ranks of ``targets`` given a ``(m, n)`` score matrix.

    ``excluded[i]`` are the candidate positions removed for query ``i`` (TRAIN partners); the source itself is
    always removed. Non-finite scores count as the lowest possible score.
    """
    s = _candidate_scores(scores, sources, excluded)
    t = s[np.arange(len(sources)), targets][:, None]
    # 1 + #higher + #equal - 1 (the target itself) = #(s >= t): one comparison pass
    return np.count_nonzero(s >= t, axis=1).astype(np.int64)


def served_ranks(
    scores: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    excluded: list[np.ndarray],
    groups: np.ndarray,
    ks: Sequence[int],
    max_country_share: float = DEFAULT_MAX_COUNTRY_SHARE,
    rare_home: np.ndarray | None = None,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Where each target lands in the country-capped list served from ``scores`` (see the module doc).

    Returns ``({k: bool array "target in the top-k served for k"}, served rank)``; ``groups`` is the country
    of every city (the cap applies per group); ``rare_home`` (per group, :func:`~matcher.rank.rare_home_groups`)
    marks the groups whose sources are served none of their own group.
    """
    s = _candidate_scores(scores, sources, excluded)
    full = ranks_for(scores, sources, targets, excluded)
    big = max(ks)
    hits = {k: np.zeros(len(sources), bool) for k in ks}
    rank = np.zeros(len(sources), np.int64)
    for q in range(len(sources)):
        allowed = ~np.isnan(s[q])
        row = np.where(allowed, s[q], -np.inf)
        home = int(groups[sources[q]])
        caps = home_caps(home, bool(rare_home[home])) if rare_home is not None else None
        lists = {
            k: top_k(row, k, allowed, groups=groups, max_group_share=max_country_share, group_caps=caps) for k in ks
        }
        for k, picked in lists.items():
            hits[k][q] = bool(np.any(picked == targets[q]))
        where = np.flatnonzero(lists[big] == targets[q])
        if len(where):
            rank[q] = 1 + int(where[0])
        else:  # beyond the list: K + rank among the candidates not listed (those listed ahead of it leave)
            ahead = int(np.sum(row[lists[big]] >= row[targets[q]]))
            rank[q] = big + full[q] - ahead
    return hits, rank


def _summary(ranks: np.ndarray, ks: Sequence[int], hits: Mapping[int, np.ndarray] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ks:
        inside = hits[k] if hits is not None else ranks <= k
        out[f"hit@{k}"] = float(np.mean(inside)) if len(ranks) else float("nan")
    out["mrr"] = float(np.mean(1.0 / ranks)) if len(ranks) else float("nan")
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["queries"] = int(len(ranks))
    return out


def evaluate_split(
    cities: pd.DataFrame,
    countries: CountryTable | None,
    train_pairs: pd.DataFrame,
    test_pairs: pd.DataFrame,
    *,
    ks: Sequence[int] = (10, 50),
    rankers: Mapping[str, Ranker] | None = None,
    served_from: str | None = "twinning",
    max_country_share: float = DEFAULT_MAX_COUNTRY_SHARE,
    random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int | None = None,
    return_ranks: bool = False,
    subsets: Mapping[str, float | QuerySubset] | None = None,
) -> dict[str, Any]:
    """Fit every ranker on ``train_pairs`` and rank the ``test_pairs`` (both directions) among all ``cities``.

    ``rankers`` defaults to :func:`default_rankers` (``countries``, ``random_state``). When ``served_from`` names
    one of them, a ``served`` row is added right after it: the same scores through the country cap
    ``max_country_share`` (see the module doc). Returns a JSON-ready dict::

        {"queries": N, "skipped": S, "ks": [...], "max_country_share": ..., "served_from": "twinning",
         "rankers": {name: {"hit@k": ..., "mrr": ..., "median_rank": ..., "queries": N,
                            "fit_seconds": ..., "score_seconds": ...}}}

    With ``return_ranks`` it also holds ``"sources"``, ``"targets"`` (geonameids) and a ``"ranks"`` array per
    ranker (not JSON-ready). ``progress(done, total)`` is called after every batch of every ranker.

    ``subsets`` ``{name: population}`` adds ``result["subsets"][name]`` with the same rows over the queries whose
    pair involves a place under that population (either end); ``{name: function}`` instead takes the queries where
    ``function(source geonameids, target geonameids)`` is true (e.g. "the source has no partner in TRAIN"). ``batch_size`` (sources scored at once) defaults to
    about 2·10⁷ / n cities (a few hundred MB of score matrices whatever the gazetteer).
    """
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError("ks must hold positive cut-offs")
    rankers = dict(rankers) if rankers is not None else default_rankers(countries, random_state)
    if served_from is not None and served_from not in rankers:
        raise ValueError(f"served_from={served_from!r} is not one of the rankers {sorted(rankers)}")
    index = CityIndex.from_frame(cities)
    if batch_size is None:
        batch_size = int(np.clip(20_000_000 // max(index.n, 1), 16, 256))
    train_edges = pair_positions(index, train_pairs)
    src, tgt, skipped = build_queries(index, train_edges, test_pairs)
    adj = adjacency(index.n, train_edges)
    excluded_all = [adj.indices[adj.indptr[r] : adj.indptr[r + 1]] for r in src]
    rare_home = rare_home_groups(index.country, train_edges, index.n_countries)
    src_ids = index.geonameids[src]
    total, done = len(src) * len(rankers), 0
    result: dict[str, Any] = {
        "queries": int(len(src)),
        "skipped": skipped,
        "ks": list(ks),
        "max_country_share": float(max_country_share),
        "served_from": served_from,
        "rankers": {},
    }
    if return_ranks:
        result["sources"], result["targets"] = src_ids, index.geonameids[tgt]
    subset_masks = {
        name: _subset_mask(rule, index, src, tgt, src_ids, index.geonameids[tgt])
        for name, rule in (subsets or {}).items()
    }
    if subset_masks:
        result["subsets"] = {}
        for name, mask in subset_masks.items():
            rule = (subsets or {})[name]
            head: dict[str, Any] = {} if callable(rule) else {"population_under": float(rule)}
            result["subsets"][name] = {**head, "queries": int(mask.sum()), "rankers": {}}
    for name, ranker in rankers.items():
        t0 = time.perf_counter()
        ranker.fit(cities, train_pairs)
        fit_s = time.perf_counter() - t0
        serve = name == served_from
        ranks = np.zeros(len(src), dtype=np.int64)
        served = np.zeros(len(src), dtype=np.int64)
        served_hits = {k: np.zeros(len(src), bool) for k in ks}
        score_s = serve_s = 0.0
        for start in range(0, len(src), batch_size):
            sl = slice(start, start + batch_size)
            t0 = time.perf_counter()
            scores = np.asarray(ranker.score_sources(src_ids[sl].tolist()))
            if scores.shape != (len(src_ids[sl]), index.n):
                raise ValueError(f"{name}: score_sources returned shape {scores.shape}")
            ranks[sl] = ranks_for(scores, src[sl], tgt[sl], excluded_all[sl])
            score_s += time.perf_counter() - t0
            if serve:
                t0 = time.perf_counter()
                hits, served[sl] = served_ranks(
                    scores, src[sl], tgt[sl], excluded_all[sl], index.country, ks, max_country_share, rare_home
                )
                for k in ks:
                    served_hits[k][sl] = hits[k]
                serve_s += time.perf_counter() - t0
            done += len(src_ids[sl])
            if progress is not None:
                progress(done, total)
        rows: dict[str, tuple[np.ndarray, dict[int, np.ndarray] | None, float, float]]
        rows = {name: (ranks, None, fit_s, score_s)}
        if serve:
            rows[SERVED] = (served, served_hits, 0.0, serve_s)
        for row, (r, h, f_s, s_s) in rows.items():
            summary = _summary(r, ks, h)
            summary["fit_seconds"], summary["score_seconds"] = f_s, s_s
            if return_ranks:
                summary["ranks"] = r
            result["rankers"][row] = summary
            for sub, inside in subset_masks.items():
                part = _summary(r[inside], ks, None if h is None else {k: v[inside] for k, v in h.items()})
                part["fit_seconds"], part["score_seconds"] = f_s, s_s
                result["subsets"][sub]["rankers"][row] = part
    return result


def _subset_mask(
    rule: float | QuerySubset,
    index: CityIndex,
    src: np.ndarray,
    tgt: np.ndarray,
    src_ids: np.ndarray,
    tgt_ids: np.ndarray,
) -> np.ndarray:
    """The queries of one subset: a population threshold (a place under it at either end) or a function."""
    if callable(rule):
        mask = np.asarray(rule(src_ids, tgt_ids), bool)
        if mask.shape != src.shape:
            raise ValueError(f"a query subset returned shape {mask.shape}, expected {src.shape}")
        return mask
    return np.minimum(index.population[src], index.population[tgt]) < float(rule)


def evaluate_kfold(
    cities: pd.DataFrame,
    countries: CountryTable | None,
    pairs: pd.DataFrame,
    *,
    folds: int = 5,
    seed: int = 0,
    only_folds: Sequence[int] | None = None,
    max_test_pairs: int | None = None,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    **split_kwargs: Any,
) -> dict[str, Any]:
    """K-fold cross-validation over one pair table with :func:`evaluate_split` on every fold.

    The pairs are shuffled with ``seed`` and cut into ``folds`` folds; each fold (or each of ``only_folds``) is
    TEST once and the others are TRAIN. ``max_test_pairs`` subsamples each TEST fold. ``split_kwargs`` go to
    :func:`evaluate_split` (``ks``, ``rankers``, ``max_country_share``, ``progress``, ``batch_size`` ...); its
    ``random_state`` is ``seed``. ``on_fold(i, result)`` is called after each fold. Returns a JSON-ready dict::

        {"folds": F, "seed": seed, "folds_run": [...], "queries_per_fold": [...], "ks": [...],
         "rankers": {name: {metric: {"mean": ..., "std": ...}}}, "per_fold": [evaluate_split result, ...]}
    """
    split_kwargs.setdefault("random_state", seed)
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(len(pairs)), folds)
    run = list(only_folds) if only_folds is not None else list(range(folds))
    per_fold = []
    for i in run:
        test = pairs.iloc[parts[i]]
        if max_test_pairs is not None and len(test) > max_test_pairs:
            test = test.sample(n=max_test_pairs, random_state=seed)
        train = pairs.iloc[np.concatenate([p for j, p in enumerate(parts) if j != i])]
        res = evaluate_split(cities, countries, train, test, **split_kwargs)
        per_fold.append(res)
        if on_fold is not None:
            on_fold(i, res)
    out: dict[str, Any] = {
        "folds": folds,
        "seed": seed,
        "folds_run": run,
        "queries_per_fold": [r["queries"] for r in per_fold],
        "ks": per_fold[0]["ks"] if per_fold else [],
        "rankers": _mean_std([r["rankers"] for r in per_fold]),
        "per_fold": per_fold,
    }
    if per_fold and "subsets" in per_fold[0]:
        out["subsets"] = {
            name: {
                "folds": folds,
                "seed": seed,
                **{k: v for k, v in per_fold[0]["subsets"][name].items() if k == "population_under"},
                "queries_per_fold": [r["subsets"][name]["queries"] for r in per_fold],
                "rankers": _mean_std([r["subsets"][name]["rankers"] for r in per_fold]),
            }
            for name in per_fold[0]["subsets"]
        }
    return out


def _mean_std(per_fold: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{ranker: {metric: {"mean", "std"}}}`` over the folds' ``{ranker: {metric: value}}``."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in per_fold[0] if per_fold else ():
        metrics = [m for m, v in per_fold[0][name].items() if isinstance(v, float)]
        summary[name] = {}
        for m in metrics:
            v = np.array([r[name][m] for r in per_fold], dtype=float)
            summary[name][m] = {"mean": float(v.mean()), "std": float(v.std())}
    return summary


def format_table(result: Mapping[str, Any]) -> str:
    """Fixed-width table, one row per ranker: metrics of :func:`evaluate_split`, or mean ± std of
    :func:`evaluate_kfold`, plus fit and scoring seconds."""
    rankers: Mapping[str, Any] = result["rankers"]
    if not rankers:
        return "(no rankers)"
    first = next(iter(rankers.values()))
    metrics = [m for m in first if m.startswith("hit@")] + ["mrr", "median_rank"]
    cv = isinstance(first["mrr"], Mapping)
    width = 20 if cv else 13

    def cell(m: str, v: Any) -> str:
        if cv:
            fmt = "{:.1f} ± {:.1f}" if m == "median_rank" else "{:.4f} ± {:.4f}"
            return f"{fmt.format(v['mean'], v['std']):>{width}}"
        return f"{v:>{width}.1f}" if m == "median_rank" else f"{v:>{width}.4f}"

    def seconds(v: Any) -> float:
        return float(v["mean"] if cv else v)

    header = f"{'ranker':<18}" + "".join(f"{m:>{width}}" for m in metrics) + f"{'fit s':>9}{'score s':>9}"
    if cv:
        head = f"{result['folds']}-fold CV (seed {result['seed']}), queries per fold: {result['queries_per_fold']}"
    else:
        head = f"queries: {result.get('queries', '?')}"
    lines = [head, header, "-" * len(header)]
    for name, vals in rankers.items():
        cells = "".join(cell(m, vals[m]) for m in metrics)
        timing = f"{seconds(vals['fit_seconds']):>9.1f}{seconds(vals['score_seconds']):>9.1f}"
        lines.append(f"{name:<18}{cells}{timing}")
    return "\n".join(lines)
