"""The topic registry: each topic's name and payload model, used to create topics and to decode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from shared import events
from shared.envelope import Envelope

AGENCY_TOPIC_PREFIX = "agency."
AGENCY_TOPIC_SUFFIX = ".assignments.v1"
AGENCY_TYPE = "agency.assignments.v1"

CALLS_RECEIVED = "calls.received.v1"
CALLS_UPDATED = "calls.updated.v1"
CALLS_CANCELLED = "calls.cancelled.v1"
CALLS_UNASSIGNED = "calls.unassigned.v1"
CALLS_CALLBACK_FAILED = "calls.callback_failed.v1"
ASSIGNMENTS_OFFERED = "assignments.offered.v1"
ASSIGNMENTS_EXPIRED = "assignments.expired.v1"
ASSIGNMENTS_WITHDRAWN = "assignments.withdrawn.v1"
ASSIGNMENTS_UPDATED = "assignments.updated.v1"
ASSIGNMENTS_RESPONDED = "assignments.responded.v1"
ASSIGNMENTS_STATUS_CHANGED = "assignments.status_changed.v1"
ASSIGNMENTS_TIMER_MISSED = "assignments.timer_missed.v1"
NOTIFICATIONS_DELIVERED = "notifications.delivered.v1"
NOTIFICATIONS_FAILED = "notifications.failed.v1"
ACCESS_RECORDED = "access.recorded.v1"
TEAMS_CAPACITY = "teams.capacity.v1"
AGENCIES_REACHABILITY = "agencies.reachability.v1"
FOLLOW_UPS_SCHEDULED = "follow_ups.scheduled.v1"
FOLLOW_UPS_CLOSED = "follow_ups.closed.v1"
FOLLOW_UPS_OVERDUE = "follow_ups.overdue.v1"


@dataclass(frozen=True)
class Topic:
    """One logical topic: its name (equal to the event type) and its payload model."""

    name: str
    model: type[events.Payload]


REGISTRY: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(CALLS_RECEIVED, events.CallReceived),
        Topic(CALLS_UPDATED, events.CallUpdated),
        Topic(CALLS_CANCELLED, events.CallCancelled),
        Topic(CALLS_UNASSIGNED, events.CallUnassigned),
        Topic(CALLS_CALLBACK_FAILED, events.CallbackFailed),
        Topic(ASSIGNMENTS_OFFERED, events.AssignmentOffered),
        Topic(ASSIGNMENTS_EXPIRED, events.AssignmentExpired),
        Topic(ASSIGNMENTS_WITHDRAWN, events.AssignmentWithdrawn),
        Topic(ASSIGNMENTS_UPDATED, events.AssignmentUpdated),
        Topic(ASSIGNMENTS_RESPONDED, events.AssignmentResponded),
        Topic(ASSIGNMENTS_STATUS_CHANGED, events.AssignmentStatusChanged),
        Topic(ASSIGNMENTS_TIMER_MISSED, events.TimerMissed),
        Topic(NOTIFICATIONS_DELIVERED, events.NotificationDelivered),
        Topic(NOTIFICATIONS_FAILED, events.NotificationFailed),
        Topic(ACCESS_RECORDED, events.AccessRecorded),
        Topic(TEAMS_CAPACITY, events.TeamsCapacity),
        Topic(AGENCIES_REACHABILITY, events.AgencyReachability),
        Topic(FOLLOW_UPS_SCHEDULED, events.FollowUpScheduled),
        Topic(FOLLOW_UPS_CLOSED, events.FollowUpClosed),
        Topic(FOLLOW_UPS_OVERDUE, events.FollowUpOverdue),
    )
}


@dataclass(frozen=True)
class ServiceTopics:
    """One service's place in the topology (services/topology.py declares all four).

    `consumes` maps each topic the service reads to the name of its handler in `handlers` (a module,
    or a class the service builds one instance of); `produces` lists what its outbox publishes.
    """

    handlers: str
    consumes: Mapping[str, str]
    produces: frozenset[str]
    # Notify also writes one topic per agency, read by the agencies themselves.
    produces_agency_topics: bool = False


def agency_topic(agency_id: str) -> str:
    """The logical topic an agency follows for its own assignments."""
    return f"{AGENCY_TOPIC_PREFIX}{agency_id}{AGENCY_TOPIC_SUFFIX}"


def dlq_topic(group: str) -> str:
    """The dead-letter topic of a consumer group."""
    return f"dlq.{group}"


def model_for(type_: str) -> type[events.Payload]:
    """The payload model of an event type; KeyError for a type we do not know."""
    if type_ == AGENCY_TYPE:
        return events.AgencyAssignmentMessage
    return REGISTRY[type_].model


class UndecodableEvent(Exception):
    """A message that is not a valid event of a known type and version: it can never succeed."""


def decode(raw: bytes | None) -> tuple[Envelope, BaseModel]:
    """Parse a Kafka value into its envelope and validated payload, or raise UndecodableEvent."""
    if raw is None:
        raise UndecodableEvent("empty message value")
    try:
        envelope = Envelope.from_bytes(raw)
    except ValueError as exc:
        raise UndecodableEvent(f"not a CloudEvent: {exc}") from exc
    try:
        model = model_for(envelope.type)
    except KeyError as exc:
        raise UndecodableEvent(f"unknown event type {envelope.type!r}") from exc
    try:
        payload = model.model_validate(envelope.data)
    except ValueError as exc:
        raise UndecodableEvent(f"payload does not match {envelope.type}: {exc}") from exc
    return envelope, payload
