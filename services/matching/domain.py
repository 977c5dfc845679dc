"""Choosing a team: who may take a call and in which order, and why. Pure rules, no I/O."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from shared.jurisdiction import WEEKDAYS, Matching, Shift

EARTH_RADIUS_KM = 6371.0088
# Statuses in which an agency has taken a team off the roster for now: it is no capacity at all.
OFF_ROSTER = ("off_shift", "out_of_service")
DEFAULT_RULES = Matching(version="default")

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
# What changes with every offer, as columns: team ids, status, capacity, lat, lon, and whether the
# team holds a call of ours.
LiveColumns = tuple[
    Sequence[str], Sequence[str], Sequence[int], Sequence[float], Sequence[float], Sequence[bool]
]


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
    skills: tuple[str, ...] = ()
    capacity: int = 1
    # Coverage polygon as (lat, lon) corners; when present it replaces the radius.
    area: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class CallNeeds:
    """What the call asks of a team: where, which language, which skills."""

    lat: float
    lon: float
    language: str | None = None
    required: frozenset[str] = frozenset()
    preferred: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Candidate:
    """A team that may take the call, with the parts of its score (minutes; lower is better)."""

    team: TeamSnapshot
    distance_km: float
    eta_min: float
    language_match: bool | None
    preferred_skills: tuple[str, ...] = ()
    skill_bonus_min: float = 0.0
    language_bonus_min: float = 0.0
    fairness_penalty_min: float = 0.0

    @property
    def score_min(self) -> float:
        """ETA minus the bonuses plus the fairness penalty, in minutes of travel."""
        return self.eta_min - self.skill_bonus_min - self.language_bonus_min + self.fairness_penalty_min

    def explain(self) -> dict[str, Any]:
        """The score breakdown as stored with the decision."""
        return {
            "team_id": self.team.id,
            "agency_id": self.team.agency_id,
            "distance_km": round(self.distance_km, 3),
            "eta_min": round(self.eta_min, 2),
            "preferred_skills_matched": list(self.preferred_skills),
            "skill_bonus_min": round(self.skill_bonus_min, 2),
            "language_match": self.language_match,
            "language_bonus_min": round(self.language_bonus_min, 2),
            "fairness_penalty_min": round(self.fairness_penalty_min, 2),
            "score_min": round(self.score_min, 2),
        }


@dataclass(frozen=True)
class Decision:
    """The ranked candidates, how many teams passed each filter, and the hand-back reason if none."""

    candidates: Sequence[Candidate]
    funnel: dict[str, int]
    reason: str | None = None


# ETA from a call to each team; the straight line today, a routing engine may replace it.
EtaModel = Callable[[float, float, Floats, Floats], Floats]


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


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 tag (`es-MX` -> `es`), lower-cased."""
    return tag.lower().split("-")[0]


def needs_for(rules: Matching, incident_type: str, safety: dict[str, str]) -> tuple[set[str], set[str]]:
    """Required and preferred skills for an incident type and safety screen answers."""
    need = rules.incident_types.get(incident_type.upper())
    required: set[str] = set(need.required) if need else set()
    preferred: set[str] = set(need.preferred) if need else set()
    for rule in rules.screen:
        if safety.get(rule.question) == rule.answer:
            required |= set(rule.required)
            preferred |= set(rule.preferred)
    return required, preferred - required


def fairness_penalties(load: dict[str, int], shares: dict[str, float], weight_min: float) -> dict[str, float]:
    """Minutes added to an agency's teams: its share of current load above its contracted share.

    With no load anywhere every agency pays nothing, so the nearest team wins the first call.
    """
    total_load = sum(load.values())
    total_share = sum(shares.values()) or 1.0
    if total_load == 0:
        return {a: 0.0 for a in shares}
    return {
        a: weight_min * max(0.0, load.get(a, 0) / total_load - share / total_share)
        for a, share in shares.items()
    }


def _area_box(area: tuple[tuple[float, float], ...]) -> tuple[float, float, float, float]:
    lats = [c[0] for c in area]
    lons = [c[1] for c in area]
    return min(lats), max(lats), min(lons), max(lons)


