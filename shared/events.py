"""Payload models of every careroute topic: the event contract (docs/topics.md)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Disclosure(Enum):
    """How a field reaches an oversight body: as it is, or coarsened to a 0.01 degree grid (about
    1 km). A field without one never reaches oversight, nor does anything a producer adds: what
    oversight may see is this allow-list, declared here beside each field."""

    shown = "shown"
    grid = "grid"


# `Shown[str]`: the field is safe for oversight as it is (codes, ids, times, counts, enums).
Shown = Annotated[T, Disclosure.shown]
# `OnGrid[float]`: a coordinate oversight sees rounded to the grid.
OnGrid = Annotated[T, Disclosure.grid]


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

    weapon: Shown[Answer] = Answer.unknown
    violence: Shown[Answer] = Answer.unknown
    medical: Shown[Answer] = Answer.unknown
    self_harm_imminent: Shown[Answer] = Answer.unknown
    crime_in_progress: Shown[Answer] = Answer.unknown
    # Whether someone needs to go to the caller at all: "no" may let a call go to the 988 line.
    in_person_needed: Shown[Answer] = Answer.unknown


# The screen's questions by name, for the rules that read one answer (triage's, matching's).
SafetyQuestion = Literal[
    "weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress", "in_person_needed"
]
# The questions about danger: one newly answered yes ends a community response. Whether someone
# needs to go is not one of them (a team going is the community response).
RISK_QUESTIONS: tuple[SafetyQuestion, ...] = (
    "weapon",
    "violence",
    "medical",
    "self_harm_imminent",
    "crime_in_progress",
)


class Location(Payload):
    """Where the person in crisis is."""

    lat: OnGrid[float] = Field(ge=-90, le=90)
    lon: OnGrid[float] = Field(ge=-180, le=180)
    address: str | None = None
    # From EIDO: a civic address or a location by reference has no coordinates;
    # then lat/lon are 0, coordinates_known is False and triage never routes the call to `community`.
    coordinates_known: Shown[bool | None] = None
    uncertainty_m: Shown[float | None] = None
    reference_url: str | None = None


class Route(StrEnum):
    """Who triage sends the call to."""

    community = "community"
    police = "police"
    ems = "ems"
    fire = "fire"
    review = "review"
    # Transferred to the jurisdiction's 988 crisis line (its `crisis_line` agency), not sent a team.
    crisis_line = "988"


class ReasonCode(Payload):
    """One reason triage gave, as a code and parameters that are themselves codes (never input
    text): what oversight reads in place of the PSAP's human sentence."""

    code: Shown[str]
    params: Shown[dict[str, str]] = Field(default_factory=dict)


class TriageDecision(Payload):
    """Triage's recommendation with every reason that fired and the rules version."""

    route: Shown[Route]
    # The human sentences, for the PSAP's own views; `codes` says the same for oversight.
    reasons: list[str]
    rules_version: Shown[str]
    codes: Shown[list[ReasonCode]] = Field(default_factory=list)
    # Whether the rules call the incident type behavioural health (None: decided before they said).
    behavioural_health: Shown[bool | None] = None
    # When a call sent to review must have been decided by a person (None: not sent to review).
    review_deadline: Shown[datetime | None] = None


# EIDO caution words as the PSAP sent them (upper case): for the team, never for oversight.
CAUTIONS_MAX, CAUTION_MAX_CHARS = 50, 200
Caution = Annotated[str, Field(max_length=CAUTION_MAX_CHARS)]
Cautions = Annotated[list[Caution], Field(max_length=CAUTIONS_MAX)]


