"""Pure scoring for Twinning: numpy, scipy, pandas and scikit-learn only (no web, database or queue).

The names below are imported on first use (PEP 562), so that importing one light submodule (``matcher.sectors``,
as the API's schemas do) does not import scikit-learn: the service starts serving sooner, and the matcher's
heavy modules load when the first suggestion or training needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .features import CityTable, CountryTable, ProfileData
    from .model import COMPONENTS, DEFAULT_WEIGHTS, TwinningMatcher
    from .results import Filters, RankedCandidate
    from .sector_fit import SectorFit
    from .sectors import SECTOR_KEYS, SECTOR_LABELS, SECTORS

_EXPORTS = {
    "COMPONENTS": "model",
    "DEFAULT_WEIGHTS": "model",
    "TwinningMatcher": "model",
    "CityTable": "features",
    "CountryTable": "features",
    "ProfileData": "features",
    "Filters": "results",
    "RankedCandidate": "results",
    "SectorFit": "sector_fit",
    "SECTORS": "sectors",
    "SECTOR_KEYS": "sectors",
    "SECTOR_LABELS": "sectors",
}

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "SECTORS",
    "SECTOR_KEYS",
    "SECTOR_LABELS",
    "CityTable",
    "CountryTable",
    "Filters",
    "ProfileData",
    "RankedCandidate",
    "SectorFit",
    "TwinningMatcher",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matcher' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
