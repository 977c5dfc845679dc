"""Response models of audit's HTTP API: what an oversight body or admin may see of the trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class TrailEvent(BaseModel):
    """One row of the trail: the event (redacted unless an admin asked for phi) and its place in the chain."""

    seq: int
    recorded_at: datetime
    row_hash: str = Field(description="The row's SHA-256 hash, hex")
    id: str
    type: str
    source: str
    subject: str
    time: str = Field(description="When the event happened by its producer's clock, as it sent it")
    correlationid: str | None = None
    causationid: str | None = None
    data: dict[str, Any]


class CallTrail(BaseModel):
    """One call's whole story, in trail order."""

    call_id: str
    events: list[TrailEvent]


class EventPage(BaseModel):
    """A page of events; pass `next_cursor` back as `cursor` for the next one (null: no more)."""

    events: list[TrailEvent]
    next_cursor: int | None


class EventIds(BaseModel):
    """A page of one call's event ids."""

    event_ids: list[str]
    next_cursor: int | None


class CallIds(BaseModel):
    """A page of call ids."""

    call_ids: list[str]
    next_cursor: str | None


class AgencyIds(BaseModel):
    """Agencies involved."""

    agency_ids: list[str]


class Verification(BaseModel):
    """The result of re-walking the chain: ok, or the first bad row and why."""

    head_seq: int
    range: list[int] = Field(description="[first, last] seq walked")
    checkpoints_checked: int
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None


class VerifierKey(BaseModel):
    """The checkpoint verifier key."""

    origin: str
    verifier_key: str = Field(description="name+keyid+base64(0x01||ed25519 public key)")


class InclusionProof(BaseModel):
    """An RFC 9162 inclusion proof, hex-encoded hashes."""

    seq: int
    leaf_index: int
    tree_size: int
    proof: list[str]


class ConsistencyProof(BaseModel):
    """An RFC 9162 consistency proof, hex-encoded hashes."""

    first: int
    second: int
    proof: list[str]


class Funnel(BaseModel):
    """How many calls reached each step of diversion."""

    received: int
    behavioural_health: int
    eligible: int = Field(description="Calls routed to a community team or to the 988 crisis line")
    offered: int
    accepted: int
    on_scene: int
    cleared: int = Field(description="Calls a community team cleared")
    cleared_without_police: int = Field(
        description="Cleared with no backup request and a disposition involving no law enforcement"
    )
    cleared_with_police: int = Field(
        description="Cleared after a backup request or with a law enforcement disposition"
    )


class Outcomes(BaseModel):
    """Every behavioural-health call's one outcome: the totals sum to `behavioural_health`."""

    behavioural_health: int
    totals: dict[str, int] = Field(description="Calls by outcome code (every code, zero when none)")
    reasons: dict[str, dict[str, int]] = Field(description="Calls by outcome code, then by reason code")


class FollowUps(BaseModel):
    """The 988 center's follow-ups of the calls transferred to it (each call counted once)."""

    transferred: int = Field(description="Calls the 988 center took")
    open: int = Field(description="Scheduled, not closed, not past due when last seen")
    overdue: int = Field(description="Past due and still open")
    closed: int = Field(description="Closed by their due time")
    closed_late: int = Field(description="Closed after their due time")
    by_outcome: dict[str, int] = Field(description="Closed follow-ups by the center's outcome code")


class Percentiles(BaseModel):
    """Seconds between two steps: how many, and their nearest-rank percentiles (null when none)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class MissedTimers(BaseModel):
    """One agency's timers that ran out (each miss once, when its agency was paged again)."""

    en_route: int = Field(description="Accepted calls not reported en route in time")
    on_scene: int = Field(description="Calls en route not reported on scene within the ETA and margin")
    check_in: int = Field(description="Safety check-ins on scene not made in time")
    psap_told: int = Field(description="Misses still unanswered after the grace: the PSAP was told Overdue")


class PeriodReport(BaseModel):
    """A report of the calls received in a period (`from` included, `to` excluded; null: open)."""

    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")


class Summary(PeriodReport):
    """The oversight summary of the calls received in a time range."""

    agency: str | None
    funnel: Funnel
    outcomes: Outcomes
    overrides: dict[str, int] = Field(
        description="Overridden behavioural-health calls by `<route recommended>:<override reason code>`"
    )
    hand_backs: dict[str, int]
    backup_requests: int
    times_by_agency: dict[str, dict[str, Percentiles]]
    # From the 202 to an accepting team or a hand-back, over the calls that reached either.
    time_to_commitment_s: Percentiles
    coverage_gaps_by_hour_utc: dict[str, int]
    timezone: str = Field(description="The jurisdiction's time zone, which the hours of the week are read in")
    coverage_gaps_by_hour_of_week: list[int] = Field(
        description="Coverage gaps in each local hour of the week: 168 counts, Monday 00:00-01:00 first"
    )
    follow_ups: FollowUps
    missed_timers: dict[str, MissedTimers] = Field(
        description="By agency: the timers after acceptance its teams let run out (jurisdiction's watch)"
    )


class DispositionClass(BaseModel):
    """One EIDO common disposition code and whether the reports count it as involving law enforcement."""

    code: str
    description: str
    law_enforcement: bool
    why: str


