"""Choosing a team: who may take a call and in which order, and why. Pure rules, no I/O.

`index.RosterIndex` runs them over the whole roster at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from services.matching.rules import Matching
from shared.geometry import haversine_many_km
from shared.jurisdiction import Shift, works_at

# Statuses in which an agency has taken a team off the roster for now: it is no capacity at all.
OFF_ROSTER = ("off_shift", "out_of_service")
DEFAULT_RULES = Matching(version="default")

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
# The filters a call's teams pass, in order, each with the hand-back reason when it is the first to
# leave nobody; each decision stores the count left after each (its funnel).
FUNNEL: tuple[tuple[str, str], ...] = (
    ("teams", "no_community_capacity"),
    ("with_capacity", "no_community_capacity"),
    ("on_shift", "no_team_on_shift"),
    ("in_area", "none_in_area"),
    ("skill_and_language", "no_skill_or_language"),
    ("reachable", "agency_unreachable"),
    ("available", "all_busy"),
)
# The hand-back reason when teams cover the call but none of them has capacity, while teams
# elsewhere do: an outage where the caller is, not a place nobody covers.
NO_CAPACITY_IN_AREA = "no_capacity_in_area"


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
    # How many of our calls the team holds now (offered or being worked), at most its capacity.
    held: int = 0
    # Coverage polygon as (lat, lon) corners; when present it replaces the radius.
    area: tuple[tuple[float, float], ...] | None = None
    # False while its agency shows no sign of life (notify's liveness watch).
    reachable: bool = True


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


def offer_deadline(
    now: datetime, commit_from: datetime, commit_within_s: float, timeout_s: float, floor_s: float
) -> datetime | None:
    """The deadline of an offer made `now`: its timeout, cut to what is left of the call's time to
    commit (counted from `commit_from`, its 202); None when less than `floor_s` is left, since an
    offer no team could answer in time only keeps the PSAP waiting."""
    commit_by = commit_from + timedelta(seconds=commit_within_s)
    if commit_by - now < timedelta(seconds=floor_s):
        return None
    return min(now + timedelta(seconds=timeout_s), commit_by)


def offers_at_once(teams: int | None, below_s: float | None, left_s: float) -> int:
    """How many teams to offer a call at once with `left_s` of its time to commit left: `teams` when
    the jurisdiction asks for parallel offers and (with `below_s`) the budget is that short, else one."""
    if teams is None or (below_s is not None and left_s >= below_s):
        return 1
    return teams


def on_shift(shifts: tuple[Shift, ...], now: datetime, tz: ZoneInfo) -> bool:
    """Whether a team works at `now` in the jurisdiction's time zone (no shifts: always)."""
    return works_at(shifts, now.astimezone(tz))


def takes_another(status: npt.NDArray[np.object_], held: Ints, capacity: Ints) -> Bools:
    """Which teams may be offered one more call: fewer calls held than their capacity, and either
    holding some (their status is then their latest call's step) or free and `available`."""
    return np.asarray((held < capacity) & ((status == "available") | (held > 0)), dtype=np.bool_)


def area_reason(covering: int, covering_with_capacity: int) -> str:
    """Why no team is left once the area filter ran: no team covers the place at all
    (`none_in_area`), none of those covering it has capacity (`no_capacity_in_area`), or those with
    capacity are off their hours (`no_team_on_shift`)."""
    if covering == 0:
        return "none_in_area"
    if covering_with_capacity == 0:
        return NO_CAPACITY_IN_AREA
    return "no_team_on_shift"


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


def straight_line(speed_kmh: float) -> EtaModel:
    """The ETA model of a straight line at a constant speed."""

    def eta(lat: float, lon: float, lats: Floats, lons: Floats) -> Floats:
        return haversine_many_km(lat, lon, lats, lons) / speed_kmh * 60.0

    return eta


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
