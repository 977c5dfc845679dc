"""Request and response models of intake's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.intake import addresses
from services.intake.call import CallInput
from shared.events import Location, Route, SafetyScreen, TriageDecision


class NativeLocation(BaseModel):
    """Where the caller is: a WGS84 position, or a civic address that intake geocodes against the
    jurisdiction's address points (`careroute load-addresses`)."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(
        default=None,
        max_length=500,
        description="One line, as a CAD writes it: `123 N Main St Apt 4, Springfield, OR 97477`",
    )
    coordinates_known: bool | None = Field(
        default=None, description="false: lat and lon are placeholders and the address is geocoded"
    )
    uncertainty_m: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _position_or_address(self) -> NativeLocation:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.lat is None and not (self.address or "").strip():
            raise ValueError("a location needs lat and lon, or an address")
        return self

    def to_location(self) -> Location:
        """The event model's location: without coordinates, at 0, 0 and marked unknown."""
        if self.lat is None or self.lon is None or self.coordinates_known is False:
            return Location(lat=0, lon=0, address=self.address, coordinates_known=False)
        return Location(
            lat=self.lat,
            lon=self.lon,
            address=self.address,
            coordinates_known=self.coordinates_known,
            uncertainty_m=self.uncertainty_m,
        )


class NativeCall(BaseModel):
    """A call in careroute's native format, for CADs that do not send EIDO."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=128, description="The PSAP's own call id")
    incident_type: str = Field(min_length=1, max_length=32, description="EIDO type or local code")
    origin: Literal["911", "988", "311"] = "911"
    location: NativeLocation
    safety: SafetyScreen = Field(default_factory=SafetyScreen)
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    callback_number: str | None = Field(default=None, max_length=32)
    caller_name: str | None = Field(default=None, max_length=200)
    narrative: str | None = Field(default=None, max_length=10_000)
    consent_non_police: bool | None = None
    mpds_determinant: str | None = Field(default=None, pattern=r"^[0-9]{1,2}-?[A-EOΩ]-?[0-9]{1,2}[A-Z]?$")

    def to_call(self) -> CallInput:
        """The internal call model."""
        location = self.location.to_location()
        civic = None
        if location.coordinates_known is False and location.address:
            civic = addresses.civic_from_text(location.address)
        return CallInput(
            external_id=self.external_id,
            incident_type=self.incident_type,
            location=location,
            civic=civic,
            safety=self.safety,
            origin=self.origin,
            language=self.language,
            callback_number=self.callback_number,
            caller_name=self.caller_name,
            narrative=self.narrative,
            consent_non_police=self.consent_non_police,
            mpds_determinant=self.mpds_determinant,
        )


Outcome = Literal[
    "created",
    "duplicate",
    "updated",
    "ignored_older",
    "safety_raised_from_older_version",
    "safety_raised_from_duplicate",
]


class CallAccepted(BaseModel):
    """The answer to a forwarded call: the routing recommendation, in the same request."""

    call_id: str
    external_id: str
    status: str
    decision: TriageDecision
    duplicate: bool = Field(description="True when this call was already received")
    outcome: Outcome = Field(
        default="created",
        description="created; duplicate (same version: nothing changed); updated (a newer EIDO version);"
        " ignored_older (an older EIDO version: acknowledged and ignored); safety_raised_from_older_version"
        " and safety_raised_from_duplicate (an older version or a resend answers a safety question yes that"
        " the call did not: the flag is raised on the call, which is triaged again and calls.updated.v1"
        " published; nothing else it says is taken)",
    )
    detail: str | None = None
    shadow_decision: TriageDecision | None = Field(
        default=None, description="What the shadow rule set would decide (recorded, not acted on)"
    )
    version: datetime | None = Field(default=None, description="The EIDO lastUpdateTimeStamp in force")
    warnings: list[str] = Field(default_factory=list, description="What could not be read from the document")


OverrideReason = Literal[
    "no_team_available",
    "caller_declined",
    "safety_concern",
    "out_of_area",
    "out_of_hours",
    "dispatcher_judgement",
    "other",
]


class OverrideRequest(BaseModel):
    """The call-taker routes the call differently from the recommendation, and says why."""

    model_config = ConfigDict(extra="forbid")

    route: Route
    reason_code: OverrideReason
    reason_text: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _other_needs_text(self) -> OverrideRequest:
        if self.reason_code == "other" and not (self.reason_text or "").strip():
            raise ValueError("reason_text is required when reason_code is 'other'")
        return self


class OverrideAccepted(BaseModel):
    """The override as recorded."""

    call_id: str
    status: str
    route: Route
    reason_code: str
    recommended: TriageDecision


class TimelineEntry(BaseModel):
    """One step of a call's life as the PSAP sees it."""

    at: datetime = Field(description="When intake recorded the step")
    event_time: datetime | None = Field(
        default=None,
        description="When the step happened by the clock of the service that reported it (shown, never"
        " used to order: steps are in causal order, by offer attempt and then by the step's place in its"
        " assignment's life)",
    )
    status: str
    detail: dict[str, Any] = Field(
        description='`"late": true` marks a step that causal order puts behind the status: it changed'
        " nothing, and `late_because` says why"
    )


class CallbackView(BaseModel):
    """One status callback to the PSAP and how it went."""

    unitStatus: str = Field(description="The EIDO unit status the callback reported")
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None


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
    source_format: str = "native"
    version: datetime | None = None
    shadow_decision: TriageDecision | None = None
    override: dict[str, Any] | None = None
    non_diversion_reason: str | None = Field(
        default=None, description="Why an eligible call did not go to a community team"
    )
    callbacks: list[CallbackView] = Field(
        default_factory=list, description="Status callbacks and how each went"
    )
    other_incidents: list[dict[str, str | None]] = Field(
        default_factory=list,
        description="EIDO incident components whose type disagrees with the most recent one, which decides:"
        " kept as sent (`id`, `incident_type`, `lastUpdateTimeStamp`), not used",
    )


class CallCancelled(BaseModel):
    """The call's status after a cancel."""

    call_id: str
    status: str


class CancelRequest(BaseModel):
    """Why the PSAP cancels a call."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
