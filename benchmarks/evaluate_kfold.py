"""K-fold cross-validation of the partnership rankers on seed/partnerships_train.csv.

The pairs are shuffled with ``--seed`` and split into ``--folds`` folds; each
fold in turn is the TEST set and the other folds are TRAIN. Every ranker is
fitted on TRAIN only and evaluated with :func:`matcher.evaluate.evaluate`
(both directions per pair, self and TRAIN partners excluded, ties against the
target). Prints mean +- std per ranker and metric, the per-fold ratio of the
``twinning`` hit@k to the best baseline's, fit/scoring times, and the
first-stage (shortlist) recall of the two-stage model.

Example::

    .venv/bin/python benchmarks/evaluate_kfold.py --folds 5 --seed 2026 --k 10 --k 50
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matcher.evaluate import default_rankers, evaluate  # noqa: E402
from matcher.graph import read_cities, read_pairs  # noqa: E402
from matcher.likelihood import PartnershipLikelihood  # noqa: E402


def _progress(prefix: str) -> Callable[[int, int], None]:
    last = [0.0]

    def cb(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{prefix} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return cb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold split and of the rankers")
    ap.add_argument("--k", type=int, action="append", help="hit@k cut-offs (repeatable; default 10 and 50)")
    ap.add_argument("--max-test-pairs", type=int, default=None, help="subsample each test fold to this many pairs")
    ap.add_argument("--cities", default=str(ROOT / "seed" / "cities15000.csv.gz"))
    ap.add_argument("--pairs", default=str(ROOT / "seed" / "partnerships_train.csv"))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--only-folds", type=int, nargs="*", default=None, help="run only these fold numbers")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    ks = tuple(sorted(set(args.k or [10, 50])))

    cities = read_cities(args.cities)
    pairs = read_pairs(args.pairs)
    rng = np.random.default_rng(args.seed)
    folds = np.array_split(rng.permutation(len(pairs)), args.folds)
    shortlist = PartnershipLikelihood().n_candidates + PartnershipLikelihood().cold_candidates
    eval_ks = tuple(sorted(set(ks) | {shortlist}))

    per_fold: list[dict] = []
    fold_ids = args.only_folds if args.only_folds is not None else list(range(args.folds))
    for i in fold_ids:
        test = pairs.iloc[folds[i]]
        if args.max_test_pairs is not None and len(test) > args.max_test_pairs:
            test = test.sample(n=args.max_test_pairs, random_state=args.seed)
        train = pairs.iloc[np.concatenate([f for j, f in enumerate(folds) if j != i])]
        res = evaluate(
            cities,
            train,
            test,
            ks=eval_ks,
            rankers=default_rankers(random_state=args.seed),
            progress=None if args.no_progress else _progress(f"fold {i + 1}/{args.folds}"),
            batch_size=args.batch_size,
        )
        per_fold.append(res)
        r = res["rankers"]
        best = max((n for n in r if n != "twinning"), key=lambda n: r[n][f"hit@{ks[0]}"])
        ratio = r["twinning"][f"hit@{ks[0]}"] / max(r[best][f"hit@{ks[0]}"], 1e-12)
        print(
            f"fold {i + 1}: queries={res['queries']} twinning hit@{ks[0]}={r['twinning'][f'hit@{ks[0]}']:.4f} "
            f"best baseline={best} ({r[best][f'hit@{ks[0]}']:.4f}) ratio={ratio:.2f} "
            f"first-stage recall={r['twinning'][f'hit@{shortlist}']:.4f}",
            flush=True,
        )

    names = list(per_fold[0]["rankers"])
    metrics = [f"hit@{k}" for k in ks] + ["mrr", "median_rank"]
    print()
    print(
        f"{args.folds}-fold CV (seed {args.seed}), folds run: {len(per_fold)}, "
        f"queries per fold: {[r['queries'] for r in per_fold]}"
    )
    header = f"{'ranker':<18}" + "".join(f"{m:>20}" for m in metrics) + f"{'fit s':>9}{'score s':>9}"
    print(header)
    print("-" * len(header))
    for n in names:
        cells = []
        for m in metrics:
            v = np.array([r["rankers"][n][m] for r in per_fold])
            fmt = "{:.1f} ± {:.1f}" if m == "median_rank" else "{:.4f} ± {:.4f}"
            cells.append(f"{fmt.format(v.mean(), v.std()):>20}")
        fit_s = np.mean([r["rankers"][n]["fit_seconds"] for r in per_fold])
        sc_s = np.mean([r["rankers"][n]["score_seconds"] for r in per_fold])
        print(f"{n:<18}" + "".join(cells) + f"{fit_s:>9.1f}{sc_s:>9.1f}")

    k0 = f"hit@{ks[0]}"
    ratios, mrr_ratios, best_names = [], [], []
    for r in per_fold:
        rr = r["rankers"]
        base = [n for n in rr if n != "twinning"]
        best = max(base, key=lambda n: rr[n][k0])
        best_mrr = max(base, key=lambda n: rr[n]["mrr"])
        best_names.append(best)
        ratios.append(rr["twinning"][k0] / max(rr[best][k0], 1e-12))
        mrr_ratios.append(rr["twinning"]["mrr"] / max(rr[best_mrr]["mrr"], 1e-12))
    print()
    print(
        f"ratio twinning {k0} / best baseline {k0} per fold: "
        + ", ".join(f"{x:.2f} ({b})" for x, b in zip(ratios, best_names, strict=True))
        + f"; mean {np.mean(ratios):.2f} ± {np.std(ratios):.2f}"
    )
    print(
        "ratio twinning MRR / best baseline MRR per fold: "
        + ", ".join(f"{x:.2f}" for x in mrr_ratios)
        + f"; mean {np.mean(mrr_ratios):.2f}"
    )
    rec = np.array([r["rankers"]["twinning"][f"hit@{shortlist}"] for r in per_fold])
    print(f"first-stage recall (target in the {shortlist}-city shortlist): {rec.mean():.4f} ± {rec.std():.4f}")
    tw_fit = [r["rankers"]["twinning"]["fit_seconds"] for r in per_fold]
    tw_sc = [r["rankers"]["twinning"]["score_seconds"] for r in per_fold]
    print(
        f"twinning fit {np.mean(tw_fit):.1f} s/fold, scoring {np.mean(tw_sc):.1f} s/fold "
        f"({np.mean(tw_sc) / np.mean([r['queries'] for r in per_fold]) * 1000:.1f} ms/query)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
