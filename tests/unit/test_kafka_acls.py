"""Kafka security without a broker: client options, the grants, the secured broker's properties."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.jurisdiction import parse
from services.topology import TOPOLOGY
from shared.kafka import client_options, confluent_config, security_options
from shared.kafka_acls import agency_grants, all_grants, logins, manages, service_grants
from shared.settings import SERVICE_NAMES, Settings
from tools.infra.kafka_apache import server_properties

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "lane-valley.yaml"


def _secured(**extra: object) -> Settings:
    return Settings.model_validate(
        {
            "kafka_bootstrap_servers": "127.0.0.1:1",
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": "operator",
            "kafka_sasl_password": "operator-secret-12345",
            **extra,
        }
    )


def test_an_unsecured_client_is_built_exactly_as_before() -> None:
    """Tried: the default settings; the client gets the bootstrap servers and nothing else."""
    assert client_options(Settings(kafka_bootstrap_servers="h:1")) == {"bootstrap_servers": "h:1"}
    assert security_options(Settings(), "intake") == {}


def test_each_service_logs_in_as_itself_when_it_has_its_own_password() -> None:
    """Tried: a process login plus intake's own password; intake uses its own, matching the process's."""
    s = _secured(intake_kafka_sasl_password="intake-secret-12345")
    intake = security_options(s, "intake")
    assert (
        intake["sasl_plain_username"] == "intake" and intake["sasl_plain_password"] == "intake-secret-12345"
    )
    assert intake["security_protocol"] == "SASL_PLAINTEXT" and intake["sasl_mechanism"] == "SCRAM-SHA-512"
    assert security_options(s, "matching")["sasl_plain_username"] == "operator"
    assert confluent_config(s, "intake")["sasl.username"] == "intake"


def test_a_secured_client_without_a_login_is_refused_before_it_connects() -> None:
    """Tried: SASL_PLAINTEXT with no username or password; building notify's client raises with the fix."""
    s = Settings(kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="NOTIFY_KAFKA_SASL_PASSWORD"):
        security_options(s, "notify")


def test_a_child_process_gets_the_same_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tried: process_env of a secured parent read back by Settings() in a child."""
    parent = _secured(audit_kafka_sasl_password="audit-secret-123456")
    for name, value in parent.process_env().items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.kafka_login("audit") == parent.kafka_login("audit")
    assert child.kafka_login(None) == parent.kafka_login(None)


def test_only_matching_may_offer_and_only_notify_may_write_agency_topics() -> None:
    """Tried: the grants of all four services in a namespace."""
    s = Settings(kafka_namespace="ns.")
    writers = {
        (g.name, g.pattern): g.principal
        for service in SERVICE_NAMES
        for g in service_grants(s, service, TOPOLOGY[service])
        if g.operation == "write" and g.name != "ns.access.recorded.v1"
    }
    assert writers[("ns.assignments.offered.v1", "literal")] == "User:matching"
    assert writers[("ns.agency.", "prefixed")] == "User:notify"
    assert writers[("dlq.ns.intake", "literal")] == "User:intake"
    groups = {
        g.principal: g.name
        for svc in SERVICE_NAMES
        for g in service_grants(s, svc, TOPOLOGY[svc])
        if g.resource == "group" and g.operation == "read"
    }
    assert groups == {f"User:{svc}": f"ns.{svc}" for svc in SERVICE_NAMES}
    # Notify alone may describe (never join) agencies' groups: a connected consumer is a sign of life.
    describers = {
        (g.principal, g.name, g.pattern)
        for svc in SERVICE_NAMES
        for g in service_grants(s, svc, TOPOLOGY[svc])
        if g.operation == "describe"
    }
    assert describers == {("User:notify", "ns.agency.", "prefixed")}


def test_an_agency_reads_only_its_topic_and_groups_under_its_own_prefix() -> None:
    """Tried: agency 'a' beside agency 'ab', whose names share a prefix."""
    s = Settings(kafka_namespace="ns.")
    grants = agency_grants(s, "a", "agency-a")
    assert {(g.resource, g.pattern, g.name, g.operation) for g in grants} == {
        ("topic", "literal", "ns.agency.a.assignments.v1", "read"),
        ("group", "prefixed", "ns.agency.a.", "read"),
    }
    assert not any("ns.agency.ab.".startswith(g.name) for g in grants if g.pattern == "prefixed")


def test_an_agency_kafka_block_is_optional_and_its_password_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: the example as it is, then with a `kafka` block whose password is env:NAME."""
    old = parse(EXAMPLE.read_text())
    assert all(a.kafka is None for a in old.agencies) and logins(Settings(), old) == {}
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["agencies"][0]["kafka"] = {"username": "riverbend", "password": "env:RB_KAFKA"}
    monkeypatch.setenv("RB_KAFKA", "riverbend-kafka-secret")
    j = parse(yaml.safe_dump(raw))
    assert logins(Settings(), j) == {"riverbend": "riverbend-kafka-secret"}
    assert "User:riverbend" in {g.principal for g in all_grants(Settings(), j, TOPOLOGY)}


