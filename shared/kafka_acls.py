"""Broker principals and their ACLs: each service and each agency may use only its own topics and group.

What each service reads and writes is the topology's (services/topology.py), passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from shared import topics
from shared.jurisdiction import Jurisdiction
from shared.settings import SERVICE_NAMES, Settings
from shared.topics import REGISTRY, ServiceTopics, agency_topic, dlq_topic

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "describe"]


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: `principal` may do `operation` on a topic or group named (or prefixed) `name`."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation


def service_topics(settings: Settings, service: str, access: ServiceTopics) -> list[str]:
    """The physical topics one service's principal reads or writes, its dead-letter topic included."""
    names = {settings.topic(t) for t in access.consumes.keys() | access.produces}
    return sorted(names | {dlq_topic(settings.group(service))})


def agency_username(agency_id: str, jurisdiction: Jurisdiction | None = None) -> str:
    """The principal name of an agency: its `kafka.username`, else agency-<id>."""
    if jurisdiction is not None:
        agency = next((a for a in jurisdiction.agencies if a.id == agency_id), None)
        if agency is not None and agency.kafka is not None and agency.kafka.username:
            return agency.kafka.username
    return f"agency-{agency_id}"


def service_grants(settings: Settings, service: str, access: ServiceTopics) -> list[Grant]:
    """A service reads what it consumes in its own group, writes what it produces and its dead letters."""
    user = f"User:{settings.kafka_service_username(service)}"
    grants = [Grant(user, "topic", "literal", settings.topic(t), "read") for t in access.consumes]
    grants += [Grant(user, "topic", "literal", settings.topic(t), "write") for t in access.produces]
    grants.append(Grant(user, "topic", "literal", dlq_topic(settings.group(service)), "write"))
    grants.append(Grant(user, "group", "literal", settings.group(service), "read"))
    if access.produces_agency_topics:
        grants.append(Grant(user, "topic", "prefixed", settings.topic(topics.AGENCY_TOPIC_PREFIX), "write"))
        # Whether an agency's consumer is connected is one of its signs of life.
        grants.append(
            Grant(user, "group", "prefixed", settings.topic(topics.AGENCY_TOPIC_PREFIX), "describe")
        )
    return sorted(grants)


def agency_grants(settings: Settings, agency_id: str, username: str) -> list[Grant]:
    """An agency may read its own topic, in consumer groups named agency.<id>.<anything>."""
    user = f"User:{username}"
    return [
        Grant(user, "topic", "literal", settings.topic(agency_topic(agency_id)), "read"),
        Grant(user, "group", "prefixed", settings.topic(f"{topics.AGENCY_TOPIC_PREFIX}{agency_id}."), "read"),
    ]


def all_grants(
    settings: Settings, jurisdiction: Jurisdiction, topology: Mapping[str, ServiceTopics]
) -> list[Grant]:
    """Every grant of the topology's services and of every agency of the jurisdiction."""
    grants = [g for s, access in topology.items() for g in service_grants(settings, s, access)]
    for agency in jurisdiction.agencies:
        grants += agency_grants(settings, agency.id, agency_username(agency.id, jurisdiction))
    return sorted(grants)


def all_topics(settings: Settings, jurisdiction: Jurisdiction) -> dict[str, int]:
    """Every topic the deployment uses and its partitions: the registry, dead letters, agency topics."""
    wanted = {settings.topic(t): settings.kafka_partitions for t in REGISTRY}
    wanted |= {dlq_topic(settings.group(s)): settings.kafka_partitions for s in SERVICE_NAMES}
    wanted |= {settings.topic(agency_topic(a.id)): a.partitions for a in jurisdiction.agencies}
    return wanted


def logins(settings: Settings, jurisdiction: Jurisdiction) -> dict[str, str]:
    """The SCRAM users to create: every service given its own password, every agency with a `kafka` block."""
    users: dict[str, str] = {}
    for service in SERVICE_NAMES:
        password = getattr(settings, f"{service}_kafka_sasl_password")
        if password is not None:
            users[settings.kafka_service_username(service)] = password.get_secret_value()
    for agency in jurisdiction.agencies:
        if agency.kafka is not None:
            users[agency_username(agency.id, jurisdiction)] = agency.kafka.password
    return users


def manages(settings: Settings, resource: Resource, name: str) -> bool:
    """Whether a topic or group (or a prefix) is careroute's in this namespace: its ACLs are ours."""
    agencies = settings.topic(topics.AGENCY_TOPIC_PREFIX)
    if name.startswith(agencies):
        return True
    if resource == "group":
        return name in {settings.group(s) for s in SERVICE_NAMES}
    ours = {settings.topic(t) for t in REGISTRY} | {dlq_topic(settings.group(s)) for s in SERVICE_NAMES}
    return name in ours


def principals(grants: Iterable[Grant]) -> list[str]:
    """The distinct principals of some grants."""
    return sorted({g.principal for g in grants})
