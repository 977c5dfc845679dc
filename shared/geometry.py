"""Plane geometry over WGS84 corners, as coverage polygons and report zones need it. Pure."""

from __future__ import annotations

from collections.abc import Sequence


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
