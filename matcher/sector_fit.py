"""Collaboration sectors for a pair of cities, ranked from both profiles, each with a one-line reason."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .features import CityTable
from .sectors import SECTOR_KEYS, label


@dataclass(frozen=True)
class SectorFit:
    sector: str
    score: float
    reason: str


def sector_fits(t: CityTable, row: int, others: np.ndarray, top: int = 5) -> list[list[SectorFit]]:
    """Ranked collaboration sectors for each pair (row, other) of ``t``, each with a one-line reason."""
    others = np.asarray(others, np.int64)
    a = str(t.names[row])
    oi, si = t.offers[row], t.seeks[row]
    oj, sj = t.offers[others], t.seeks[others]
    kinds = np.stack(
        [
            np.minimum(oi[None, :], sj),  # A offers, B seeks
            np.minimum(oj, si[None, :]),  # B offers, A seeks
            0.9 * np.minimum(si[None, :], sj),  # both seek
            0.5 * np.minimum(oi[None, :], oj),  # both offer
            0.5 * np.broadcast_to(si, sj.shape),  # only A has a profile: what A seeks
            0.5 * sj,  # only B has a profile: what B seeks
        ],
        axis=-1,
    )
    has_a = bool(t.has_profile[row])
    has_b = t.has_profile[others]
    kinds[..., :4] *= (has_a & has_b)[:, None, None]
    kinds[..., 4] *= (has_a & ~has_b)[:, None]
    kinds[..., 5] *= (~has_a & has_b)[:, None]
    best_kind = kinds.argmax(axis=-1)
    best = kinds.max(axis=-1)
    named = (best > 0.05).any(axis=1)  # pairs with at least one sector to name (the others take the defaults)
    result: list[list[SectorFit]] = []
    for q, j in enumerate(others):
        if not named[q]:
            result.append(_default_sectors(a, "", t.population[row], t.population[j]))
            continue
        b = str(t.names[j])
        order = np.argsort(-best[q], kind="stable")
        fits = []
        for s in order[:top]:
            if best[q, s] <= 0.05:
                break
            fits.append(SectorFit(SECTOR_KEYS[s], round(float(best[q, s]), 3), _reason(int(best_kind[q, s]), s, a, b)))
        if not fits:
            fits = _default_sectors(a, b, t.population[row], t.population[j])
        result.append(fits)
    return result


REASONS = (
    "{a} offers {s}, which {b} seeks",
    "{b} offers {s}, which {a} seeks",
    "both seek {s}",
    "both offer {s}",
    "{a} seeks {s}; {b} has no profile yet",
    "{b} seeks {s}; {a} has no profile yet",
)


def _reason(kind: int, sector: int, a: str, b: str) -> str:
    return REASONS[kind].format(a=a, b=b, s=label(SECTOR_KEYS[sector]))


def _default_sectors(a: str, b: str, pop_a: float, pop_b: float) -> list[SectorFit]:
    """Neither profile says anything useful: propose the usual first programmes of a twinning (the same for every
    pair of its size class, so built once per class; a new list each time)."""
    return list(_defaults(bool(min(pop_a, pop_b) >= 1_000_000)))


@functools.cache
def _defaults(big: bool) -> tuple[SectorFit, ...]:
    note = "a usual first programme of twinned cities; neither profile names a shared sector yet"
    keys = ["culture_arts", "education", "youth"]
    if big:
        keys = ["economy_employment", "trade_investment", *keys]
    return tuple(SectorFit(k, round(0.2 - 0.02 * i, 3), f"{label(k)}: {note}") for i, k in enumerate(keys))