class CallReceived(Payload):
    """A PSAP forwarded a new call (`calls.received.v1`)."""

    call_id: Shown[str]
    psap_id: Shown[str]
    external_id: str
    incident_type: str
    origin: Shown[str] = "911"
    location: Shown[Location]
    language: Shown[str | None] = None
    safety: Shown[SafetyScreen]
    callback_number: str | None = None
    cautions: Cautions = Field(default_factory=list)
    decision: Shown[TriageDecision]
    received_at: Shown[datetime]
    # The shadow rule set's decision (recorded, never acted on) and the EIDO version.
    shadow_decision: Shown[TriageDecision | None] = None
    version: Shown[datetime | None] = None


class CallUpdated(Payload):
    """A PSAP sent a newer version of a call (`calls.updated.v1`)."""

    call_id: Shown[str]
    psap_id: Shown[str]
    incident_type: str
    location: Shown[Location]
    language: Shown[str | None] = None
    safety: Shown[SafetyScreen]
    # None when the update does not name one: the team keeps the number it has.
    callback_number: str | None = None
    cautions: Cautions = Field(default_factory=list)
    decision: Shown[TriageDecision]
    updated_at: Shown[datetime]
    # Why the call changed (a newer EIDO version or a call-taker's override).
    reason: Shown[Literal["eido_update", "override"] | None] = None
    previous_route: Shown[Route | None] = None
    shadow_decision: Shown[TriageDecision | None] = None
    version: Shown[datetime | None] = None
    override_reason_code: Shown[str | None] = None
    override_reason_text: str | None = None


class CallCancelled(Payload):
    """A PSAP cancelled a call (`calls.cancelled.v1`)."""

    call_id: Shown[str]
    psap_id: Shown[str]
    reason: str | None = None


class OfferDetails(Payload):
    """The minimum a team needs to respond: nothing more leaves intake's store."""

    location: Shown[Location]
    presenting_problem: str
    language: Shown[str | None] = None
    safety: Shown[SafetyScreen]
    callback_number: str | None = None
    cautions: Cautions = Field(default_factory=list)


# What a PSAP update can change in an offer that its team must hear (services/matching/domain.py).
OfferChange = Literal["location", "callback_number", "language", "cautions"]


class AssignmentRef(Payload):
    """What every assignment event names."""

    assignment_id: Shown[str]
    call_id: Shown[str]
    agency_id: Shown[str]
    team_id: Shown[str]
    # Which offer of the call this assignment is (1, 2, ...), numbered by matching, which owns the
    # call's offers: the causal order between a call's assignments, never a comparison of clocks.
    # Optional only for events written before it existed.
    attempt: Shown[int | None] = Field(default=None, ge=1)
    # How many teams were offered the call at once in this attempt (None: this team alone). The
    # first to accept gets the call; the others' offers are withdrawn (`accepted_by_another_team`).
    offered_with: Shown[int | None] = Field(default=None, ge=2)


class AssignmentOffered(AssignmentRef):
    """Matching reserved a team and offers it the call (`assignments.offered.v1`)."""

    attempt: Shown[int] = Field(ge=1)
    deadline: Shown[datetime]
    offer: Shown[OfferDetails]
    distance_km: Shown[float | None] = None
    # Matching's travel estimate to the call, in minutes: what the on-scene timer expects when the
    # agency's en route report names no ETA of its own.
    eta_min: Shown[float | None] = Field(default=None, ge=0)


class AssignmentExpired(AssignmentRef):
    """The team did not answer before the deadline (`assignments.expired.v1`)."""


class AssignmentWithdrawn(AssignmentRef):
    """The offer or assignment was taken back (`assignments.withdrawn.v1`)."""

    reason: Shown[str]


class AssignmentUpdated(AssignmentRef):
    """A PSAP update changed what the offered or assigned team was told (`assignments.updated.v1`)."""

    offer: Shown[OfferDetails]
    changed: Shown[list[OfferChange]] = Field(min_length=1)


class AssignmentResponded(AssignmentRef):
    """The agency accepted or declined (`assignments.responded.v1`)."""

    response: Shown[Literal["accepted", "declined"]]
    reason_code: Shown[str | None] = None
    reason_text: str | None = None
    responded_at: Shown[datetime]


