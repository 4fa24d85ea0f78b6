"""Great-circle geometry: the one haversine of the matcher (degrees in, kilometres out)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

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


#: how far the "nearby" pair features reach (:class:`NearIndex`)
NEAR_KM = 100.0
#: the neighbourhood of a place whose partnerships count as its area's (``log_neighbourhood_ties``)
AREA_KM = 30.0


class NearIndex:
    """The places within ``radius_km`` of a point, from a haversine ball tree over the gazetteer (scikit-learn's
    :class:`~sklearn.neighbors.BallTree`): a batch of sources gets its nearby places as one sparse ``(m, n)``
    matrix without computing a distance to every place.

    Border towns twin across the border (Görlitz and Zgorzelec, Frankfurt (Oder) and Słubice, Strasbourg and Kehl):
    181 of the 13,594 partnerships of the towns network join places in two countries less than 50 km apart, 409
    less than 100 km apart; 170 join places of one country less than 100 km apart.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, radius_km: float = NEAR_KM) -> None:
        from sklearn.neighbors import BallTree

        self.n = len(lat)
        self.radius_km = float(radius_km)
        self._tree = BallTree(np.radians(np.column_stack([lat, lon])), metric="haversine")

    def closeness(self, lat: np.ndarray, lon: np.ndarray) -> sp.csr_matrix:
        """``(m, n)`` float32: ``log1p(radius) - log1p(distance km)`` for every place within the radius of each
        point (a place at the point itself gets ``log1p(radius)``), nothing elsewhere."""
        pts = np.radians(np.column_stack([np.asarray(lat, float), np.asarray(lon, float)]))
        ind, dist = self._tree.query_radius(pts, r=self.radius_km / EARTH_RADIUS_KM, return_distance=True)
        counts = np.fromiter((len(i) for i in ind), dtype=np.int64, count=len(ind))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        cols = np.concatenate(ind) if len(ind) else np.zeros(0, np.int64)
        km = np.concatenate(dist) * EARTH_RADIUS_KM if len(dist) else np.zeros(0)
        data = (np.log1p(self.radius_km) - np.log1p(km)).astype(np.float32)
        out = sp.csr_matrix((data, cols.astype(np.int64), indptr), shape=(len(ind), self.n))
        out.sort_indices()
        return out

    def within(self, lat: np.ndarray, lon: np.ndarray) -> sp.csr_matrix:
        """``(m, n)`` float32: 1 for every place within the radius of each point, nothing elsewhere."""
        out = self.closeness(lat, lon)
        out.data[:] = 1.0
        return out