class RoutePair(BaseModel):
    """Calls one rule set routes one way and the other another, with their ids for the PSAP's review."""

    active: str = Field(description="The route under the rules in force")
    other: str = Field(description="The route under the shadow (or draft) rules")
    calls: int
    call_ids: list[str]


class ShadowDifferences(PeriodReport):
    """Calls of a period whose shadow decision differs from the active one, by pair of routes."""

    compared: int = Field(description="Calls triaged by both rule sets")
    differ: int = Field(description="Calls the shadow rules would route elsewhere")
    active_versions: list[str]
    other_versions: list[str]
    pairs: list[RoutePair]


class OnSceneTimes(BaseModel):
    """Seconds from a call coming in to a team on scene: how many calls, their nearest-rank p50, p90."""

    count: int
    p50: float | None
    p90: float | None


class AreaCell(BaseModel):
    """One cell's behavioural-health calls; withheld (`suppressed`, every figure null) when it holds
    fewer than 11 calls, or when showing it would let one be found by subtraction."""

    suppressed: bool
    calls: int | None
    diversion_rate: float | None = Field(
        description="Share served by a community team with no police involvement"
    )
    police_involvement_rate: float | None = Field(
        description="Share served with police (a backup request, a law enforcement disposition)"
        " or routed to police"
    )
    hand_back_rate: float | None = Field(description="Share no community team took, handed back to the PSAP")
    call_to_on_scene_s: OnSceneTimes | None


class HourCell(AreaCell):
    """A cell of one local hour of day (0-23)."""

    hour: int


class ZoneRow(BaseModel):
    """One zone (or `unzoned`, `unlocated`): over all hours, and hour by hour."""

    zone: str
    total: AreaCell
    hours: list[HourCell]


class AreaReport(PeriodReport):
    """Behavioural-health calls received in a period by zone and by local hour of day."""

    timezone: str = Field(description="The jurisdiction's time zone, which the hours are read in")
    min_cell: int = Field(description="The fewest calls a cell shows figures for")
    total: AreaCell
    zones: list[ZoneRow]
    hours: list[HourCell] = Field(description="Each hour of day over all zones")


class WorkforceInputs(BaseModel):
    """What the staffing figures were computed from."""

    target: float = Field(description="The share of eligible calls that must wait at most within_min")
    within_min: float
    weeks: float = Field(description="Length of the period in weeks (whole hours)")
    eligible_calls: int
    busy_calls: int = Field(description="Calls a team accepted and cleared: the busy times observed")
    mean_busy_min: float | None = Field(description="Mean minutes from accept to cleared (travel included)")
    mean_travel_min: float | None = Field(description="Mean minutes from accept to on scene")
    teams: int = Field(description="Teams in the loaded roster")


class WorkforceHour(BaseModel):
    """One hour of the week (Monday 00:00 is 0) in the jurisdiction's time zone."""

    hour_of_week: int
    day: str
    hour: int
    observed_hours: float = Field(description="Hours of the period that fell in this hour of the week")
    arrivals: int = Field(description="Eligible calls that came in during it")
    arrivals_per_h: float | None
    load_erlangs: float | None = Field(description="Arrivals per hour times the mean busy time, in hours")
    teams_needed: int | None = Field(
        description="Erlang C: the fewest teams that meet the target (null: no busy time observed)"
    )
    teams_on_shift: int = Field(description="Teams with capacity whose shifts cover the middle of the hour")
    places_on_shift: int = Field(description="Calls those teams can hold at once (their capacities)")
    shortfall: int | None = Field(description="teams_needed minus places_on_shift, at least 0")
    share_within_on_shift: float | None = Field(
        description="Erlang C: the share that would wait at most within_min with the places on shift"
    )


class WorkforceTotals(BaseModel):
    """The week's team-hours: needed, on shift, short; and the hour shortest of teams."""

    team_hours_needed: int | None
    team_hours_on_shift: int
    shortfall_team_hours: int | None
    worst_hour_of_week: int | None


class WorkforceReport(BaseModel):
    """How many teams each hour of the week needs so a share of eligible calls get one in time."""

    since: datetime = Field(alias="from")
    until: datetime = Field(alias="to")
    timezone: str
    model: str = Field(description="erlang_c: M/M/c with the observed mean busy time")
    inputs: WorkforceInputs
    hours: list[WorkforceHour]
    totals: WorkforceTotals


class ZoneShape(BaseModel):
    """One zone of the area report and its ring of [lon, lat] corners (the ring closes itself)."""

    name: str
    polygon: list[tuple[float, float]]


class ZoneMap(BaseModel):
    """The zones the area report counts calls by, as the jurisdiction file draws them."""

    timezone: str = Field(description="The jurisdiction's time zone, which the reports read hours in")
    zones: list[ZoneShape]


class SignedCheckpoint(BaseModel):
    """The newest signed tree head, as audit keeps it, and whether its signature verifies."""

    origin: str
    tree_size: int = Field(description="Trail rows the checkpoint's Merkle tree covers")
    root_hash: str = Field(description="The tree's root, hex")
    signed_at: datetime = Field(description="When audit kept it")
    signature_ok: bool = Field(description="Whether it verifies with audit's verifier key")


class Integrity(BaseModel):
    """How far the trail goes and its newest signed checkpoint (null: none signed yet); run
    `/v1/audit/verify` to re-walk the chain against them."""

    head_seq: int = Field(description="Rows in the trail")
    checkpoint: SignedCheckpoint | None
