"""Decoding: a valid event round-trips; anything else is undecodable with a reason."""

import json

import pytest

from shared import events, topics
from shared.envelope import Envelope, new_event

CANCEL = events.CallCancelled(call_id="c-1", psap_id="p", reason="caller hung up")


def test_an_event_round_trips_through_bytes():
    event = new_event(topics.CALLS_CANCELLED, "intake", "c-1", CANCEL)
    envelope, payload = topics.decode(event.to_bytes())
    assert envelope == event and payload == CANCEL
    assert envelope.correlationid == str(event.id) and envelope.source == "/services/intake"


def test_a_caused_event_keeps_the_correlation_and_names_its_cause():
    first = new_event(topics.CALLS_CANCELLED, "intake", "c-1", CANCEL)
    second = new_event(
        topics.CALLS_UNASSIGNED,
        "matching",
        "c-1",
        events.CallUnassigned(call_id="c-1", reason_code="all_busy"),
        cause=first,
    )
    assert second.correlationid == first.correlationid and second.causationid == str(first.id)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (None, "empty"),
        (b"\xff\xfe not json", "not a CloudEvent"),
        (json.dumps({"specversion": "1.0"}).encode(), "not a CloudEvent"),
        (
            Envelope(
                type="calls.exploded.v9", source="/x", subject="c", data={}, correlationid="c"
            ).to_bytes(),
            "unknown event type",
        ),
        (
            Envelope(
                type=topics.CALLS_CANCELLED, source="/x", subject="c", data={"call_id": 5}, correlationid="c"
            ).to_bytes(),
            "payload does not match",
        ),
    ],
)
def test_undecodable_messages_say_why(raw, why):
    with pytest.raises(topics.UndecodableEvent, match=why):
        topics.decode(raw)


def test_every_topic_follows_the_naming_rule():
    for name in topics.REGISTRY:
        aggregate, _, version = name.split(".")
        aggregates = {"calls", "assignments", "notifications", "access", "teams", "agencies", "follow_ups"}
        assert aggregate in aggregates and version == "v1"
    assert topics.agency_topic("riverbend-crisis") == "agency.riverbend-crisis.assignments.v1"
