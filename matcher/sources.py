"""The sources of one scoring call and the per-source arrays that their features share.

:class:`Sources` is a batch of query places (gazetteer rows, or one virtual city); :class:`Batch` is those sources
on one graph (a :class:`~matcher.pair_features.Featurizer`), with the partner counts, graph products and regional
sums that several features read, each computed on first use. :meth:`Featurizer.batch
<matcher.pair_features.Featurizer.batch>` hands the stage-1 matrix and the stage-2 frame of the same sources the
same Batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .graph import CityIndex
    from .graph_stats import GraphStats
    from .pair_features import Featurizer


@dataclass
class Sources:
    """A batch of query sources: gazetteer rows, or one virtual city (row -1) for :meth:`score_new`."""

    rows: np.ndarray
    country: np.ndarray
    population: np.ndarray
    pop_rank: np.ndarray
    capital: np.ndarray
    lat: np.ndarray  # degrees
    lon: np.ndarray  # degrees
    admin1: np.ndarray
    adj: sp.csr_matrix  # (m, n) partners of each source

    @property
    def m(self) -> int:
        return len(self.rows)


class Batch:
    """A batch of sources on one graph, with the per-source arrays its features share (computed on first use)."""

    def __init__(self, fz: Featurizer, src: Sources) -> None:
        self.fz: Featurizer = fz
        self.src: Sources = src
        self.s: GraphStats = fz.stats
        self.index: CityIndex = fz.index

    @cached_property
    def partner_countries(self) -> np.ndarray:
        """``(m, C)``: partners of each source per country."""
        return sp.csr_matrix(self.src.adj @ self.s.partner_countries).toarray()

    @cached_property
    def hop2_countries(self) -> np.ndarray:
        """``(m, C)``: partners-of-partners (paths of length 2) of each source per country."""
        return sp.csr_matrix(self.src.adj @ self.s.hop2_countries).toarray()

    @cached_property
    def ties_to_continent(self) -> np.ndarray:  # (m, C): log1p partners of each source per continent of a country
        return np.log1p(self.partner_countries @ np.asarray(self.fz.meta.same_continent, float))

    @cached_property
    def degree(self) -> np.ndarray:
        return np.asarray(self.src.adj.sum(axis=1)).ravel()

    @cached_property
    def partner_log_pop(self) -> np.ndarray:
        """``(m,)`` mean log population of each source's partners (NaN without partners)."""
        return mean_over(self.src.adj, self.fz.log_pop, self.degree)

    @cached_property
    def common(self) -> sp.csr_matrix:
        """``(m, n)``: common neighbours of each source and every city."""
        return sp.csr_matrix(self.src.adj @ self.s.adj)

    @cached_property
    def adamic_adar(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.src.adj @ self.s.aa_adj.T)

    @cached_property
    def resource_allocation(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.src.adj @ self.s.ra_adj.T)

    @cached_property
    def paths3(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.common @ self.s.adj)

    @cached_property
    def cand_ties_to_src_region(self) -> sp.csr_matrix:
        """``(m, n)`` sparse: partners of every city in the source's admin1 region (0 for a virtual source)."""
        reg = np.where(self.src.admin1 >= 0, self.src.admin1, 0)
        out = sp.csr_matrix(self.s.partner_regions_csc[:, reg].T)
        real = sp.diags((self.src.admin1 >= 0).astype(np.float64))
        return sp.csr_matrix(real @ out)

    @cached_property
    def src_ties_to_region(self) -> sp.csr_matrix:
        """``(m, R)`` sparse: partners of each source per admin1 region."""
        return sp.csr_matrix(self.src.adj @ self.s.partner_regions)

    @cached_property
    def log_src_ties_to_cand_region(self) -> sp.csr_matrix:
        """``(m, n)`` sparse: log1p partners of each source in every candidate's admin1 region."""
        return sp.csr_matrix(self.src_ties_to_region.log1p() @ self.fz.region_members)


def mean_over(adj: sp.spmatrix, values: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Row means of ``values`` over the partners in ``adj`` (NaN for a row without partners)."""
    total = np.asarray(adj @ values, float).ravel()
    deg = np.asarray(degree, float)
    return np.divide(total, deg, out=np.full(len(total), np.nan), where=deg > 0)
