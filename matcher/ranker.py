"""The served score as an evaluation ranker: the ``twinning`` row of :func:`matcher.evaluate.evaluate_split`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .features import CityTable, CountryTable
from .model import TwinningMatcher


class TwinningRanker:
    """The served score as an evaluation ranker (the ``twinning`` row of :func:`matcher.evaluate.evaluate_split`).

    ``fit`` fits the learned :class:`~matcher.likelihood.PartnershipLikelihood` on the training pairs and a
    :class:`TwinningMatcher` (no profiles) with those pairs as existing partnerships; ``score_sources`` returns
    :meth:`TwinningMatcher.score_rows`, i.e. exactly the score suggestions get for cities without profiles. With
    a likelihood present, :meth:`TwinningMatcher.blend` leaves the gazetteer components (``size``, ``context``)
    unweighted, so that score is the ``likelihood`` component alone — a strictly increasing transform of the
    learned probability: it ranks candidates as the likelihood model does.
    """

    def __init__(
        self,
        countries: CountryTable | None = None,
        weights: Mapping[str, float] | None = None,
        likelihood_params: Mapping[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.countries = countries
        self.weights = weights
        self.likelihood_params = likelihood_params
        self.random_state = random_state

    def fit(self, cities: pd.DataFrame, pairs: pd.DataFrame) -> TwinningRanker:
        from .likelihood import PartnershipLikelihood

        params = dict(self.likelihood_params or {})
        params.setdefault("random_state", self.random_state)
        self.likelihood_ = PartnershipLikelihood(**params).fit(cities, pairs)
        table = CityTable.build(cities, {}, self.countries)
        a = pairs["geonameid_a"].to_numpy(np.int64)
        b = pairs["geonameid_b"].to_numpy(np.int64)
        known = np.array([x in table.row_of_id and y in table.row_of_id for x, y in zip(a, b, strict=True)], bool)
        rows = np.array([(table.row_of_id[x], table.row_of_id[y]) for x, y in zip(a[known], b[known], strict=True)])
        self.matcher_ = TwinningMatcher(weights=self.weights, likelihood=self.likelihood_).fit(
            table, rows.reshape(-1, 2)
        )
        return self

    def score_sources(self, geonameids: Sequence[int]) -> np.ndarray:
        table = self.matcher_.table_
        return self.matcher_.score_rows(np.array([table.row(int(g)) for g in geonameids], np.int64))
