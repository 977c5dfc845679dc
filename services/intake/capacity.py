"""What intake knows of community teams' capacity: matching's last snapshot, and whether a team in
it could take a call at a place. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from shared import events
from shared.geometry import Corners, area_box, covering, radius_boxes

# A snapshot older than this many of its own heartbeats says nothing: matching may be down.
STALE_AFTER_HEARTBEATS = 2.5


@dataclass(frozen=True)
class Capacity:
    """The teams that could take one more call as of `as_of`, and where each reaches."""

    as_of: datetime
    stale_at: datetime
    team_ids: tuple[str, ...] = ()
    _lat: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _lon: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _radius: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _has_area: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_), repr=False)
    _box: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)), repr=False)
    _areas: dict[int, Corners] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, snap: events.TeamsCapacity) -> Capacity:
        """Index a snapshot for `can_take` (once per snapshot, not per call)."""
        lat = np.asarray(snap.lat_e4, dtype=np.float64) / 1e4
        lon = np.asarray(snap.lon_e4, dtype=np.float64) / 1e4
        radius = np.asarray(snap.radius_m, dtype=np.float64) / 1000
        areas: dict[int, Corners] = {i: snap.areas[t] for i, t in enumerate(snap.team_ids) if t in snap.areas}
        has_area = np.zeros(len(snap.team_ids), dtype=np.bool_)
        box = radius_boxes(lat, lon, radius)
        for i, corners in areas.items():
            has_area[i] = True
            box[i] = area_box(corners)
        return cls(
            as_of=snap.as_of,
            stale_at=snap.as_of + timedelta(seconds=snap.every_s * STALE_AFTER_HEARTBEATS),
            team_ids=tuple(snap.team_ids),
            _lat=lat,
            _lon=lon,
            _radius=radius,
            _has_area=has_area,
            _box=box,
            _areas=areas,
        )

    @classmethod
    def none_free(cls, as_of: datetime) -> Capacity:
        """A snapshot in which no team could take a call (what a decision that found none carries)."""
        return cls(as_of=as_of, stale_at=datetime.max.replace(tzinfo=as_of.tzinfo))

    def known_at(self, at: datetime) -> bool:
        """Whether the snapshot is recent enough at `at` to answer for: not past its heartbeats."""
        return at <= self.stale_at

    def free_covering(self, lat: float, lon: float) -> int:
        """How many of the snapshot's teams cover the place."""
        if not self.team_ids:
            return 0
        covered, _ = covering(
            lat, lon, self._box, (self._lat, self._lon, self._radius), self._has_area, self._areas.__getitem__
        )
        return int(covered.sum())
