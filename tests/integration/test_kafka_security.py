"""The secured broker (SCRAM-SHA-512, StandardAuthorizer, `careroute kafka-acls`): each reads only its own."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from services import kafka_access, loader
from services.cli import app as cli
from services.jurisdiction import parse
from services.topology import TOPOLOGY
from shared.jurisdiction import Jurisdiction
from shared.kafka import TopicsRefused, confluent_config, ensure_topics, make_producer, security_options
from shared.kafka_acls import Grant, agency_username, all_grants
from shared.settings import SERVICE_NAMES, Settings
from shared.topics import ASSIGNMENTS_OFFERED, CALLS_RECEIVED, REGISTRY, agency_topic, dlq_topic
from tests.e2e.test_flow import CALL
from tools import infra
from tools.infra.ports import free_port, kafka_error, port_is_free
from tools.psap import PsapClient
from tools.system import System

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"
ADMIN = ("admin", secrets.token_urlsafe(24))
PASSWORDS = {s: secrets.token_urlsafe(24) for s in SERVICE_NAMES}
NAMESPACE = f"s{uuid.uuid4().hex[:8]}."
OWN, OTHER = "riverbend-crisis", "valley-behavioral"


def _port_pair() -> int:
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port
    raise AssertionError("no two free neighbouring ports")


def _jurisdiction() -> Jurisdiction:
    raw = yaml.safe_load(EXAMPLE.read_text())
    for agency in raw["agencies"]:
        agency["kafka"] = {"password": f"{agency['id']}-{secrets.token_urlsafe(12)}"}
    return parse(yaml.safe_dump(raw))


JURISDICTION = _jurisdiction()


def _secured_infra_up(stack: infra.InfraEndpoints, run_dir: Path, **env: str) -> Result:
    """`KAFKA_SECURED=true careroute infra up` in `run_dir` on free ports, the test PostgreSQL reused."""
    variables = {
        "CAREROUTE_RUN_DIR": str(run_dir),
        "CAREROUTE_KAFKA_PORT": str(_port_pair()),
        "DATABASE_URL": stack.database_url,
        "KAFKA_BROKER": "apache",
        "KAFKA_SECURED": "true",
        "KAFKA_SASL_USERNAME": ADMIN[0],
        "KAFKA_SASL_PASSWORD": ADMIN[1],
        **env,
    }
    return CliRunner().invoke(cli, ["infra", "up"], env=variables)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of this module's secured broker."""
    return tmp_path_factory.mktemp("secured-kafka")


@pytest.fixture(scope="module")
def secured(stack: infra.InfraEndpoints, run_dir: Path) -> Iterator[Settings]:
    """A secured Apache Kafka of this module, from `KAFKA_SECURED=true careroute infra up`, ACLs applied."""
    started = _secured_infra_up(stack, run_dir)
    endpoints = infra.read_endpoints(run_dir)
    if started.exit_code != 0 or endpoints is None:
        infra.down(run_dir)
        pytest.fail(f"the secured broker could not start: {started.output}", pytrace=False)
    assert "(SASL_PLAINTEXT)" in started.output and endpoints.kafka_security_protocol == "SASL_PLAINTEXT"
    admin = Settings.model_validate(
        {
            "database_url": stack.database_url,
            "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
            "kafka_broker": "apache",
            "kafka_namespace": NAMESPACE,
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": ADMIN[0],
            "kafka_sasl_password": ADMIN[1],
            "kafka_session_timeout_ms": 3000,
            "log_json": False,
            **{f"{s}_kafka_sasl_password": p for s, p in PASSWORDS.items()},
        }
    )
    kafka_access.apply(admin, JURISDICTION)
    yield admin
    infra.down(run_dir)


