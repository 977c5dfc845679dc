"""The roster as numpy column arrays: matching's rules run over every team at once, the distance
only for the teams whose bounding box holds the call. No I/O."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from services.matching.domain import (
    DEFAULT_RULES,
    FUNNEL,
    OFF_ROSTER,
    Bools,
    CallNeeds,
    Candidate,
    Decision,
    EtaModel,
    Floats,
    Ints,
    TeamSnapshot,
    area_reason,
    fairness_penalties,
    on_shift,
    primary_language,
    straight_line,
    takes_another,
)
from services.matching.rules import Matching
from shared.geometry import Corners, area_box, covering, radius_boxes
from shared.jurisdiction import Shift

# What changes with every offer, as columns: team ids, status, capacity, lat, lon, and how many
# calls of ours the team holds.
LiveColumns = tuple[
    Sequence[str], Sequence[str], Sequence[int], Sequence[float], Sequence[float], Sequence[int]
]


def _funnel(filters: dict[str, Bools], n: int) -> tuple[Bools, dict[str, int], str | None]:
    """The teams passing every filter, the count left after each in `FUNNEL` order, and the
    hand-back reason of the first filter that leaves nobody (None when someone is left)."""
    mask = np.ones(n, dtype=np.bool_)
    funnel: dict[str, int] = {}
    reason: str | None = None
    for name, why in FUNNEL:
        mask &= filters[name]
        funnel[name] = int(mask.sum())
        if funnel[name] == 0 and reason is None:
            reason = why
    return mask, funnel, reason


@dataclass(frozen=True)
class _Scores:
    """The parts of the chosen teams' scores, one entry per team (minutes)."""

    eta: Floats
    skill_bonus: Floats
    language_bonus: Floats
    fairness: Floats

    @property
    def total(self) -> Floats:
        """ETA minus the bonuses plus the fairness penalty, as `Candidate.score_min` adds them."""
        return np.asarray(self.eta - self.skill_bonus - self.language_bonus + self.fairness)


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
    held: Ints = field(init=False)
    capacity: npt.NDArray[np.int64] = field(init=False)
    on_roster: Bools = field(init=False)
    available: Bools = field(init=False)
    reachable: Bools = field(init=False)
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
        self.box = radius_boxes(self.lat, self.lon, self.radius)
        for k in np.flatnonzero(self.has_area):
            area = ts[int(k)].area
            assert area is not None
            self.box[k] = area_box(area)
        self.status = np.array([t.status for t in ts], dtype=object)
        self.held = np.array([t.held for t in ts], dtype=np.int64)
        self.capacity = np.array([t.capacity for t in ts], dtype=np.int64)
        self.on_roster = (self.capacity > 0) & ~np.isin(self.status, OFF_ROSTER)
        self.available = takes_another(self.status, self.held, self.capacity)
        self.reachable = np.array([t.reachable for t in ts], dtype=np.bool_)
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
        ids, status, capacity, lat, lon, held = columns
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
        out.box = np.where(out.has_area[:, None], self.box[pos], radius_boxes(out.lat, out.lon, out.radius))
        out.status = np.asarray(status, dtype=object)
        out.held = np.asarray(held, dtype=np.int64)
        out.capacity = np.asarray(capacity, dtype=np.int64)
        out.on_roster = (out.capacity > 0) & ~np.isin(out.status, OFF_ROSTER)
        out.available = takes_another(out.status, out.held, out.capacity)
        out.reachable = self.reachable[pos]
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
        out.held = np.empty(n, dtype=np.int64)
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
        _, status, capacity, lat, lon, held = columns
        self.status[pos] = np.asarray(status, dtype=object)
        self.held[pos] = np.asarray(held, dtype=np.int64)
        self.capacity[pos] = np.asarray(capacity, dtype=np.int64)
        self.lat[pos] = np.asarray(lat, dtype=np.float64)
        self.lon[pos] = np.asarray(lon, dtype=np.float64)
        self.on_roster[pos] = (self.capacity[pos] > 0) & ~np.isin(self.status[pos], OFF_ROSTER)
        self.available[pos] = takes_another(self.status[pos], self.held[pos], self.capacity[pos])
        moved = pos[~self.has_area[pos]]
        self.box[moved] = radius_boxes(self.lat[moved], self.lon[moved], self.radius[moved])

    def positions(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Where the teams `ids` sit in this index; KeyError for an id it does not hold."""
        at = self._position
        return np.fromiter((at[i] for i in ids), dtype=np.int64, count=len(ids))

    def _skill(self, name: str) -> Bools:
        return self.skill_of.get(name, np.zeros(len(self.teams), dtype=np.bool_))

    def _covers(self, lat: float, lon: float) -> tuple[Bools, Floats]:
        """Which teams cover the point, and every team's distance to it (inf outside its box)."""

        def area_of(i: int) -> Corners:
            area = self.teams[i].area
            assert area is not None
            return area

        return covering(lat, lon, self.box, (self.lat, self.lon, self.radius), self.has_area, area_of)

    def free_places(self, now: datetime, tz: ZoneInfo) -> Ints:
        """How many more calls each team could take now: none off shift, off the roster, of a paused
        agency (capacity 0) or holding its capacity."""
        free = self.available & self.reachable & self._on_shift(now, tz)
        return np.where(free, self.capacity - self.held, 0).astype(np.int64)

    def _on_shift(self, now: datetime, tz: ZoneInfo) -> Bools:
        """Which teams work at `now`: each shift pattern is evaluated once, not each team."""
        on = np.array([on_shift(p, now, tz) for p in self.patterns], dtype=np.bool_)
        return on[self.shift_pattern] if len(self.teams) else np.zeros(0, dtype=np.bool_)

    def load(self) -> dict[str, int]:
        """Each agency's calls of ours its teams hold now (offered, assigned, en route, on scene)."""
        counts = np.bincount(self.agency, weights=self.held, minlength=len(self.agencies))
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
        covered, distance = self._covers(needs.lat, needs.lon)
        speaks = self._speaks(needs.language)
        filters = self._filters(needs, now, tz, rules, exclude, covered, speaks)
        mask, funnel, reason = _funnel(filters, len(self.teams))
        if reason == "none_in_area":
            # The funnel counts covering teams among those with capacity on shift; the reason says
            # which of those the covering teams lack.
            reason = area_reason(int(covered.sum()), int((covered & self.on_roster).sum()))
        if reason is not None:
            return Decision([], funnel, reason)
        chosen = np.flatnonzero(mask)
        scores = self._scores(
            needs,
            chosen,
            speaks,
            rules,
            fairness_penalties(load or {}, shares or {}, rules.fairness_min),
            eta_model or straight_line(speed_kmh),
        )
        # Ties go to the lower team id, so the same inputs always give the same choice.
        order = np.lexsort((self.ids[chosen], scores.total))
        if limit is not None:
            order = order[:limit]

        def candidate(k: int) -> Candidate:
            return self._candidate(int(chosen[k]), k, needs, distance, speaks, scores)

        return Decision(_Ranked(order, candidate), funnel)

    def _speaks(self, language: str | None) -> Bools | None:
        """Which teams speak the caller's language (None when it is not known)."""
        if not language:
            return None
        return self.language_of.get(primary_language(language), np.zeros(len(self.teams), dtype=np.bool_))

    def _filters(
        self,
        needs: CallNeeds,
        now: datetime,
        tz: ZoneInfo,
        rules: Matching,
        exclude: frozenset[str],
        covered: Bools,
        speaks: Bools | None,
    ) -> dict[str, Bools]:
        """Each `FUNNEL` filter as a mask over the teams."""
        n = len(self.teams)
        shift_ok = self._on_shift(now, tz)
        skills_ok = np.ones(n, dtype=np.bool_)
        for s in needs.required:
            skills_ok &= self._skill(s)
        if speaks is not None and rules.language == "required":
            skills_ok &= speaks
        not_tried = ~np.isin(self.ids, list(exclude)) if exclude else np.ones(n, dtype=np.bool_)
        return {
            "teams": np.ones(n, dtype=np.bool_),
            "with_capacity": self.on_roster,
            "on_shift": shift_ok,
            "in_area": covered,
            "skill_and_language": skills_ok,
            "reachable": self.reachable,
            "available": self.available & not_tried,
        }

    def _scores(
        self,
        needs: CallNeeds,
        chosen: npt.NDArray[np.intp],
        speaks: Bools | None,
        rules: Matching,
        penalty_by_agency: dict[str, float],
        eta_model: EtaModel,
    ) -> _Scores:
        """The parts of the score of each team in `chosen` (positions in this index)."""
        eta = eta_model(needs.lat, needs.lon, self.lat[chosen], self.lon[chosen])
        matched_count = np.zeros(len(chosen), dtype=np.float64)
        for s in needs.preferred:
            matched_count += self._skill(s)[chosen]
        language_bonus = (
            rules.language_min * speaks[chosen].astype(np.float64)
            if speaks is not None
            else np.zeros(len(chosen), dtype=np.float64)
        )
        agency_penalty = np.array([penalty_by_agency.get(a, 0.0) for a in self.agencies], dtype=np.float64)
        return _Scores(
            eta=eta,
            skill_bonus=rules.preferred_skill_min * matched_count,
            language_bonus=language_bonus,
            fairness=agency_penalty[self.agency[chosen]],
        )

    def _candidate(
        self, i: int, k: int, needs: CallNeeds, distance: Floats, speaks: Bools | None, scores: _Scores
    ) -> Candidate:
        """The team at position `i`, the `k`-th chosen, as a candidate with its current status and
        position and its score's parts."""
        team = replace(
            self.teams[i],
            status=str(self.status[i]),
            capacity=int(self.capacity[i]),
            held=int(self.held[i]),
            lat=float(self.lat[i]),
            lon=float(self.lon[i]),
        )
        return Candidate(
            team=team,
            distance_km=float(distance[i]),
            eta_min=float(scores.eta[k]),
            language_match=None if speaks is None else bool(speaks[i]),
            preferred_skills=tuple(sorted(s for s in needs.preferred if s in team.skills)),
            skill_bonus_min=float(scores.skill_bonus[k]),
            language_bonus_min=float(scores.language_bonus[k]),
            fairness_penalty_min=float(scores.fairness[k]),
        )