def _radius_boxes(lat: Floats, lon: Floats, radius_km: Floats) -> Floats:
    """Bounding boxes (lat min, lat max, lon min, lon max) of circles, vectorised."""
    dlat = np.degrees(radius_km / EARTH_RADIUS_KM)
    # Near the poles a radius spans every longitude.
    dlon = np.minimum(180.0, dlat / np.maximum(np.cos(np.radians(lat)), 1e-6))
    return np.stack([lat - dlat, lat + dlat, lon - dlon, lon + dlon], axis=1).reshape(len(lat), 4)


def _straight_line(speed_kmh: float) -> EtaModel:
    def eta(lat: float, lon: float, lats: Floats, lons: Floats) -> Floats:
        return haversine_many_km(lat, lon, lats, lons) / speed_kmh * 60.0

    return eta


class _Ranked(Sequence[Candidate]):
    """Candidates in rank order, each built when first read: a decision usually reads a handful."""

    def __init__(self, order: npt.NDArray[np.intp], build: Callable[[int], Candidate]) -> None:
        self._order = order
        self._build = build
        self._built: dict[int, Candidate] = {}

    def __len__(self) -> int:
        return len(self._order)

    def _at(self, rank: int) -> Candidate:
        if rank not in self._built:
            self._built[rank] = self._build(int(self._order[rank]))
        return self._built[rank]

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(r) for r in range(len(self))[i]]
        return self._at(range(len(self))[i])


class _Picked(Sequence[TeamSnapshot]):
    """Some teams of a kept roster, by position, without copying the snapshots."""

    def __init__(self, teams: Sequence[TeamSnapshot], positions: npt.NDArray[np.int64]) -> None:
        self._teams = teams
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._teams[p] for p in self._positions[i]]
        return self._teams[self._positions[i]]