def _agency(settings: Settings, agency_id: str, **extra: Any) -> dict[str, Any]:
    """librdkafka configuration of an agency's own principal (and its own group, by default)."""
    agency = next(a for a in JURISDICTION.agencies if a.id == agency_id)
    assert agency.kafka is not None
    config = confluent_config(settings)
    config |= {
        "sasl.username": agency_username(agency_id, JURISDICTION),
        "sasl.password": agency.kafka.password,
        "group.id": settings.topic(f"agency.{agency_id}.reader-{uuid.uuid4().hex[:6]}"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    }
    return config


def _read(
    config: dict[str, Any], names: list[str], *, refusals: int = 0, timeout_s: float = 20
) -> tuple[dict[str, int], list[bytes]]:
    """Subscribe to `names` and poll until `refusals` topics are refused (0: until a record) or time is up.

    Returns each refused topic's error code ('' for the group) and the values read.
    """
    consumer = Consumer(config)
    consumer.subscribe(names)
    refused: dict[str, int] = {}
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not (len(refused) >= refusals and (refusals or values)):
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                values.append(message.value() or b"")
            else:
                refused[message.topic() or ""] = error.code()
    finally:
        consumer.close()
    return refused, values


def _produce_as_admin(settings: Settings, topic: str, value: bytes) -> None:
    producer = Producer(confluent_config(settings))
    producer.produce(topic, value=value, key=b"k")
    assert producer.flush(15) == 0


async def test_an_agency_reads_its_own_topic_and_is_refused_every_other(secured: Settings) -> None:
    """Tried: agency riverbend's principal (confluent-kafka) reads its own topic; then another agency's topic,
    each internal event and dead-letter topic, and its own topic in a group outside agency.<id>.*."""
    own, other = secured.topic(agency_topic(OWN)), secured.topic(agency_topic(OTHER))
    _produce_as_admin(secured, own, b"for riverbend")
    _produce_as_admin(secured, other, b"for valley")

    refused, values = _read(_agency(secured, OWN), [own])
    assert not refused and b"for riverbend" in values

    internal = [secured.topic(t) for t in REGISTRY] + [dlq_topic(secured.group(s)) for s in SERVICE_NAMES]
    refused, values = _read(_agency(secured, OWN), [other, *internal], refusals=len(internal) + 1)
    assert refused == dict.fromkeys([other, *internal], RdKafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert not values

    # Its metadata shows it no topic but its own.
    visible = AdminClient(_agency(secured, OWN)).list_topics(timeout=10).topics
    assert set(visible) == {own}

    outside = _agency(secured, OWN, **{"group.id": secured.topic("intake")})
    refused, values = _read(outside, [own], refusals=1)
    assert set(refused.values()) == {RdKafkaError.GROUP_AUTHORIZATION_FAILED} and not values


async def test_a_client_without_a_valid_login_reads_nothing(secured: Settings) -> None:
    """Tried: a plaintext client with no login, and a SASL client with agency riverbend's name and a wrong
    password, each asking for metadata and reading riverbend's topic."""
    plain = AIOKafkaConsumer(
        secured.topic(agency_topic(OWN)),
        bootstrap_servers=secured.kafka_bootstrap_servers,
        request_timeout_ms=3000,
    )
    with pytest.raises((KafkaConnectionError, KafkaError, asyncio.TimeoutError)):
        async with asyncio.timeout(15):
            await plain.start()
            await plain.getone()
    await plain.stop()

    wrong = _agency(secured, OWN, **{"sasl.password": "not-the-password-at-all"})
    with pytest.raises(KafkaException) as refused:
        AdminClient(wrong).list_topics(timeout=8)
    assert refused.value.args[0].code() in (
        RdKafkaError._AUTHENTICATION,
        RdKafkaError.SASL_AUTHENTICATION_FAILED,
        RdKafkaError._TRANSPORT,
    )


async def test_a_service_writes_only_its_own_topics(secured: Settings) -> None:
    """Tried: intake's principal publishing calls.received.v1 (its own) and assignments.offered.v1
    (matching's), and creating a topic; an agency principal publishing a forged offer on its topic."""
    as_intake = secured.model_copy(update={"kafka_sasl_username": "", "kafka_sasl_password": SecretStr("")})
    producer = make_producer(as_intake, "intake")
    await producer.start()
    try:
        await producer.send_and_wait(secured.topic(CALLS_RECEIVED), b"{}", key=b"k")
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(secured.topic(ASSIGNMENTS_OFFERED), b"{}", key=b"k")
    finally:
        await producer.stop()
    with pytest.raises(TopicsRefused, match="not-ours"):
        await ensure_topics(as_intake, [secured.topic("not-ours.v1")], service="intake")

    forger = Producer(_agency(secured, OWN))
    errors: list[int] = []
    forger.produce(
        secured.topic(agency_topic(OWN)),
        value=b"forged offer",
        on_delivery=lambda err, _msg: errors.append(err.code() if err else 0),
    )
    forger.flush(15)
    assert errors == [RdKafkaError.TOPIC_AUTHORIZATION_FAILED]


def _kafka_acls_command(settings: Settings, run_dir: Path, folder: Path) -> Result:
    """`careroute kafka-acls` on the jurisdiction written to a file, its agency passwords as env:NAME."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    # The broker's address and protocol come from the run folder `infra up` recorded.
    env = {
        "CAREROUTE_RUN_DIR": str(run_dir),
        "KAFKA_NAMESPACE": settings.kafka_namespace,
        "KAFKA_SASL_USERNAME": ADMIN[0],
        "KAFKA_SASL_PASSWORD": ADMIN[1],
        **{f"{s.upper()}_KAFKA_SASL_PASSWORD": p for s, p in PASSWORDS.items()},
    }
    for agency, declared in zip(raw["agencies"], JURISDICTION.agencies, strict=True):
        assert declared.kafka is not None
        name = f"KAFKA_PASSWORD_{agency['id'].upper().replace('-', '_')}"
        agency["kafka"] = {"password": f"env:{name}"}
        env[name] = declared.kafka.password
    path = folder / "jurisdiction.yaml"
    path.write_text(yaml.safe_dump(raw))
    return CliRunner().invoke(cli, ["kafka-acls", str(path)], env=env)


async def test_applying_the_acls_again_revokes_every_grant_the_file_does_not_make(
    secured: Settings, run_dir: Path, tmp_path: Path
) -> None:
    """Tried: `careroute kafka-acls FILE` (agency passwords env:NAME) run again after grants made by
    hand (riverbend reading valley's topic, an outsider reading calls.received.v1); then the file
    without valley, and valley reading its topic."""
    other = secured.topic(agency_topic(OTHER))
    strays = [
        Grant(f"User:{agency_username(OWN, JURISDICTION)}", "topic", "literal", other, "read"),
        Grant("User:outsider", "topic", "literal", secured.topic(CALLS_RECEIVED), "read"),
    ]
    admin = AdminClient(confluent_config(secured))
    for future in admin.create_acls([kafka_access.binding(g) for g in strays], request_timeout=15).values():
        future.result()

    again = _kafka_acls_command(secured, run_dir, tmp_path)
    assert again.exit_code == 0, again.output
    # Every grant the topology and the file make (63 today: a new topic adds its writer and readers).
    granted = len(all_grants(secured, JURISDICTION, TOPOLOGY))
    assert granted >= 63
    assert again.output.strip() == f"0 topics created, 8 SCRAM users set, {granted} ACLs granted, 2 revoked"
    assert kafka_access.apply(secured, JURISDICTION).revoked == 0

    refused, values = _read(_agency(secured, OWN), [other], refusals=1)
    assert refused == {other: RdKafkaError.TOPIC_AUTHORIZATION_FAILED} and not values

    without = JURISDICTION.model_copy(
        update={"agencies": [a for a in JURISDICTION.agencies if a.id != OTHER]}
    )
    try:
        assert kafka_access.apply(secured, without).revoked == 2  # valley's topic and its groups
        refused, values = _read(_agency(secured, OTHER), [other], refusals=1)
        # Its group went with its topic: whichever the broker checks first refuses it.
        authorization = {RdKafkaError.TOPIC_AUTHORIZATION_FAILED, RdKafkaError.GROUP_AUTHORIZATION_FAILED}
        assert refused and set(refused.values()) <= authorization and not values
    finally:
        kafka_access.apply(secured, JURISDICTION)


async def test_the_four_services_run_end_to_end_each_as_its_own_principal(
    secured: Settings, database_url: str
) -> None:
    """Tried: all four services in one process, each logged in as itself with no process-wide login, and one
    call posted to intake; the offer must reach the agency's topic, read there by the agency's principal."""
    # A namespace of its own, granted like the module's, so the other tests' records are not in it.
    fresh = {"database_url": SecretStr(database_url), "kafka_namespace": f"e{uuid.uuid4().hex[:8]}."}
    admin = secured.model_copy(update=fresh)
    kafka_access.apply(admin, JURISDICTION)
    await loader.load(admin, JURISDICTION)
    services = admin.model_copy(
        update={
            "kafka_sasl_username": "",
            "kafka_sasl_password": SecretStr(""),
            **{f"{s}_port": free_port() for s in SERVICE_NAMES},
        }
    )
    async with System.start(services, jurisdiction=None) as system:
        psap = next(p for p in JURISDICTION.psaps if p.id == "valley-ecc")
        async with httpx.AsyncClient(timeout=15) as http:
            body = {"external_id": f"CAD-{uuid.uuid4().hex[:8]}", **CALL}
            answer = await PsapClient(http, system.url("intake"), psap).call(body)
        assert answer.status_code == 202, answer.text
        call_id = answer.json()["call_id"]

        reader = Consumer(_agency(services, OWN))
        reader.subscribe([services.topic(agency_topic(OWN))])
        try:
            offers = await asyncio.to_thread(_offers_for, reader, call_id)
        finally:
            reader.close()
        assert offers and offers[0]["data"]["kind"] == "offered"


def _offers_for(consumer: Consumer, call_id: str, timeout_s: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        event = json.loads(message.value() or b"{}")
        if event.get("subject") == call_id:
            return [event]
    return []


async def test_the_local_broker_serves_sasl_ssl_with_a_ca_of_its_own(
    stack: infra.InfraEndpoints, tmp_path: Path
) -> None:
    """Tried: `KAFKA_SECURED=true KAFKA_SECURITY_PROTOCOL=SASL_SSL careroute infra up`; a record written
    by aiokafka and read by librdkafka, both trusting the recorded CA file; a client trusting only the
    system's CAs."""
    try:
        started = _secured_infra_up(stack, tmp_path, KAFKA_SECURITY_PROTOCOL="SASL_SSL")
        endpoints = infra.read_endpoints(tmp_path)
        assert started.exit_code == 0 and endpoints is not None, started.output
        assert endpoints.kafka_security_protocol == "SASL_SSL" and endpoints.kafka_ssl_cafile.endswith(
            "ca.pem"
        )
        admin = Settings(
            kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username=ADMIN[0],
            kafka_sasl_password=SecretStr(ADMIN[1]),
            kafka_ssl_cafile=Path(endpoints.kafka_ssl_cafile),
        )
        await ensure_topics(admin, ["over-tls"], partitions=1)
        producer = make_producer(admin)
        await producer.start()
        try:
            await producer.send_and_wait("over-tls", b"sealed", key=b"k")
        finally:
            await producer.stop()
        config = {**confluent_config(admin), "group.id": "tls-reader", "auto.offset.reset": "earliest"}
        refused, values = _read(config, ["over-tls"], timeout_s=20)
        assert not refused and values == [b"sealed"]

        untrusting = admin.model_copy(update={"kafka_ssl_cafile": None})
        error = kafka_error(endpoints.kafka_bootstrap_servers, 5.0, security_options(untrusting))
        assert error is not None
    finally:
        infra.down(tmp_path)
