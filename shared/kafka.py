"""Kafka helpers: how every client connects and authenticates, the producer, topic creation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from shared.settings import Settings

log = structlog.get_logger(__name__)


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    # Verifies the broker's certificate and host name against the CA file (the system's when unset).
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(cafile=cafile)
    if settings.kafka_ssl_certfile is not None:
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
    return context


def security_options(settings: Settings, service: str | None = None) -> dict[str, Any]:
    """The keyword arguments with which an aiokafka client authenticates as `service` (None: the process).

    Empty when security is off (PLAINTEXT), so an unsecured client is built exactly as before.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        username, password = settings.kafka_login(service)
        if not username or not password.get_secret_value():
            who = f"{service.upper()}_KAFKA_SASL_PASSWORD or " if service else ""
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs a principal: set {who}"
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": username,
            "sasl_plain_password": password.get_secret_value(),
        }
    if protocol.endswith("SSL"):
        options["ssl_context"] = _ssl_context(settings)
    return options


def client_options(settings: Settings, service: str | None = None) -> dict[str, Any]:
    """The bootstrap servers and security keyword arguments every aiokafka client of `service` takes."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **security_options(settings, service)}


def confluent_config(settings: Settings, service: str | None = None) -> dict[str, str | int | float | bool]:
    """The same connection and principal as librdkafka (confluent-kafka) configuration."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        username, password = settings.kafka_login(service)
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": username,
            "sasl.password": password.get_secret_value(),
        }
    if settings.kafka_security_protocol.endswith("SSL"):
        for name, key in (("cafile", "ssl.ca.location"), ("certfile", "ssl.certificate.location")):
            path = getattr(settings, f"kafka_ssl_{name}")
            if path is not None:
                config[key] = str(path)
        if settings.kafka_ssl_keyfile is not None:
            config["ssl.key.location"] = str(settings.kafka_ssl_keyfile)
    return config


class Publisher(Protocol):
    """What the outbox relay and the dead-letter path need from a producer."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]: ...


def make_producer(settings: Settings, service: str | None = None) -> AIOKafkaProducer:
    """A producer of `service` (None: the process) that waits for all in-sync replicas (acks=all).

    Idempotence and transactions are off on purpose (docs/design.md, Delivery): Tansu lacks them and
    they would not cover the Postgres write; consumers' inboxes make delivery exact instead.
    """
    return AIOKafkaProducer(
        **client_options(settings, service),
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=15000,
        max_request_size=2 * 1024 * 1024,
    )


class TopicsRefused(RuntimeError):
    """The broker would not create some topics (on a secured broker: no ACL lets this principal)."""


def _refused(response: Any) -> None:
    # aiokafka hands back the broker's per-topic error codes without raising; a secured broker's
    # refusal would otherwise pass for success and leave a consumer waiting on a missing topic.
    failed = {
        str(entry[0]): int(entry[1])
        for entry in getattr(response, "topic_errors", [])
        if int(entry[1]) not in (0, TopicAlreadyExistsError.errno)
    }
    if failed:
        raise TopicsRefused(
            f"the broker refused to create {sorted(failed)} (error codes {sorted(set(failed.values()))}; "
            "29 is TOPIC_AUTHORIZATION_FAILED): the administrator creates them, `careroute kafka-acls`"
        )


async def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    *,
    partitions: int = 3,
    service: str | None = None,
    timeout_s: float = 30.0,
    grants_wait_s: float = 10.0,
) -> None:
    """Create the topics that do not exist yet (replication factor 1 on the local broker).

    On a secured broker a principal sees only the topics it may describe, so `service` should
    name only topics its ACLs cover (the administrator creates the rest, `careroute kafka-acls`).
    A refusal is retried for `grants_wait_s`: grants just made reach the broker's authorizer a
    moment after the call that made them returns, and until then the topics look missing.
    """
    wanted = sorted(set(names))
    admin = AIOKafkaAdminClient(**client_options(settings, service), request_timeout_ms=15000)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    grants_by = asyncio.get_running_loop().time() + grants_wait_s
    try:
        while True:
            try:
                await _create_missing(admin, settings, wanted, partitions)
                return
            except TopicsRefused:
                if asyncio.get_running_loop().time() > grants_by:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _create_missing(
    admin: AIOKafkaAdminClient, settings: Settings, wanted: list[str], partitions: int
) -> None:
    """One attempt: create those of `wanted` the broker does not list; TopicsRefused if it refuses."""
    existing = set(await admin.list_topics())
    missing = [n for n in wanted if n not in existing]
    if not missing:
        return
    try:
        response = await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
        )
        if settings.kafka_secured_protocol():
            _refused(response)
    except TopicAlreadyExistsError:
        pass  # another process created them between our list and create
    except KafkaError as exc:
        # Some brokers report per-topic errors as one failure; check what exists now.
        still = [n for n in missing if n not in set(await admin.list_topics())]
        if still:
            raise RuntimeError(f"could not create topics {still}: {exc!r}") from exc
    log.info("topics created", topics=missing)