@dataclass
class RosterIndex:
    """The roster as column arrays, so every filter and the distance run over all teams at once."""

    teams: Sequence[TeamSnapshot]
    ids: npt.NDArray[np.str_] = field(init=False)
    lat: Floats = field(init=False)
    lon: Floats = field(init=False)
    radius: Floats = field(init=False)
    box: Floats = field(init=False)
    has_area: Bools = field(init=False)
    status: npt.NDArray[np.object_] = field(init=False)
    holding: Bools = field(init=False)
    capacity: npt.NDArray[np.int64] = field(init=False)
    on_roster: Bools = field(init=False)
    available: Bools = field(init=False)
    skill_of: dict[str, Bools] = field(init=False)
    language_of: dict[str, Bools] = field(init=False)
    shift_pattern: npt.NDArray[np.int64] = field(init=False)
    patterns: list[tuple[Shift, ...]] = field(init=False)
    agency: npt.NDArray[np.int64] = field(init=False)
    agencies: list[str] = field(init=False)
    _position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        ts = self.teams
        n = len(ts)
        self.ids = np.array([t.id for t in ts], dtype=np.str_)
        self._position = {t.id: i for i, t in enumerate(ts)}
        self.lat = np.array([t.lat for t in ts], dtype=np.float64)
        self.lon = np.array([t.lon for t in ts], dtype=np.float64)
        self.radius = np.array([t.radius_km for t in ts], dtype=np.float64)
        self.has_area = np.array([t.area is not None for t in ts], dtype=np.bool_)
        self.box = _radius_boxes(self.lat, self.lon, self.radius)
        for k in np.flatnonzero(self.has_area):
            area = ts[int(k)].area
            assert area is not None
            self.box[k] = _area_box(area)
        self.status = np.array([t.status for t in ts], dtype=object)
        self.holding = np.zeros(n, dtype=np.bool_)
        self.capacity = np.array([t.capacity for t in ts], dtype=np.int64)
        self.on_roster = (self.capacity > 0) & ~np.isin(self.status, OFF_ROSTER)
        self.available = self.status == "available"
        self.skill_of = {}
        self.language_of = {}
        for i, t in enumerate(ts):
            for s in t.skills:
                self.skill_of.setdefault(s, np.zeros(n, dtype=np.bool_))[i] = True
            for lang in t.languages:
                self.language_of.setdefault(primary_language(lang), np.zeros(n, dtype=np.bool_))[i] = True
        # Teams share a handful of shift patterns: evaluate each pattern once, not each team.
        pattern_ids: dict[tuple[Any, ...], int] = {}
        self.patterns = []
        ids = []
        for t in ts:
            key = tuple((tuple(s.days), s.start, s.end) for s in t.shifts)
            if key not in pattern_ids:
                pattern_ids[key] = len(self.patterns)
                self.patterns.append(t.shifts)
            ids.append(pattern_ids[key])
        self.shift_pattern = np.array(ids, dtype=np.int64)
        agency_ids: dict[str, int] = {}
        self.agency = np.array(
            [agency_ids.setdefault(t.agency_id, len(agency_ids)) for t in ts], dtype=np.int64
        )
        self.agencies = list(agency_ids)

    def live(self, columns: LiveColumns) -> RosterIndex:
        """The teams `ids` of this roster with their current status, capacity and position.

        Skills, languages, shifts and areas change rarely and stay indexed; what changes with every
        offer is passed in, so a decision reads a few small columns instead of re-indexing the
        roster. KeyError for an id this roster does not know (the caller re-indexes).
        """
        ids, status, capacity, lat, lon, holding = columns
        pos = self.positions(ids)
        if len(pos) == len(self.ids):
            return self._everyone(pos, columns)
        out = object.__new__(RosterIndex)
        # The kept snapshots; decide() gives its candidates their current status and position.
        out.teams = _Picked(self.teams, pos)
        out.ids = self.ids[pos]
        out.lat = np.asarray(lat, dtype=np.float64)
        out.lon = np.asarray(lon, dtype=np.float64)
        out.radius = self.radius[pos]
        out.has_area = self.has_area[pos]
        out.box = np.where(out.has_area[:, None], self.box[pos], _radius_boxes(out.lat, out.lon, out.radius))
        out.status = np.asarray(status, dtype=object)
        out.holding = np.asarray(holding, dtype=np.bool_)
        out.capacity = np.asarray(capacity, dtype=np.int64)
        out.on_roster = (out.capacity > 0) & ~np.isin(out.status, OFF_ROSTER)
        out.available = out.status == "available"
        out.skill_of = {k: v[pos] for k, v in self.skill_of.items()}
        out.language_of = {k: v[pos] for k, v in self.language_of.items()}
        out.shift_pattern = self.shift_pattern[pos]
        out.patterns = self.patterns
        out.agency = self.agency[pos]
        out.agencies = self.agencies
        out._position = {str(team_id): i for i, team_id in enumerate(out.ids)}
        return out

    def _everyone(self, pos: npt.NDArray[np.int64], columns: LiveColumns) -> RosterIndex:
        """Every team's live columns laid out in this index's own order (row `k` goes to `pos[k]`):
        what does not change with an offer is shared, not copied."""
        out = copy.copy(self)
        n = len(self.ids)
        out.lat, out.lon = np.empty(n), np.empty(n)
        out.capacity = np.empty(n, dtype=np.int64)
        out.holding = np.empty(n, dtype=np.bool_)
        out.status = np.empty(n, dtype=object)
        out.on_roster = np.empty(n, dtype=np.bool_)
        out.available = np.empty(n, dtype=np.bool_)
        out.box = self.box.copy()
        out._put(pos, columns)
        return out

    def update(self, columns: LiveColumns) -> None:
        """Put the current status, capacity and position of the teams in `columns` in place
        (KeyError for an id this index does not hold)."""
        self._put(self.positions(columns[0]), columns)

    def _put(self, pos: npt.NDArray[np.int64], columns: LiveColumns) -> None:
        """Row `k` of `columns` into position `pos[k]`, and what follows from it there."""
        if not len(pos):
            return
        _, status, capacity, lat, lon, holding = columns
        self.status[pos] = np.asarray(status, dtype=object)
        self.holding[pos] = np.asarray(holding, dtype=np.bool_)
        self.capacity[pos] = np.asarray(capacity, dtype=np.int64)
        self.lat[pos] = np.asarray(lat, dtype=np.float64)
        self.lon[pos] = np.asarray(lon, dtype=np.float64)
        self.on_roster[pos] = (self.capacity[pos] > 0) & ~np.isin(self.status[pos], OFF_ROSTER)
        self.available[pos] = self.status[pos] == "available"
        moved = pos[~self.has_area[pos]]
        self.box[moved] = _radius_boxes(self.lat[moved], self.lon[moved], self.radius[moved])

    def positions(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Where the teams `ids` sit in this index; KeyError for an id it does not hold."""
        at = self._position
        return np.fromiter((at[i] for i in ids), dtype=np.int64, count=len(ids))

    def _skill(self, name: str) -> Bools:
        return self.skill_of.get(name, np.zeros(len(self.teams), dtype=np.bool_))

    def _covers(self, lat: float, lon: float) -> tuple[Bools, Floats]:
        """Which teams cover the point, and every team's distance to it (inf outside its box).

        The box test runs over all teams; the distance only for the teams whose box holds the point.
        """
        b = self.box
        inbox = (b[:, 0] <= lat) & (lat <= b[:, 1]) & (b[:, 2] <= lon) & (lon <= b[:, 3])
        near = np.flatnonzero(inbox)
        distance = np.full(len(self.teams), np.inf)
        distance[near] = haversine_many_km(lat, lon, self.lat[near], self.lon[near])
        covered = inbox & ~self.has_area & (distance <= self.radius)
        # Polygons are checked only for the few teams whose bounding box holds the call.
        for i in np.flatnonzero(inbox & self.has_area):
            area = self.teams[int(i)].area
            assert area is not None
            covered[i] = in_polygon(lat, lon, area)
        return covered, distance

    def load(self) -> dict[str, int]:
        """Each agency's teams holding one of our calls now (offered, assigned, en route, on scene)."""
        counts = np.bincount(self.agency[self.holding], minlength=len(self.agencies))
        return {a: int(n) for a, n in zip(self.agencies, counts, strict=True) if n}

    def decide(
        self,
        needs: CallNeeds,
        now: datetime,
        tz: ZoneInfo,
        *,
        speed_kmh: float,
        rules: Matching = DEFAULT_RULES,
        exclude: frozenset[str] = frozenset(),
        load: dict[str, int] | None = None,
        shares: dict[str, float] | None = None,
        limit: int | None = 50,
        eta_model: EtaModel | None = None,
    ) -> Decision:
        """Eligible teams ranked by score, with the count left after each filter."""
        n = len(self.teams)
        covered, distance = self._covers(needs.lat, needs.lon)
        on = np.array([on_shift(p, now, tz) for p in self.patterns], dtype=np.bool_)
        shift_ok = on[self.shift_pattern] if n else np.zeros(0, dtype=np.bool_)
        skills_ok = np.ones(n, dtype=np.bool_)
        for s in needs.required:
            skills_ok &= self._skill(s)
        speaks: Bools | None = None
        if needs.language:
            speaks = self.language_of.get(primary_language(needs.language), np.zeros(n, dtype=np.bool_))
            if rules.language == "required":
                skills_ok &= speaks
        not_tried = ~np.isin(self.ids, list(exclude)) if exclude else np.ones(n, dtype=np.bool_)
        stages = [
            ("teams", np.ones(n, dtype=np.bool_), "no_community_capacity"),
            ("with_capacity", self.on_roster, "no_community_capacity"),
            ("on_shift", shift_ok, "no_team_on_shift"),
            ("in_area", covered, "none_in_area"),
            ("skill_and_language", skills_ok, "no_skill_or_language"),
            ("available", self.available & not_tried, "all_busy"),
        ]
        mask = np.ones(n, dtype=np.bool_)
        funnel: dict[str, int] = {}
        reason: str | None = None
        for name, ok, why in stages:
            mask &= ok
            funnel[name] = int(mask.sum())
            if funnel[name] == 0 and reason is None:
                reason = why
        if reason is not None:
            return Decision([], funnel, reason)
        chosen = np.flatnonzero(mask)
        eta = (eta_model or _straight_line(speed_kmh))(
            needs.lat, needs.lon, self.lat[chosen], self.lon[chosen]
        )
        matched_count = np.zeros(len(chosen), dtype=np.float64)
        for s in needs.preferred:
            matched_count += self._skill(s)[chosen]
        skill_bonus = rules.preferred_skill_min * matched_count
        language_bonus = (
            rules.language_min * speaks[chosen].astype(np.float64)
            if speaks is not None
            else np.zeros(len(chosen), dtype=np.float64)
        )
        penalty_by_agency = fairness_penalties(load or {}, shares or {}, rules.fairness_min)
        agency_penalty = np.array([penalty_by_agency.get(a, 0.0) for a in self.agencies], dtype=np.float64)
        fairness = agency_penalty[self.agency[chosen]]
        score = eta - skill_bonus - language_bonus + fairness
        # Ties go to the lower team id, so the same inputs always give the same choice.
        order = np.lexsort((self.ids[chosen], score))
        if limit is not None:
            order = order[:limit]
        preferred = needs.preferred

        def candidate(k: int) -> Candidate:
            i = chosen[k]
            team = replace(
                self.teams[int(i)],
                status=str(self.status[i]),
                capacity=int(self.capacity[i]),
                lat=float(self.lat[i]),
                lon=float(self.lon[i]),
            )
            return Candidate(
                team=team,
                distance_km=float(distance[i]),
                eta_min=float(eta[k]),
                language_match=None if speaks is None else bool(speaks[i]),
                preferred_skills=tuple(sorted(s for s in preferred if s in team.skills)),
                skill_bonus_min=float(skill_bonus[k]),
                language_bonus_min=float(language_bonus[k]),
                fairness_penalty_min=float(fairness[k]),
            )

        return Decision(_Ranked(order, candidate), funnel)


# What oversight reads of a decision's explanation: an allow-list. `True` keeps a value as it is,
# a dict keeps only its listed keys, "grid" rounds a position to 0.01 degree (about 1 km) and
# "whole" rounds a distance, ETA or score to a whole number (finer ones, with the teams' known
# positions, would locate the caller more closely than the grid).
_CANDIDATE_SHOWN: dict[str, Any] = {
    "rank": True,
    "team_id": True,
    "agency_id": True,
    "distance_km": "whole",
    "eta_min": "whole",
    "preferred_skills_matched": True,
    "skill_bonus_min": True,
    "language_match": True,
    "language_bonus_min": True,
    "fairness_penalty_min": True,
    "score_min": "whole",
}
EXPLANATION_SHOWN: dict[str, Any] = {
    "inputs": {
        "location": {"lat": "grid", "lon": "grid"},
        "language": True,
        "safety": True,
        "required_skills": True,
        "preferred_skills": True,
        "already_tried": True,
        "at": True,
        "route": True,
    },
    "rules_version": True,
    "triage_rules_version": True,
    "weights": True,
    "decided_by": True,
    "agency_load": True,
    "considered": True,
    "funnel": True,
    "taken_meanwhile": True,
    "chosen": _CANDIDATE_SHOWN,
    "runners_up": _CANDIDATE_SHOWN,
}


def disclosed(value: Any, shown: Any) -> Any:
    """`value` cut to what the allow-list `shown` lets oversight read (lists item by item)."""
    if isinstance(value, list):
        return [disclosed(v, shown) for v in value]
    if shown is True:
        return value
    if shown in ("grid", "whole"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return round(float(value), 2) if shown == "grid" else round(float(value))
    if isinstance(shown, dict) and isinstance(value, dict):
        return {k: disclosed(value[k], rule) for k, rule in shown.items() if k in value}
    return None
