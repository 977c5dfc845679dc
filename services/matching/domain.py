"""Choosing a team: who may take a call and in which order. Pure rules, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from shared.jurisdiction import WEEKDAYS, Shift

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class TeamSnapshot:
    """What ranking needs to know about one team."""

    id: str
    agency_id: str
    lat: float
    lon: float
    radius_km: float
    status: str
    languages: tuple[str, ...]
    shifts: tuple[Shift, ...]


@dataclass(frozen=True)
class Candidate:
    """A team that may take the call, with why it ranks where it does."""

    team: TeamSnapshot
    distance_km: float
    eta_min: float
    language_match: bool | None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _in_shift(shift: Shift, weekday: int, at: time) -> bool:
    today, yesterday = WEEKDAYS[weekday], WEEKDAYS[(weekday - 1) % 7]
    if shift.start <= shift.end:
        return today in shift.days and shift.start <= at < shift.end
    # An overnight shift: the evening part belongs to its start day, the early hours to the next.
    return (today in shift.days and at >= shift.start) or (yesterday in shift.days and at < shift.end)


def on_shift(shifts: tuple[Shift, ...], now: datetime, tz: ZoneInfo) -> bool:
    """Whether a team works at `now` in the jurisdiction's time zone (no shifts: always)."""
    if not shifts:
        return True
    local = now.astimezone(tz)
    return any(_in_shift(s, local.weekday(), local.time()) for s in shifts)


def _language_fits(wanted: str | None, spoken: tuple[str, ...]) -> bool | None:
    if not wanted:
        return None
    primary = wanted.lower().split("-")[0]
    return any(s.lower().split("-")[0] == primary for s in spoken)


def rank(
    teams: list[TeamSnapshot],
    lat: float,
    lon: float,
    language: str | None,
    now: datetime,
    tz: ZoneInfo,
    *,
    speed_kmh: float,
    exclude: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Available teams on shift whose area covers the call, best first (language, then ETA)."""
    found: list[Candidate] = []
    for team in teams:
        if team.id in exclude or team.status != "available":
            continue
        distance = haversine_km(lat, lon, team.lat, team.lon)
        if distance > team.radius_km or not on_shift(team.shifts, now, tz):
            continue
        found.append(
            Candidate(team, distance, distance / speed_kmh * 60, _language_fits(language, team.languages))
        )
    # A team that speaks the caller's language comes first; then the nearest.
    found.sort(key=lambda c: (c.language_match is False, c.eta_min, c.team.id))
    return found


def no_candidate_reason(
    teams: list[TeamSnapshot], lat: float, lon: float, now: datetime, tz: ZoneInfo
) -> str:
    """The hand-back reason code when no team can be offered."""
    if not any(on_shift(t.shifts, now, tz) for t in teams):
        return "no_team_on_shift"
    if not any(haversine_km(lat, lon, t.lat, t.lon) <= t.radius_km for t in teams):
        return "none_in_area"
    return "all_busy"
