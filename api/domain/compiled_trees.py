"""The re-ranker compiled to machine code, for the service's scoring (re-scoring jobs and live suggestions).

The likelihood model's re-ranker is a scikit-learn ``HistGradientBoostingClassifier`` (250 trees). Scoring one
batch of 32 places re-ranks ~17,600 shortlisted pairs, and scikit-learn walks the trees one at a time over all the
rows: about half of a re-score's CPU. Treelite translates the fitted trees and TL2cgen compiles them to C with the
machine's C compiler (``gcc``), thresholds quantized to integer comparisons; the compiled predictor answers the
same probabilities (float64 throughout) about 3-4x faster.

:func:`compiled_predictor` builds it once per fitted re-ranker and keeps the shared library in a cache directory
(by a hash of the pickled booster and the compiler's version): the Celery pool processes that start together build
it once (a file lock; the others wait and load it), written under a temporary name and renamed into place. Before
it is used, it must agree with scikit-learn to 1e-9 on rows made of the split thresholds, the floats just below and
above them, the values between and beyond them, and missing values (:func:`probe_rows`). Without a compiler,
without the libraries, or with any disagreement, the answer is ``None`` and scoring stays with scikit-learn (logged
once). ``TWINNING_COMPILED_TREES=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import pickle
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
TOLERANCE = 1e-9
KEEP = 3  # compiled libraries kept in the cache directory (the newest)
LOW_BITS = np.uint64(0xFFFFFFFF)


def compiled_predictor(booster: Any, cache_dir: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function from rows (C-ordered float64, the booster's feature order) to the booster's probabilities of the
    positive class, or ``None`` when it cannot be built or does not agree with scikit-learn."""
    try:
        import tl2cgen
        import treelite.sklearn
    except ImportError:
        log.warning("treelite/tl2cgen are not installed: the re-ranker is scored by scikit-learn")
        return None
    try:
        key = hashlib.sha256(pickle.dumps(booster, protocol=5)).hexdigest()[:20]
        lib = Path(cache_dir) / f"reranker-{key}-tl2cgen{tl2cgen.__version__}.so"
        if not lib.exists():
            lib.parent.mkdir(parents=True, exist_ok=True)
            with open(lib.with_suffix(".lock"), "w") as held:
                fcntl.flock(held, fcntl.LOCK_EX)  # one process builds it; the others wait, then load it
                if not lib.exists():
                    _build(treelite.sklearn.import_model(booster), lib)
        predict = _per_thread(str(lib), booster)
        x = probe_rows(booster)
        worst = float(np.max(np.abs(predict(x) - sklearn_proba(booster, x))))
    except Exception:  # no compiler, a failed build or load: scikit-learn scores instead
        log.warning("could not compile the re-ranker: it is scored by scikit-learn", exc_info=True)
        return None
    if not worst <= TOLERANCE:
        log.warning("the compiled re-ranker differs from scikit-learn by %.3g: it is scored by scikit-learn", worst)
        return None
    log.info("re-ranker compiled (%s; agrees with scikit-learn to %.1g)", lib.name, worst)
    return predict


def _build(model: Any, lib: Path) -> None:
    import tl2cgen

    work = Path(tempfile.mkdtemp(prefix="reranker-", dir=lib.parent))
    try:
        part = work / lib.name
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # TL2cgen prints its native log: keep it out of a command's output
            tl2cgen.export_lib(
                model,
                toolchain="gcc",
                libpath=str(part),
                params={"quantize": 1, "parallel_comp": 8},
                nthread=os.cpu_count() or 1,
            )
        log.debug("tl2cgen: %s", out.getvalue().strip())
        os.replace(part, lib)  # atomic: another process sees the whole library or none
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(lib.parent)


def _prune(directory: Path, keep: int = KEEP) -> None:
    """Remove all but the ``keep`` newest libraries and their locks: each trained model adds one (~300 KB). A process
    still using an older one keeps it mapped; one that loads it later builds it again."""
    with contextlib.suppress(OSError):  # another process may be pruning the same files
        libs = sorted(directory.glob("reranker-*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in libs[keep:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".lock").unlink(missing_ok=True)


def _per_thread(lib: str, booster: Any) -> Callable[[np.ndarray], np.ndarray]:
    """TL2cgen's predictor may be called by one thread at a time: each thread loads its own (one worker thread,
    the caller's; the library itself is mapped once).

    The compiled code reads each value through ``union Entry {int missing; double fvalue; ...}`` and takes a value
    whose first four bytes read as -1 for a missing one: a double whose low 32 bits are all ones (such as
    ``0.375 - 2**-54``, a rounding of 0.375). The rows holding such a value (about one in 80 million values at
    random, more where sums round just below a round number) are scored by scikit-learn."""
    import tl2cgen

    local = threading.local()

    def predict(x: np.ndarray) -> np.ndarray:
        pred = getattr(local, "predictor", None)
        if pred is None:
            pred = local.predictor = tl2cgen.Predictor(lib, nthread=1)
        rows = np.ascontiguousarray(x, dtype=np.float64)
        out = np.asarray(pred.predict(tl2cgen.DMatrix(rows, dtype="float64")), np.float64).reshape(len(rows))
        read_as_missing = ((rows.view(np.uint64) & LOW_BITS) == LOW_BITS).any(axis=1)
        if read_as_missing.any():
            out[read_as_missing] = sklearn_proba(booster, rows[read_as_missing])
        return out

    return predict


def sklearn_proba(booster: Any, x: np.ndarray) -> np.ndarray:
    """scikit-learn's probabilities of the positive class for the rows ``x``, passed with the feature names the
    booster was fitted with (without them scikit-learn warns)."""
    names = getattr(booster, "feature_names_in_", None)
    return booster.predict_proba(pd.DataFrame(x, columns=names) if names is not None else x)[:, 1]


def probe_rows(booster: Any, rows: int = 4096, seed: int = 0) -> np.ndarray:
    """Rows where a compiled comparison could go the other way: each feature exactly at one of its split thresholds
    (the bin edges), the next float below or above it, halfway between two, beyond the outermost, or missing."""
    rng = np.random.default_rng(seed)
    edges = booster._bin_mapper.bin_thresholds_  # per feature: the values between its bins
    x = np.empty((rows, len(edges)), np.float64)
    for f, t in enumerate(edges):
        t = np.sort(np.asarray(t, np.float64))
        if t.size == 0:
            x[:, f] = rng.normal(size=rows)
            continue
        i = rng.integers(0, t.size, rows)
        nxt = np.where(i + 1 < t.size, t[np.minimum(i + 1, t.size - 1)], t[-1] + 1.0)
        kind = rng.integers(0, 6, rows)
        v = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
            [t[i], np.nextafter(t[i], -np.inf), np.nextafter(t[i], np.inf), (t[i] + nxt) / 2, t[0] - 1.0],
            t[-1] + 1.0,
        )
        x[:, f] = np.where(rng.random(rows) < 0.05, np.nan, v)
    return x
