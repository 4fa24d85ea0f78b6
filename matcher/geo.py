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
    """The places within ``radius_km`` of a point, from a k-d tree over the places as points on the unit sphere
    (scikit-learn's :class:`~sklearn.neighbors.KDTree`; a chord of ``2·sin(d / 2R)`` is an arc of ``d``): a batch of
    sources gets its nearby places as one sparse ``(m, n)`` matrix without computing a distance to every place.
    (A haversine ``BallTree`` finds the same places at 2–3× the CPU.)

    Border towns twin across the border (Görlitz and Zgorzelec, Frankfurt (Oder) and Słubice, Strasbourg and Kehl):
    181 of the 13,594 partnerships of the towns network join places in two countries less than 50 km apart, 409
    less than 100 km apart; 170 join places of one country less than 100 km apart.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, radius_km: float = NEAR_KM) -> None:
        from sklearn.neighbors import KDTree

        self.n = len(lat)
        self.radius_km = float(radius_km)
        self._chord = 2.0 * np.sin(self.radius_km / (2.0 * EARTH_RADIUS_KM))
        self._tree = KDTree(_unit_vectors(lat, lon))

    def _query(self, lat: np.ndarray, lon: np.ndarray, distance: bool) -> tuple[sp.csr_matrix, np.ndarray]:
        found = self._tree.query_radius(_unit_vectors(lat, lon), r=self._chord, return_distance=distance)
        ind, dist = found if distance else (found, [])
        counts = np.fromiter((len(i) for i in ind), dtype=np.int64, count=len(ind))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        cols = np.concatenate(ind).astype(np.int64) if len(ind) else np.zeros(0, np.int64)
        chord = np.concatenate(dist) if distance and len(dist) else np.zeros(len(cols))
        out = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(ind), self.n))
        return out, chord

    def closeness(self, lat: np.ndarray, lon: np.ndarray) -> sp.csr_matrix:
        """``(m, n)`` float32: ``log1p(radius) - log1p(distance km)`` for every place within the radius of each
        point (a place at the point itself gets ``log1p(radius)``), nothing elsewhere."""
        out, chord = self._query(lat, lon, distance=True)
        km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        out.data = np.maximum(np.log1p(self.radius_km) - np.log1p(km), 0.0).astype(np.float32)
        out.sort_indices()
        return out

    def within(self, lat: np.ndarray, lon: np.ndarray) -> sp.csr_matrix:
        """``(m, n)`` float32: 1 for every place within the radius of each point, nothing elsewhere."""
        out, _ = self._query(lat, lon, distance=False)
        out.sort_indices()
        return out


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``(m, 3)`` points on the unit sphere of latitudes and longitudes in degrees."""
    p, lam = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    return np.column_stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)])
