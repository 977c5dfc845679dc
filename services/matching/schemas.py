"""Request and response models of matching's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.jurisdiction import Shift, Weekday


class TeamUpdate(BaseModel):
    """What an agency may change about its own team."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["available", "off_shift", "out_of_service"] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    # Capacity 0, or shifts that do not cover now, take the team out of every choice at once
    # (no shifts at all means always on).
    capacity: int | None = Field(default=None, ge=0, le=100)
    shifts: list[Shift] | None = Field(default=None, max_length=50)


class ShiftView(BaseModel):
    """A team's working hours as stored: weekdays and local start and end times (HH:MM:SS)."""

    days: list[Weekday]
    # Plain strings: JSON Schema's "time" format demands a UTC offset, and these are local times.
    start: str = Field(description="Local time, HH:MM:SS")
    end: str = Field(description="Local time, HH:MM:SS (before start: the shift passes midnight)")


class TeamView(BaseModel):
    """A team of the roster as its agency sees it."""

    id: str
    agency_id: str
    name: str
    skills: list[str]
    languages: list[str]
    status: str
    current_call: str | None = Field(description="The most recent call the team is reserved for or serving")
    lat: float | None
    lon: float | None
    capacity: int = Field(description="How many calls the team may hold at once")
    held: int = Field(description="How many calls the team holds now (offered or being worked)")
    shifts: list[ShiftView]
    updated_at: datetime


class DecisionView(BaseModel):
    """One decision of matching for a call, with why."""

    attempt: int
    outcome: str
    team_id: str | None
    reason: str | None
    rules_version: str
    decided_at: datetime
    explanation: dict[str, Any] = Field(description="The inputs and scores (cut for oversight)")


class OfferView(BaseModel):
    """One offer of a call to a team, with why that team."""

    assignment_id: str
    team_id: str
    agency_id: str
    attempt: int
    status: str
    reason: str | None
    deadline: datetime
    offered_at: datetime
    decided_at: datetime | None
    explanation: dict[str, Any]


class MatchView(BaseModel):
    """Every decision made for a call and every offer."""

    call_id: str
    decisions: list[DecisionView]
    offers: list[OfferView]


class AgencyPause(BaseModel):
    """An agency pausing itself: why, as a short code."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="staffing", pattern=r"^[a-z][a-z0-9_]{0,39}$")


class AgencyView(BaseModel):
    """An agency's own state in matching: paused (since when, why) or taking calls."""

    id: str
    name: str
    paused: bool
    paused_at: datetime | None
    pause_reason: str | None
    unreachable_since: datetime | None = Field(
        default=None, description="since when the agency showed no sign of life (None: reachable)"
    )
