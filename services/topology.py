"""Who consumes which topic with which handler, and who produces what: the system's one map.

Each service's composition root binds its consumer's handlers through `handlers()`; the runtime
creates and checks each service's topics from it, `careroute kafka-acls` grants from it, and
docs/topics.md is generated from it (`python -m services.topology > docs/topics.md`).
"""

from __future__ import annotations

import sys
from functools import partial, update_wrapper

from shared import topics as t
from shared.consumer import Handler
from shared.topics import REGISTRY, ServiceTopics

TOPOLOGY: dict[str, ServiceTopics] = {
    "intake": ServiceTopics(
        handlers="services.intake.handlers",
        consumes={
            t.ASSIGNMENTS_OFFERED: "on_assignment_event",
            t.ASSIGNMENTS_EXPIRED: "on_assignment_event",
            t.ASSIGNMENTS_WITHDRAWN: "on_assignment_event",
            t.ASSIGNMENTS_RESPONDED: "on_assignment_event",
            t.ASSIGNMENTS_STATUS_CHANGED: "on_assignment_event",
            t.ASSIGNMENTS_TIMER_MISSED: "on_timer_missed",
            t.CALLS_UNASSIGNED: "on_assignment_event",
            t.TEAMS_CAPACITY: "on_capacity",
            t.FOLLOW_UPS_SCHEDULED: "on_follow_up_event",
            t.FOLLOW_UPS_CLOSED: "on_follow_up_event",
            t.FOLLOW_UPS_OVERDUE: "on_follow_up_event",
        },
        produces=frozenset(
            {t.CALLS_RECEIVED, t.CALLS_UPDATED, t.CALLS_CANCELLED, t.CALLS_CALLBACK_FAILED, t.ACCESS_RECORDED}
        ),
    ),
    "matching": ServiceTopics(
        handlers="services.matching.handlers",
        consumes={
            t.CALLS_RECEIVED: "on_call_received",
            t.CALLS_UPDATED: "on_call_updated",
            t.CALLS_CANCELLED: "on_call_cancelled",
            t.ASSIGNMENTS_RESPONDED: "on_responded",
            t.ASSIGNMENTS_EXPIRED: "on_expired",
            t.ASSIGNMENTS_STATUS_CHANGED: "on_status_changed",
            t.AGENCIES_REACHABILITY: "on_reachability",
        },
        produces=frozenset(
            {
                t.ASSIGNMENTS_OFFERED,
                t.ASSIGNMENTS_UPDATED,
                t.ASSIGNMENTS_WITHDRAWN,
                t.CALLS_UNASSIGNED,
                t.TEAMS_CAPACITY,
                t.ACCESS_RECORDED,
            }
        ),
    ),
    "notify": ServiceTopics(
        handlers="services.notify.handlers",
        consumes={
            t.ASSIGNMENTS_OFFERED: "on_offered",
            t.ASSIGNMENTS_UPDATED: "on_updated",
            t.ASSIGNMENTS_WITHDRAWN: "on_withdrawn",
        },
        produces=frozenset(
            {
                t.ASSIGNMENTS_EXPIRED,
                t.ASSIGNMENTS_RESPONDED,
                t.ASSIGNMENTS_STATUS_CHANGED,
                t.ASSIGNMENTS_TIMER_MISSED,
                t.NOTIFICATIONS_DELIVERED,
                t.NOTIFICATIONS_FAILED,
                t.AGENCIES_REACHABILITY,
                t.FOLLOW_UPS_SCHEDULED,
                t.FOLLOW_UPS_CLOSED,
                t.FOLLOW_UPS_OVERDUE,
                t.ACCESS_RECORDED,
            }
        ),
        produces_agency_topics=True,
    ),
    "audit": ServiceTopics(
        handlers="services.audit.handlers",
        # Every registered topic goes into the trail; the consumer applies a batch at a time
        # (`on_events`), and `on_any_event` is the same step for one record.
        consumes=dict.fromkeys(REGISTRY, "on_any_event"),
        produces=frozenset({t.ACCESS_RECORDED}),
    ),
}

# Topics read outside the four services. Every consumer also writes its group's dead-letter
# topic, and notify writes one topic per agency of the jurisdiction.
AGENCY_TOPICS = t.agency_topic("<id>")
DEAD_LETTER_TOPICS = t.dlq_topic("<group>")
EXTERNAL_CONSUMERS: dict[str, str] = {
    AGENCY_TOPICS: "the agency itself, as its own broker principal",
    DEAD_LETTER_TOPICS: "operators' tools (`careroute dead-letters` reads the service's table instead)",
}


def handlers(service: str, source: object, *state: object) -> dict[str, Handler]:
    """`service`'s consumer table: each topic it consumes with the handler of that name in `source`,
    given `state` first (what the service's handlers keep between events, if anything)."""
    named = TOPOLOGY[service].consumes.items()
    if not state:
        return {topic: getattr(source, name) for topic, name in named}
    # Each bound handler keeps its function's name, so logs and checks still say which one it is.
    return {
        topic: update_wrapper(partial(getattr(source, name), *state), getattr(source, name))
        for topic, name in named
    }


def consumers(topic: str) -> dict[str, str]:
    """The services that consume `topic`, each with its handler's name."""
    return {s: node.consumes[topic] for s, node in TOPOLOGY.items() if topic in node.consumes}


def producers(topic: str) -> list[str]:
    """The services whose outbox publishes `topic`."""
    return [s for s, node in TOPOLOGY.items() if topic in node.produces]


def _codes(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def table() -> str:
    """docs/topics.md: one row per topic, with its payload, its producers and its consumers."""
    lines = [
        "# Topics",
        "",
        "Generated from `services/topology.py` by `python -m services.topology > docs/topics.md`;",
        "`tests/unit/test_topology.py` fails when this file and the topology differ.",
        "",
        "| topic | payload | produced by | consumed by (handler) |",
        "|-------|---------|-------------|-----------------------|",
    ]
    for name, topic in REGISTRY.items():
        read = ", ".join(f"`{s}` ({handler})" for s, handler in consumers(name).items())
        lines.append(f"| `{name}` | `{topic.model.__name__}` | {_codes(producers(name))} | {read} |")
    agency_writers = [s for s, node in TOPOLOGY.items() if node.produces_agency_topics]
    lines.append(
        f"| `{AGENCY_TOPICS}` | `{t.model_for(t.AGENCY_TYPE).__name__}` | {_codes(agency_writers)}"
        f" | outside: {EXTERNAL_CONSUMERS[AGENCY_TOPICS]} |"
    )
    lines.append(
        f"| `{DEAD_LETTER_TOPICS}` | the record it could not process | every service, its own group's"
        f" | outside: {EXTERNAL_CONSUMERS[DEAD_LETTER_TOPICS]} |"
    )
    lines += ["", "Each service's handlers are named in:", ""]
    lines += [f"- `{s}`: `{node.handlers}`" for s, node in TOPOLOGY.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
