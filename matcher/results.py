"""The shapes of a query and its answer: candidate filters, a ranked candidate, and its JSON-ready form; and what
the scorer needs of a likelihood model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .sector_fit import SectorFit
from .sectors import label


@dataclass(frozen=True)
class Filters:
    """Candidate filters; an empty filter keeps every candidate."""

    countries: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    min_population: float | None = None
    max_population: float | None = None
    max_distance_km: float | None = None
    exclude_ids: frozenset[int] = frozenset()  # city ids never to suggest (e.g. recently rejected pairs)
    max_country_share: float | None = None  # overrides the matcher's diversity rule for this query


@dataclass(frozen=True)
class RankedCandidate:
    """One candidate partner of a city as the matcher ranks and explains it (stored and served as a suggestion)."""

    row: int
    city_id: int
    score: float
    components: dict[str, float]
    sectors: list[SectorFit] = field(default_factory=list)
    distance_km: float = 0.0


def describe(s: RankedCandidate) -> dict[str, Any]:
    """A JSON-ready dict of a suggestion (without the city record)."""
    return {
        "score": s.score,
        "components": s.components,
        "sectors": [
            {"sector": f.sector, "label": label(f.sector), "score": f.score, "reason": f.reason} for f in s.sectors
        ],
        "distance_km": s.distance_km,
    }


class Likelihood(Protocol):
    """What the scorer needs from a fitted partnership-likelihood model."""

    geonameids_: np.ndarray

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray: ...

    def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray: ...