class TeamStatus(StrEnum):
    """Statuses an agency reports for an assignment."""

    en_route = "en_route"
    on_scene = "on_scene"
    cleared = "cleared"
    backup_requested = "backup_requested"


class AssignmentStatusChanged(AssignmentRef):
    """The team reported progress (`assignments.status_changed.v1`)."""

    status: Shown[TeamStatus]
    disposition: Shown[str | None] = None
    urgency: Shown[str | None] = None
    reported_at: Shown[datetime]
    # With en route: the team's own ETA in minutes, which the on-scene timer then expects.
    eta_min: Shown[int | None] = Field(default=None, ge=1)


# The timers that watch an accepted assignment: accepted to en route, en route to on scene, and the
# safety check-in while on scene.
Timer = Literal["en_route", "on_scene", "check_in"]


class TimerMissed(AssignmentRef):
    """An agency let one of its assignment's timers run out (`assignments.timer_missed.v1`): first the
    agency is paged again (`agency_repaged`), then, still unanswered after a grace, its PSAP is told
    with an `Overdue` status callback (`psap_told`)."""

    timer: Shown[Timer]
    escalation: Shown[Literal["agency_repaged", "psap_told"]]
    due_at: Shown[datetime]
    missed_at: Shown[datetime]


class CallUnassigned(Payload):
    """No community team took the call; it goes back to the PSAP (`calls.unassigned.v1`)."""

    call_id: Shown[str]
    psap_id: Shown[str | None] = None
    reason_code: Shown[str]
    detail: str | None = None
    # How many offers matching made before handing the call back (its last attempt number).
    attempts: Shown[int | None] = Field(default=None, ge=0)


# Why a status callback to a PSAP failed, as a class of error (never the error's text).
CallbackErrorClass = Literal[
    "http_4xx", "http_5xx", "http_other", "timeout", "connect", "invalid_url", "transport", "no_callback_url"
]


class CallbackFailed(Payload):
    """A status callback never reached the PSAP: intake gave up after `attempts`
    (`calls.callback_failed.v1`)."""

    call_id: Shown[str]
    psap_id: Shown[str]
    # The call's step the PSAP was not told (`handed_back`) and the callback's unitStatus.
    status: Shown[str]
    unit_status: Shown[str]
    attempts: Shown[int] = Field(ge=1)
    error_class: Shown[CallbackErrorClass]


# The signs of life notify reads from an agency.
LifeSign = Literal["stream", "webhook", "kafka_group", "request"]


class AgencyReachability(Payload):
    """An agency became unreachable (no sign of life for `timeout_s`) or reachable again
    (`agencies.reachability.v1`): while unreachable its teams are skipped (`agency_unreachable`)."""

    agency_id: Shown[str]
    reachable: Shown[bool]
    # The last sign of life and what it was (None: none since liveness was first watched).
    last_seen_at: Shown[datetime | None] = None
    sign: Shown[LifeSign | None] = None
    timeout_s: Shown[int] = Field(ge=1)
    at: Shown[datetime]


# Teams one capacity snapshot lists at most: it must fit one broker message (about 40 bytes each).
CAPACITY_TEAMS_MAX = 20_000


