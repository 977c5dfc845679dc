"""Fan-out of one agency message to its channels, and the record of every attempt to reach it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
from prometheus_client import Counter

from services.notify import repository
from shared import events, topics
from shared.envelope import Envelope, new_event
from shared.outbox import enqueue, enqueue_many, row_values

SERVICE = "notify"
# A re-page's number travels with the outbox row (and as a Kafka header) to its delivery record.
PAGE_HEADER = "careroute-page"

NOTIFICATIONS = Counter(
    "careroute_notifications_total",
    "Attempts to reach an agency, by channel and outcome (failed ones are alerts)",
    ["channel", "outcome"],
)


@dataclass(frozen=True)
class Notice:
    """One message to one agency about one assignment, as the delivery record names it."""

    notification_id: str
    assignment_id: str
    call_id: str
    agency_id: str
    kind: str
    page: int | None
    correlation: str
    channel: str = "kafka"
    attempt: int = 1

    @classmethod
    def from_row(cls, row: Mapping[str, Any], channel: str, correlation: str, attempt: int = 1) -> Notice:
        """The notice of a feed entry."""
        return cls(
            notification_id=str(row["notification_id"]),
            assignment_id=str(row["assignment_id"]),
            call_id=str(row["call_id"]),
            agency_id=row["agency_id"],
            kind=row["kind"],
            page=row["page"],
            correlation=correlation,
            channel=channel,
            attempt=attempt,
        )

    @classmethod
    def of_webhook(cls, message: repository.WebhookMessage, correlation: str) -> Notice:
        """The notice of a queued webhook message, at its attempt."""
        return cls(
            notification_id=str(message.notification_id),
            assignment_id=str(message.assignment_id),
            call_id=str(message.call_id),
            agency_id=message.agency_id,
            kind=message.kind,
            page=message.page,
            correlation=correlation,
            channel="webhook",
            attempt=message.attempts,
        )


def _fields(notice: Notice) -> dict[str, Any]:
    """What the delivery record and its event both say of a notice."""
    return {
        "notification_id": notice.notification_id,
        "assignment_id": notice.assignment_id,
        "call_id": notice.call_id,
        "agency_id": notice.agency_id,
        "channel": notice.channel,
        "kind": notice.kind,
        "attempt": notice.attempt,
        "page": notice.page,
    }


# The delivered event of an agency-topic message has the id its notification id gives: a relay
# pass that fails after publishing it and is made again publishes it again with the same id.
DELIVERED_IDS = uuid.UUID("5b0e2f55-8d0c-4c49-9a1e-2f1f6a3c7d21")


def delivered_id(channel: str, notification_id: str) -> uuid.UUID:
    """The id of the delivered event of one message on one channel, the same at every repeat."""
    return uuid.uuid5(DELIVERED_IDS, f"{channel}:{notification_id}")


def _delivered(notices: list[Notice]) -> list[Envelope]:
    """Each notice's `notifications.delivered.v1`."""
    return [
        new_event(
            topics.NOTIFICATIONS_DELIVERED,
            SERVICE,
            n.call_id,
            events.NotificationDelivered(**_fields(n)),
            correlationid=n.correlation,
            event_id=delivered_id(n.channel, n.notification_id),
        )
        for n in notices
    ]


async def _keep_delivered(conn: asyncpg.Connection, notices: list[Notice]) -> list[Envelope]:
    """Keep many successful deliveries in one statement; their events, to be published."""
    await repository.record_deliveries(
        conn, [{**_fields(n), "outcome": "delivered", "error": None} for n in notices]
    )
    for n in notices:
        NOTIFICATIONS.labels(channel=n.channel, outcome="delivered").inc()
    return _delivered(notices)


