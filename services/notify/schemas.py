"""Request and response models of notify's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import FollowUpOutcome, LifeSign, OfferDetails, TeamStatus, Timer
from shared.registries import DISPOSITIONS


class Decline(BaseModel):
    """Why an agency declines an offer."""

    model_config = ConfigDict(extra="forbid")

    reason_code: Literal["no_capacity", "out_of_area", "safety_concern", "skill_mismatch", "other"]
    reason_text: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _other_needs_text(self) -> Decline:
        if self.reason_code == "other" and not (self.reason_text or "").strip():
            raise ValueError("reason_text is required when reason_code is 'other'")
        return self


class StatusReport(BaseModel):
    """A team's progress report."""

    model_config = ConfigDict(extra="forbid")

    status: TeamStatus
    disposition: str | None = Field(default=None, max_length=64)
    urgency: Literal["routine", "urgent", "emergency"] | None = None
    eta_min: int | None = Field(
        default=None, ge=1, le=600, description="With en_route: minutes until on scene, as the team reckons"
    )

    @model_validator(mode="after")
    def _fields_fit_status(self) -> StatusReport:
        if self.status == TeamStatus.cleared and not self.disposition:
            raise ValueError("a cleared report needs a disposition code")
        if self.disposition is not None and self.disposition not in DISPOSITIONS:
            raise ValueError(
                f"disposition {self.disposition!r} is not an EIDO common disposition code (01 to 45);"
                " GET /v1/dispositions lists them"
            )
        if self.status == TeamStatus.backup_requested and not self.urgency:
            raise ValueError("a backup request needs an urgency")
        if self.eta_min is not None and self.status != TeamStatus.en_route:
            raise ValueError("an ETA goes with en_route only")
        return self


class CheckIn(BaseModel):
    """A team on scene says how it is going; the safety check-in timer starts again."""

    model_config = ConfigDict(extra="forbid")

    code: Literal["all_well", "still_engaged"] = "all_well"


class WatchView(BaseModel):
    """The timer watching an accepted assignment."""

    timer: Timer = Field(description="en_route, on_scene or check_in: what the agency owes next")
    due_at: datetime = Field(description="When it runs out")
    stage: Literal["running", "repaged", "overdue"] = Field(
        description="running; repaged: missed, the agency paged again; overdue: the PSAP was told"
    )


AssignmentStatus = Literal[
    "offered", "accepted", "declined", "en_route", "on_scene", "cleared", "withdrawn", "expired"
]


class AssignmentView(BaseModel):
    """An assignment as its agency sees it."""

    assignment_id: str
    call_id: str
    team_id: str
    status: AssignmentStatus
    deadline: datetime = Field(description="When an unanswered offer expires")
    details: OfferDetails
    answer: dict[str, Any] | None = Field(description="The agency's answer: response, reason, when")
    offered_at: datetime
    updated_at: datetime
    watch: WatchView | None = Field(default=None, description="The timer watching it once accepted")


class Disposition(BaseModel):
    """One EIDO common disposition code."""

    code: str
    description: str


class AgencyLiveness(BaseModel):
    """Whether an agency counts as reachable, and its last sign of life."""

    agency_id: str
    reachable: bool
    liveness_timeout_s: int | None = Field(description="None: the agency's liveness is not watched")
    last_seen_at: datetime | None
    last_sign: LifeSign | None


FollowUpState = Literal["open", "overdue", "closed"]


class FollowUpClose(BaseModel):
    """A 988 center closes its follow-up: how the call back went (the note stays in notify)."""

    model_config = ConfigDict(extra="forbid")

    outcome: FollowUpOutcome
    note: str | None = Field(default=None, max_length=2000)


class FollowUpView(BaseModel):
    """A follow-up as its 988 center sees it."""

    follow_up_id: str
    call_id: str
    assignment_id: str
    state: FollowUpState = Field(description="open; overdue (open past its due time); closed")
    due_at: datetime = Field(description="When the center must have closed it")
    overdue_at: datetime | None = Field(description="When it was reported overdue, if it was")
    closed_at: datetime | None
    outcome: FollowUpOutcome | None
