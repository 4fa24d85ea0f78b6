"""K-fold cross-validation of the partnership rankers on seed/partnerships_train.csv.

A thin wrapper over :func:`matcher.evaluate.evaluate_kfold` (the same path as ``twinning evaluate``): the pairs
are shuffled with ``--seed`` and split into ``--folds`` folds; each fold in turn is the TEST set and the other
folds are TRAIN. Rows: ``twinning`` (the served score), ``served`` (the country-capped list an official sees) and
the six baselines. Prints one line per fold, then mean ± std per ranker and metric and the ratio of the
``twinning`` and ``served`` hit@k to the best baseline's; ``--json`` prints one JSON object instead.

Example::

    .venv/bin/python benchmarks/evaluate_kfold.py --folds 5 --seed 2026 --k 10 --k 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matcher import CountryTable  # noqa: E402
from matcher.evaluate import evaluate_kfold, format_table  # noqa: E402
from seed.readers import CITIES_FILE, PARTNERSHIPS_FILE, read_cities, read_countries, read_pairs  # noqa: E402

LEARNED = ("twinning", "served")


def _progress(prefix: str) -> Callable[[int, int], None]:
    last = [0.0]

    def cb(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        filled = int(30 * done / max(total, 1))
        sys.stderr.write(f"\r{prefix} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return cb


def _best_baseline(rankers: dict[str, Any], metric: str) -> str:
    return max((n for n in rankers if n not in LEARNED), key=lambda n: rankers[n][metric])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold split and of the rankers")
    ap.add_argument("--k", type=int, action="append", help="hit@k cut-offs (repeatable; default 10 and 50)")
    ap.add_argument("--max-test-pairs", type=int, default=None, help="subsample each test fold to this many pairs")
    ap.add_argument("--cities", default=str(CITIES_FILE))
    ap.add_argument("--pairs", default=str(PARTNERSHIPS_FILE))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--only-folds", type=int, nargs="*", default=None, help="run only these fold numbers (0-based)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object (without per-query ranks)")
    args = ap.parse_args(argv)
    ks = tuple(sorted(set(args.k or [10, 50])))
    k0 = f"hit@{ks[0]}"

    cities = read_cities(args.cities)
    pairs = read_pairs(args.pairs)
    countries = CountryTable.from_records(read_countries().to_dict("records"))

    def on_fold(i: int, res: dict[str, Any]) -> None:
        r = res["rankers"]
        best = _best_baseline(r, k0)
        learned = " ".join(f"{n} {k0}={r[n][k0]:.4f}" for n in LEARNED if n in r)
        print(
            f"fold {i + 1}: queries={res['queries']} {learned} best baseline={best} ({r[best][k0]:.4f})",
            file=sys.stderr if args.json else sys.stdout,
            flush=True,
        )

    progress = None if args.no_progress else _progress("evaluating")
    result = evaluate_kfold(
        cities,
        countries,
        pairs,
        folds=args.folds,
        seed=args.seed,
        only_folds=args.only_folds,
        max_test_pairs=args.max_test_pairs,
        on_fold=on_fold,
        ks=ks,
        progress=progress,
        batch_size=args.batch_size,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print()
    print(format_table(result))
    print()
    for name in LEARNED:
        if name not in result["rankers"]:
            continue
        ratios, best_names = [], []
        for res in result["per_fold"]:
            r = res["rankers"]
            best = _best_baseline(r, k0)
            best_names.append(best)
            ratios.append(r[name][k0] / max(r[best][k0], 1e-12))
        print(
            f"ratio {name} {k0} / best baseline {k0} per fold: "
            + ", ".join(f"{x:.2f} ({b})" for x, b in zip(ratios, best_names, strict=True))
            + f"; mean {np.mean(ratios):.2f} ± {np.std(ratios):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
