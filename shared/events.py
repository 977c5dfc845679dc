"""Payload models of every careroute topic (DESIGN.md section 3): the event contract."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event payload: unknown fields are kept, so a newer producer never breaks us."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Answer(StrEnum):
    """One answer of the structured safety screen."""

    yes = "yes"
    no = "no"
    unknown = "unknown"


class SafetyScreen(Payload):
    """The call-taker's structured safety questions."""

    weapon: Answer = Answer.unknown
    violence: Answer = Answer.unknown
    medical: Answer = Answer.unknown
    self_harm_imminent: Answer = Answer.unknown
    crime_in_progress: Answer = Answer.unknown


class Location(Payload):
    """Where the person in crisis is."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = None
    # Added for EIDO (issue 3): a civic address or a location by reference has no coordinates;
    # then lat/lon are 0, coordinates_known is False and triage never routes the call to `community`.
    coordinates_known: bool | None = None
    uncertainty_m: float | None = None
    reference_url: str | None = None


class Route(StrEnum):
    """Who triage sends the call to."""

    community = "community"
    police = "police"
    ems = "ems"
    review = "review"


class TriageDecision(Payload):
    """Triage's recommendation with every reason that fired and the rules version."""

    route: Route
    reasons: list[str]
    rules_version: str


class CallReceived(Payload):
    """A PSAP forwarded a new call (`calls.received.v1`)."""

    call_id: str
    psap_id: str
    external_id: str
    incident_type: str
    origin: str = "911"
    location: Location
    language: str | None = None
    safety: SafetyScreen
    callback_number: str | None = None
    decision: TriageDecision
    received_at: datetime
    # Added in issue 3: the shadow rule set's decision (recorded, never acted on) and the EIDO version.
    shadow_decision: TriageDecision | None = None
    version: datetime | None = None


class CallUpdated(Payload):
    """A PSAP sent a newer version of a call (`calls.updated.v1`)."""

    call_id: str
    psap_id: str
    incident_type: str
    location: Location
    language: str | None = None
    safety: SafetyScreen
    decision: TriageDecision
    updated_at: datetime
    # Added in issue 3: why the call changed (a newer EIDO version or a call-taker's override).
    reason: Literal["eido_update", "override"] | None = None
    previous_route: Route | None = None
    shadow_decision: TriageDecision | None = None
    version: datetime | None = None
    override_reason_code: str | None = None
    override_reason_text: str | None = None


class CallCancelled(Payload):
    """A PSAP cancelled a call (`calls.cancelled.v1`)."""

    call_id: str
    psap_id: str
    reason: str | None = None


class OfferDetails(Payload):
    """The minimum a team needs to respond: nothing more leaves intake's store."""

    location: Location
    presenting_problem: str
    language: str | None = None
    safety: SafetyScreen
    callback_number: str | None = None


class AssignmentRef(Payload):
    """What every assignment event names."""

    assignment_id: str
    call_id: str
    agency_id: str
    team_id: str
    # Which offer of the call this assignment is (1, 2, ...), numbered by matching, which owns the
    # call's offers: the causal order between a call's assignments, never a comparison of clocks.
    # Optional only for events written before it existed.
    attempt: int | None = Field(default=None, ge=1)


class AssignmentOffered(AssignmentRef):
    """Matching reserved a team and offers it the call (`assignments.offered.v1`)."""

    attempt: int = Field(ge=1)
    deadline: datetime
    offer: OfferDetails
    distance_km: float | None = None


class AssignmentExpired(AssignmentRef):
    """The team did not answer before the deadline (`assignments.expired.v1`)."""


class AssignmentWithdrawn(AssignmentRef):
    """The offer or assignment was taken back (`assignments.withdrawn.v1`)."""

    reason: str


class AssignmentResponded(AssignmentRef):
    """The agency accepted or declined (`assignments.responded.v1`)."""

    response: Literal["accepted", "declined"]
    reason_code: str | None = None
    reason_text: str | None = None
    responded_at: datetime


class TeamStatus(StrEnum):
    """Statuses an agency reports for an assignment."""

    en_route = "en_route"
    on_scene = "on_scene"
    cleared = "cleared"
    backup_requested = "backup_requested"


class AssignmentStatusChanged(AssignmentRef):
    """The team reported progress (`assignments.status_changed.v1`)."""

    status: TeamStatus
    disposition: str | None = None
    urgency: str | None = None
    reported_at: datetime


class CallUnassigned(Payload):
    """No community team took the call; it goes back to the PSAP (`calls.unassigned.v1`)."""

    call_id: str
    psap_id: str | None = None
    reason_code: str
    detail: str | None = None
    # How many offers matching made before handing the call back (its last attempt number).
    attempts: int | None = Field(default=None, ge=0)


class NotificationOutcome(Payload):
    """One delivery attempt to an agency and how it went."""

    notification_id: str
    assignment_id: str
    call_id: str
    agency_id: str
    channel: Literal["kafka", "webhook", "sse"]
    kind: str
    attempt: int = 1
    page: int | None = None  # 1 for the first offer, 2 and up for each re-page


class NotificationDelivered(NotificationOutcome):
    """An agency channel took the message (`notifications.delivered.v1`)."""


class NotificationFailed(NotificationOutcome):
    """An agency channel could not be reached in time (`notifications.failed.v1`)."""

    error: str
    will_retry: bool | None = None  # true for a failed attempt that will be tried again


class AgencyAssignmentMessage(Payload):
    """What an agency's own topic carries: one offer, withdrawal or expiry."""

    kind: Literal["offered", "withdrawn", "expired"]
    assignment_id: str
    call_id: str
    team_id: str
    deadline: datetime | None = None
    details: OfferDetails | None = None
    reason: str | None = None


class AccessRecorded(Payload):
    """Who read or tried to reach an API (`access.recorded.v1`): failed logins and oversight reads."""

    service: str
    outcome: Literal["allowed", "denied"]
    method: str
    path: str
    tenant_id: str | None = None
    role: str | None = None
    reason: str | None = None
    client: str | None = None
    at: datetime
    # A summary of throttled failed authentications from one client: how many it stands for.
    count: int | None = Field(default=None, ge=1)