async def record(
    conn: asyncpg.Connection, notice: Notice, error: str | None = None, *, will_retry: bool = False
) -> None:
    """Keep one attempt and publish it: `notifications.delivered.v1` or `notifications.failed.v1`."""
    if error is None:
        await enqueue_many(conn, SERVICE, await _keep_delivered(conn, [notice]))
        return
    outcome = "retrying" if will_retry else "failed"
    fields = _fields(notice)
    await repository.record_deliveries(conn, [{**fields, "outcome": outcome, "error": error}])
    payload = events.NotificationFailed(**fields, error=error[:500], will_retry=will_retry)
    event = new_event(
        topics.NOTIFICATIONS_FAILED, SERVICE, notice.call_id, payload, correlationid=notice.correlation
    )
    await enqueue(conn, SERVICE, event)
    NOTIFICATIONS.labels(channel=notice.channel, outcome=outcome).inc()


async def to_agency(
    conn: asyncpg.Connection,
    agency: repository.AgencyRow | None,
    message: events.AgencyAssignmentMessage,
    feed_data: dict[str, Any],
    *,
    correlation: str,
    cause: Envelope | None = None,
    page: int | None = None,
) -> None:
    """Send one offer, update, withdrawal or expiry through every channel of the agency (its row as
    read under its lock, None if unknown: nothing is sent), in this transaction.

    The agency's topic gets it through the outbox (published with acks=all after commit), the
    webhook queue gets the same CloudEvent for the sender, and the SSE feed gets the agency's view.
    """
    if agency is None:
        return
    agency_id = agency.id
    event = new_event(
        topics.AGENCY_TYPE, SERVICE, message.call_id, message, cause=cause, correlationid=correlation
    )
    notice = Notice(
        notification_id=str(event.id),
        assignment_id=message.assignment_id,
        call_id=message.call_id,
        agency_id=agency_id,
        kind=message.kind,
        page=page,
        correlation=correlation,
    )
    # The delivery to the agency's topic is recorded by `on_published` once the broker has acknowledged it.
    page_header = {PAGE_HEADER: str(page)} if page is not None else None
    await repository.append_feed(
        conn,
        agency_id,
        message.kind,
        message.assignment_id,
        message.call_id,
        page,
        {**feed_data, "kind": message.kind, "page": page, "notification_id": notice.notification_id},
        row_values(event, topics.agency_topic(agency_id), page_header)
        if "kafka" in agency.channels
        else None,
    )
    if "webhook" in agency.channels and agency.webhook_url:
        hook = replace(notice, channel="webhook")
        if agency.webhook_disabled_at is not None:
            await record(conn, hook, "endpoint disabled after it answered 410")
        else:
            await repository.queue_webhook(
                conn,
                {
                    "notification_id": hook.notification_id,
                    "agency_id": agency_id,
                    "call_id": message.call_id,
                    "assignment_id": message.assignment_id,
                    "kind": message.kind,
                    "page": page,
                    "body": event.to_bytes(),
                },
            )


async def on_published(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> list[Envelope]:
    """Record each agency-topic message as delivered, in the relay's transaction after the broker's
    ack; the `notifications.delivered.v1` events the relay publishes in the same pass."""
    notices: list[Notice] = []
    for row in rows:
        topic: str = row["topic"]
        if not (topic.startswith(topics.AGENCY_TOPIC_PREFIX) and topic.endswith(topics.AGENCY_TOPIC_SUFFIX)):
            continue
        event = Envelope.from_bytes(bytes(row["value"]))
        message = events.AgencyAssignmentMessage.model_validate(event.data)
        page = row["headers"].get(PAGE_HEADER)
        notice = Notice(
            notification_id=str(event.id),
            assignment_id=message.assignment_id,
            call_id=message.call_id,
            agency_id=topic.removeprefix(topics.AGENCY_TOPIC_PREFIX).removesuffix(topics.AGENCY_TOPIC_SUFFIX),
            kind=message.kind,
            page=int(page) if page is not None else None,
            correlation=event.correlationid,
        )
        notices.append(notice)
    return await _keep_delivered(conn, notices) if notices else []


async def to_feed(conn: asyncpg.Connection, agency_id: str, kind: str, view: dict[str, Any]) -> None:
    """Tell the agency's SSE stream about an update of its own assignment (an answer or a status)."""
    await repository.append_feed(
        conn, agency_id, kind, view["assignment_id"], view["call_id"], None, {**view, "kind": kind}
    )