def test_the_secured_broker_denies_by_default_and_the_unsecured_one_is_unchanged(tmp_path: Path) -> None:
    """Tried: server.properties with and without an administrator login."""
    plain = dict(line.split("=", 1) for line in server_properties(9000, tmp_path).splitlines())
    assert plain["listeners"] == "PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9001"
    assert "authorizer.class.name" not in plain
    secured = dict(
        line.split("=", 1) for line in server_properties(9000, tmp_path, ("admin", "x" * 16)).splitlines()
    )
    assert secured["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9001"
    assert secured["allow.everyone.if.no.acl.found"] == "false"
    assert secured["authorizer.class.name"].endswith("StandardAuthorizer")
    assert secured["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert secured["listener.security.protocol.map"].endswith("CONTROLLER:PLAINTEXT")


def test_kafka_acls_check_prints_every_grant_and_refuses_an_unsecured_broker(tmp_path: Path) -> None:
    """Tried: `careroute kafka-acls --check` on the example, then without --check and no security set."""
    from typer.testing import CliRunner

    from services.cli import app

    env = {"CAREROUTE_RUN_DIR": str(tmp_path), "KAFKA_NAMESPACE": "ns."}
    shown = CliRunner().invoke(app, ["kafka-acls", str(EXAMPLE), "--check"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert len(lines) == len(
        all_grants(Settings(kafka_namespace="ns."), parse(EXAMPLE.read_text()), TOPOLOGY)
    )
    assert any(
        line.split() == ["User:agency-campus-care", "read", "group", "ns.agency.campus-care.*"]
        for line in lines
    )
    refused = CliRunner().invoke(app, ["kafka-acls", str(EXAMPLE)], env=env)
    assert refused.exit_code == 2 and "not secured" in refused.output


def test_only_careroutes_own_topics_and_groups_are_managed() -> None:
    """Tried: careroute's topics, groups and agency prefix in a namespace, and names outside it."""
    s = Settings(kafka_namespace="ns.")
    assert manages(s, "topic", "ns.calls.received.v1") and manages(s, "topic", "dlq.ns.audit")
    assert manages(s, "topic", "ns.agency.gone.assignments.v1") and manages(s, "group", "ns.agency.gone.x")
    assert manages(s, "group", "ns.matching")
    assert not manages(s, "topic", "other.calls.received.v1") and not manages(s, "topic", "billing")
    assert not manages(s, "group", "ns.someone-else") and not manages(s, "topic", "ns.matching")


def _self_signed(folder: Path) -> Path:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "careroute test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_sasl_ssl_verifies_the_broker_against_the_ca_file(tmp_path: Path) -> None:
    """Tried: SASL_SSL with KAFKA_SSL_CAFILE; the context requires a certificate and checks the host name."""
    import ssl

    cafile = _self_signed(tmp_path)
    s = _secured(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=str(cafile))
    options = security_options(s)
    context = options["ssl_context"]
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_plain_username"] == "operator"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "careroute test CA"),),)]
    assert confluent_config(s)["ssl.ca.location"] == str(cafile)


def test_the_runtime_refuses_to_start_a_secured_service_without_a_login() -> None:
    """Tried: run() with SASL_PLAINTEXT and no login; StartupError names the fix before anything is bound."""
    import asyncio

    from shared.runtime import StartupError, run

    s = Settings(kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(StartupError, match=r"intake: .*INTAKE_KAFKA_SASL_PASSWORD"):
        asyncio.run(run(s, ["intake"], {}, topology=TOPOLOGY))


def test_the_secured_broker_with_tls_listens_on_sasl_ssl_with_pem_files(tmp_path: Path) -> None:
    """Tried: server.properties with a login and TLS files; then the local CA and certificate made once."""
    from tools.infra.kafka_apache import tls_files

    ca, server = tls_files(tmp_path)
    assert tls_files(tmp_path) == (ca, server) and server.stat().st_mode & 0o077 == 0
    text = server_properties(9000, tmp_path, ("admin", "x" * 16), (ca, server))
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9000,CONTROLLER://127.0.0.1:9001"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.keystore.location"] == str(server)
    assert "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config" in props


def test_an_agency_named_by_domain_name_gets_its_own_topic_and_groups() -> None:
    """Tried: agency 'care.metro.example.gov' beside agency 'care.metro.example.gov2'."""
    s = Settings(kafka_namespace="ns.")
    grants = agency_grants(s, "care.metro.example.gov", "agency-care.metro.example.gov")
    assert {(g.principal, g.resource, g.pattern, g.name) for g in grants} == {
        (
            "User:agency-care.metro.example.gov",
            "topic",
            "literal",
            "ns.agency.care.metro.example.gov.assignments.v1",
        ),
        ("User:agency-care.metro.example.gov", "group", "prefixed", "ns.agency.care.metro.example.gov."),
    }
    assert not any(
        "ns.agency.care.metro.example.gov2.".startswith(g.name) for g in grants if g.pattern == "prefixed"
    )
