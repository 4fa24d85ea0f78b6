"""The saved form of a fitted :class:`~matcher.likelihood.PartnershipLikelihood`: one joblib file with the model and
its metadata (version, library versions, SHA-256 of the training pairs, parameters), and what lets a later matcher
load an artifact that an earlier one saved, or refuse it with a clear error."""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np
import pandas as pd
import scipy
import sklearn

from .graph import CityIndex
from .pair_features import STAGE2_FEATURES
from .size_prior import SizePrior

ARTIFACT_FORMAT = 3  # bumped when a saved model of an older layout can no longer be loaded


class Fitted(Protocol):
    """What this module reads of a fitted :class:`~matcher.likelihood.PartnershipLikelihood`."""

    index_: CityIndex
    edges_: np.ndarray
    stage1_recall_: float
    metadata_: dict[str, Any]

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


def metadata(model: Fitted, started: _dt.datetime) -> dict[str, Any]:
    """What is saved beside a model fitted from ``started`` (UTC): ``model_version`` is
    ``lk-<first 12 hex of the training pairs' SHA-256>-<UTC fit start>``."""
    sha = pairs_sha256(model.index_, model.edges_)
    version = f"lk-{sha[:12]}-{started:%Y%m%dT%H%M%SZ}"
    return {
        "model_version": version,
        "version": version,
        "artifact_format": ARTIFACT_FORMAT,
        "created_at": started.isoformat(),
        "fit_seconds": (_dt.datetime.now(_dt.UTC) - started).total_seconds(),
        "library_versions": {
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
        },
        "pairs_sha256": sha,
        "n_pairs": int(len(model.edges_)),
        "n_cities": int(model.index_.n),
        "params": model.get_params(),
        "stage1_recall": float(model.stage1_recall_),
        "cv_metrics": None,
    }


def pairs_sha256(index: CityIndex, edges: np.ndarray) -> str:
    """SHA-256 of the TRAIN pairs as sorted (smaller, larger) geonameid pairs: independent of row order."""
    ids = np.sort(index.geonameids[edges], axis=1) if len(edges) else np.zeros((0, 2), np.int64)
    ids = ids[np.lexsort((ids[:, 1], ids[:, 0]))] if len(ids) else ids
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()


def saved_state(state: dict[str, Any]) -> dict[str, Any]:
    """A model's ``__dict__`` as saved: without what is rebuilt on load (the featurizer's large derived arrays) or
    belongs to one process (compiled code set with ``use_booster_predict``)."""
    state = state.copy()
    state.pop("featurizer_", None)
    state.pop("_booster_predict", None)
    return state


def loaded_state(state: dict[str, Any]) -> dict[str, Any]:
    """A saved ``__dict__`` made current: refused (``ValueError``) when an older matcher's layout or re-ranking
    features cannot be scored; parameters added since it was saved take the value that reproduces its behaviour."""
    if "index_" in state and "stage1_weights_" not in state:
        raise ValueError("a PartnershipLikelihood saved by an older matcher version: train the model again")
    names = getattr(state.get("booster_"), "feature_names_in_", None)
    if names is not None and tuple(names) != STAGE2_FEATURES:
        raise ValueError("a PartnershipLikelihood with other re-ranking features (an older matcher): train again")
    state = dict(state)
    for key in ("graph_candidates", "area_candidates", "size_candidates", "blend_sources"):
        state.setdefault(key, 0)
    state.setdefault("size_prior_", SizePrior())
    state.setdefault("country_pair_folds", 0.0)
    state.setdefault("place_folds", 0.0)
    for key in ("stage2_sources", "stage1_sources", "country_pair_totals", "known_gaps_", "n_jobs"):
        state.setdefault(key, None)
    return state


def save(model: Fitted, path: str | Path) -> None:
    """Write ONE joblib artifact: the model and its ``metadata_``."""
    joblib.dump({"model": model, "metadata": model.metadata_}, path, compress=3)


def load(path: str | Path) -> Any:
    """The model of an artifact written by :func:`save` (or a bare pickled model)."""
    obj = joblib.load(path)
    return obj["model"] if isinstance(obj, dict) else obj
