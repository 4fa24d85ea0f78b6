"""Great-circle geometry: the one haversine of the matcher (degrees in, kilometres out)."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def haversine_km(
    lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float, lon2: np.ndarray | float
) -> np.ndarray:
    """Great-circle distance in km between points given in **degrees**; the arguments broadcast like numpy arrays.

    One point to many: ``haversine_km(lat, lon, lats, lons)``; every source to every target:
    ``haversine_km(lats[:, None], lons[:, None], lats[None, :], lons[None, :])``.
    """
    p1, l1, p2, l2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (lat1, lon1, lat2, lon2))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
