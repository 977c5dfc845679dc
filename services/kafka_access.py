"""A jurisdiction's broker access applied as the administrator: topics, SCRAM users, ACLs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import AclBinding, AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from confluent_kafka.cimpl import NewTopic

from services.topology import TOPOLOGY
from shared.jurisdiction import Jurisdiction
from shared.kafka import confluent_config
from shared.kafka_acls import Grant, Resource, all_grants, all_topics, logins, manages, principals
from shared.settings import Settings

_RESOURCE: dict[Resource, ResourceType] = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
_RESOURCE_NAME = {kind: name for name, kind in _RESOURCE.items()}
_PATTERN = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
_OPERATION = {"read": AclOperation.READ, "write": AclOperation.WRITE, "describe": AclOperation.DESCRIBE}
_MECHANISM = {"SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512, "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256}
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class Applied:
    """What one run created or changed."""

    topics_created: list[str]
    users: list[str]
    grants: int
    revoked: int


def binding(grant: Grant) -> AclBinding:
    """The ALLOW ACL of a grant, from any host."""
    return AclBinding(
        _RESOURCE[grant.resource],
        grant.name,
        _PATTERN[grant.pattern],
        grant.principal,
        "*",
        _OPERATION[grant.operation],
        AclPermissionType.ALLOW,
    )


def _results(futures: Mapping[Any, Future[Any]]) -> None:
    for future in futures.values():
        future.result()


def _create_topics(admin: AdminClient, wanted: dict[str, int], timeout_s: float) -> list[str]:
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = {name: n for name, n in wanted.items() if name not in existing}
    if not missing:
        return []
    # Replication factor 1 like ensure_topics: the local broker and docker-compose have one node.
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in missing.items()]
    for future in admin.create_topics(new, request_timeout=timeout_s).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(missing)


def _ours(settings: Settings, acl: AclBinding) -> bool:
    resource = _RESOURCE_NAME.get(ResourceType(acl.restype))
    return resource is not None and manages(settings, resource, acl.name)


def _revoke_stale(admin: AdminClient, settings: Settings, wanted: list[AclBinding], timeout_s: float) -> int:
    """Delete every ALLOW ACL on careroute's topics and groups that the jurisdiction does not grant.

    Whoever holds it: a hand-made grant, or one of an agency dropped from the file. DENY ACLs an
    operator added are left alone (removing one could only widen access).
    """
    keep = set(wanted)
    # None matches any name, principal and host (the stubs say str).
    query = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ALLOW,
    )
    held = admin.describe_acls(query, request_timeout=timeout_s).result()
    stale = [
        AclBindingFilter(
            acl.restype,
            acl.name,
            acl.resource_pattern_type,
            acl.principal,
            acl.host,
            acl.operation,
            acl.permission_type,
        )
        for acl in held
        if acl not in keep and _ours(settings, acl)
    ]
    if stale:
        _results(admin.delete_acls(stale, request_timeout=timeout_s))
    return len(stale)


def _await_users(admin: AdminClient, names: list[str], timeout_s: float) -> None:
    """Wait until the broker knows every new credential, so a login right after this run succeeds."""
    deadline = time.monotonic() + timeout_s
    while True:
        # Given names, the answer is one future per user.
        futures = admin.describe_user_scram_credentials(names, request_timeout=timeout_s)
        try:
            _results(cast(dict[str, Future[Any]], futures))
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def apply(settings: Settings, jurisdiction: Jurisdiction, *, timeout_s: float = 30.0) -> Applied:
    """Create the deployment's topics, its SCRAM users and exactly its ACLs; running it again changes nothing.

    `settings` must log in as a super user of the broker (e.g. KAFKA_SASL_USERNAME=admin).
    """
    admin = AdminClient(dict(confluent_config(settings)))
    created = _create_topics(admin, all_topics(settings, jurisdiction), timeout_s)
    users = logins(settings, jurisdiction)
    if users:
        mechanism = _MECHANISM[settings.kafka_sasl_mechanism]
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                name, ScramCredentialInfo(mechanism, SCRAM_ITERATIONS), password.encode("utf-8")
            )
            for name, password in users.items()
        ]
        _results(admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s))
        _await_users(admin, sorted(users), timeout_s)
    grants = all_grants(settings, jurisdiction, TOPOLOGY)
    bindings = [binding(g) for g in grants]
    _results(admin.create_acls(bindings, request_timeout=timeout_s))
    revoked = _revoke_stale(admin, settings, bindings, timeout_s)
    return Applied(created, sorted(users), len(bindings), revoked)


def describe(settings: Settings, jurisdiction: Jurisdiction) -> list[str]:
    """One line per grant, for `careroute kafka-acls --check`."""
    grants = all_grants(settings, jurisdiction, TOPOLOGY)
    lines = []
    for principal in principals(grants):
        for g in (g for g in grants if g.principal == principal):
            star = "*" if g.pattern == "prefixed" else ""
            lines.append(f"{principal:<28} {g.operation:<6} {g.resource} {g.name}{star}")
    return lines
