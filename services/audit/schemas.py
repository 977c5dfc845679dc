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
    eligible: int
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


class Percentiles(BaseModel):
    """Seconds between two steps: how many, and their nearest-rank percentiles (null when none)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class Summary(BaseModel):
    """The oversight summary of the calls received in a time range."""

    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")
    agency: str | None
    funnel: Funnel
    outcomes: Outcomes
    overrides: dict[str, int] = Field(
        description="Overridden behavioural-health calls by `<route recommended>:<override reason code>`"
    )
    hand_backs: dict[str, int]
    backup_requests: int
    times_by_agency: dict[str, dict[str, Percentiles]]
    coverage_gaps_by_hour_utc: dict[str, int]


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


class ShadowDifferences(BaseModel):
    """Calls of a period whose shadow decision differs from the active one, by pair of routes."""

    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")
    compared: int = Field(description="Calls triaged by both rule sets")
    differ: int = Field(description="Calls the shadow rules would route elsewhere")
    active_versions: list[str]
    other_versions: list[str]
    pairs: list[RoutePair]
