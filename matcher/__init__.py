"""Pure scoring for Twinning: numpy, scipy, pandas and scikit-learn only (no web, database or queue)."""

from .features import CityTable, CountryTable, ProfileData
from .model import COMPONENTS, DEFAULT_WEIGHTS, TwinningMatcher
from .results import Filters, RankedCandidate
from .sector_fit import SectorFit
from .sectors import SECTOR_KEYS, SECTOR_LABELS, SECTORS

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
    "SectorFit",
    "RankedCandidate",
    "TwinningMatcher",
]
