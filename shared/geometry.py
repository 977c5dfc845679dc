"""Geometry over WGS84 points, as coverage areas and report zones need it: distances, polygons and
which of many coverage shapes hold a point (vectorised). Pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Corners = Sequence[tuple[float, float]]

EARTH_RADIUS_KM = 6371.0088


def in_polygon(lat: float, lon: float, corners: Sequence[tuple[float, float]]) -> bool:
    """Whether a point lies inside a polygon of (lat, lon) corners (even-odd ray casting)."""
    inside = False
    j = len(corners) - 1
    for i, (yi, xi) in enumerate(corners):
        yj, xj = corners[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def doubled_area(corners: Sequence[tuple[float, float]]) -> float:
    """Twice the signed area of a polygon (shoelace), in squared degrees: zero when it is degenerate."""
    return sum(
        y1 * x2 - x1 * y2 for (y1, x1), (y2, x2) in zip(corners, [*corners[1:], corners[0]], strict=True)
    )


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def haversine_many_km(lat: float, lon: float, lats: Floats, lons: Floats) -> Floats:
    """Great-circle distance from one point to many, vectorised."""
    p1, p2 = math.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons) - math.radians(lon)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


def area_box(area: Corners) -> tuple[float, float, float, float]:
    """The bounding box (lat min, lat max, lon min, lon max) of a polygon."""
    lats = [c[0] for c in area]
    lons = [c[1] for c in area]
    return min(lats), max(lats), min(lons), max(lons)


def radius_boxes(lat: Floats, lon: Floats, radius_km: Floats) -> Floats:
    """Bounding boxes (lat min, lat max, lon min, lon max) of circles, vectorised."""
    dlat = np.degrees(radius_km / EARTH_RADIUS_KM)
    # Near the poles a radius spans every longitude.
    dlon = np.minimum(180.0, dlat / np.maximum(np.cos(np.radians(lat)), 1e-6))
    return np.stack([lat - dlat, lat + dlat, lon - dlon, lon + dlon], axis=1).reshape(len(lat), 4)


def covering(
    lat: float,
    lon: float,
    box: Floats,
    centres: tuple[Floats, Floats, Floats],
    has_area: Bools,
    area_of: Callable[[int], Corners],
) -> tuple[Bools, Floats]:
    """Which shapes hold the point, and every centre's distance to it (inf outside its box).

    Each shape is a circle (`centres`: lats, lons, radii in km) or, where `has_area`, the polygon
    `area_of(i)`, with `box` the bounding boxes of all of them. The box test runs over all shapes;
    the distance only for those whose box holds the point, and a polygon only for those of them.
    """
    lats, lons, radii = centres
    inbox = (box[:, 0] <= lat) & (lat <= box[:, 1]) & (box[:, 2] <= lon) & (lon <= box[:, 3])
    near = np.flatnonzero(inbox)
    distance = np.full(len(lats), np.inf)
    distance[near] = haversine_many_km(lat, lon, lats[near], lons[near])
    covered = inbox & ~has_area & (distance <= radii)
    for i in np.flatnonzero(inbox & has_area):
        covered[i] = in_polygon(lat, lon, area_of(int(i)))
    return covered, distance
