"""Request and response models of intake's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Location, SafetyScreen, TriageDecision


class NativeCall(BaseModel):
    """A call in careroute's native format, for CADs that do not send EIDO."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=128, description="The PSAP's own call id")
    incident_type: str = Field(min_length=1, max_length=32, description="EIDO type or local code")
    origin: Literal["911", "988", "311"] = "911"
    location: Location
    safety: SafetyScreen = Field(default_factory=SafetyScreen)
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    callback_number: str | None = Field(default=None, max_length=32)
    caller_name: str | None = Field(default=None, max_length=200)
    narrative: str | None = Field(default=None, max_length=10_000)
    consent_non_police: bool | None = None


class CallAccepted(BaseModel):
    """The answer to a forwarded call: the routing recommendation, in the same request."""

    call_id: str
    external_id: str
    status: str
    decision: TriageDecision
    duplicate: bool = Field(description="True when this call was already received")


class TimelineEntry(BaseModel):
    """One step of a call's life as the PSAP sees it."""

    at: datetime
    status: str
    detail: dict[str, Any]


class CallView(BaseModel):
    """A call's status and timeline, for the PSAP that owns it."""

    call_id: str
    external_id: str
    incident_type: str
    status: str
    decision: TriageDecision
    assignment: dict[str, Any] | None
    received_at: datetime
    timeline: list[TimelineEntry]


class CancelRequest(BaseModel):
    """Why the PSAP cancels a call."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