class TeamsCapacity(Payload):
    """Which teams could take one more call right now, and where (`teams.capacity.v1`): matching's
    snapshot, published when it changes (at most every `min_interval_s`) and at least every
    `every_s`, so intake can answer a call's 202 with the capacity it sees.

    A team is listed when it is on shift, its agency is not paused, and it holds fewer calls than
    its capacity. Columns of integers, one entry per team (a polygon team's circle is unused): it
    stays one message for a large roster, and cheap to encode and to canonicalise in the trail.
    """

    as_of: Shown[datetime]
    every_s: Shown[float] = Field(gt=0, le=3600)
    teams_on_roster: Shown[int] = Field(ge=0)
    team_ids: Shown[list[str]] = Field(max_length=CAPACITY_TEAMS_MAX)
    places: Shown[list[int]] = Field(max_length=CAPACITY_TEAMS_MAX)
    # Positions in 1e-4 degrees (about 10 m) and radii in metres.
    lat_e4: list[int] = Field(max_length=CAPACITY_TEAMS_MAX)
    lon_e4: list[int] = Field(max_length=CAPACITY_TEAMS_MAX)
    radius_m: list[int] = Field(max_length=CAPACITY_TEAMS_MAX)
    # Team id -> its coverage polygon as [lat, lon] corners, for the listed teams that have one.
    areas: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)


class NotificationOutcome(Payload):
    """One delivery attempt to an agency and how it went."""

    notification_id: Shown[str]
    assignment_id: Shown[str]
    call_id: Shown[str]
    agency_id: Shown[str]
    channel: Shown[Literal["kafka", "webhook", "sse"]]
    kind: Shown[str]
    attempt: Shown[int] = 1
    page: Shown[int | None] = None  # 1 for the first offer, 2 and up for each re-page


class NotificationDelivered(NotificationOutcome):
    """An agency channel took the message (`notifications.delivered.v1`)."""


class NotificationFailed(NotificationOutcome):
    """An agency channel could not be reached in time (`notifications.failed.v1`)."""

    error: str
    will_retry: Shown[bool | None] = None  # true for a failed attempt that will be tried again


class AgencyAssignmentMessage(Payload):
    """What an agency's own topic carries: one offer, update, withdrawal, expiry or missed timer."""

    kind: Shown[Literal["offered", "updated", "withdrawn", "expired", "timer_missed"]]
    assignment_id: Shown[str]
    call_id: Shown[str]
    team_id: Shown[str]
    deadline: Shown[datetime | None] = None
    details: OfferDetails | None = None
    reason: str | None = None
    # For an update: what changed, so the team looks there first.
    changed: list[OfferChange] | None = None
    # For a missed timer: which one, and when it ran out (the PSAP is told after a grace).
    timer: Timer | None = None
    due_at: datetime | None = None
    # For an offer made to several teams at once: how many; the first to accept gets the call.
    offered_with: Shown[int | None] = None


class FollowUpRef(Payload):
    """What every follow-up event names: the 988 center's call back owed after it took a call."""

    follow_up_id: Shown[str]
    call_id: Shown[str]
    agency_id: Shown[str]
    assignment_id: Shown[str]
    due_at: Shown[datetime]


class FollowUpScheduled(FollowUpRef):
    """The 988 center accepted a call; it owes the caller a call back by `due_at`
    (`follow_ups.scheduled.v1`)."""


# How a 988 center's call back went: a code, so oversight reads no free text.
FollowUpOutcome = Literal["reached", "unreachable", "referred", "declined_by_caller"]


class FollowUpClosed(FollowUpRef):
    """The 988 center closed its follow-up (`follow_ups.closed.v1`)."""

    outcome: Shown[FollowUpOutcome]
    closed_at: Shown[datetime]
    late: Shown[bool] = False


class FollowUpOverdue(FollowUpRef):
    """A follow-up was still open at its due time (`follow_ups.overdue.v1`)."""

    overdue_at: Shown[datetime]


class AccessRecorded(Payload):
    """Who read or tried to reach an API (`access.recorded.v1`): failed logins and oversight reads."""

    service: Shown[str]
    outcome: Shown[Literal["allowed", "denied"]]
    method: Shown[str]
    path: Shown[str]
    tenant_id: Shown[str | None] = None
    role: Shown[str | None] = None
    reason: Shown[str | None] = None
    client: Shown[str | None] = None
    at: Shown[datetime]
    # A summary of throttled failed authentications from one client: how many it stands for.
    count: Shown[int | None] = Field(default=None, ge=1)
