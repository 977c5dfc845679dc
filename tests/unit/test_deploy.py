"""docker-compose.yml cannot run here (no Docker engine); this keeps it consistent with the code."""

from pathlib import Path

import yaml

from shared.settings import DEFAULT_PORTS, SERVICE_NAMES

ROOT = Path(__file__).parents[2]


def test_compose_runs_each_service_from_one_image_after_its_dependencies():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4")
    assert services["postgres"]["image"] == "postgres:16"
    for name in SERVICE_NAMES:
        svc = services[name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        assert svc["ports"] == [f"{DEFAULT_PORTS[name]}:{DEFAULT_PORTS[name]}"]
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["environment"]["HTTP_HOST"] == "0.0.0.0"
    assert services["load"]["command"][:2] == ["careroute", "load"]
    assert (ROOT / services["load"]["command"][2].removeprefix("/app/")).exists()


def test_compose_secures_the_broker_and_logs_each_service_in_as_itself():
    """Tried: the broker's listeners and authorizer, each service's login, and the ACL job before load."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    kafka = services["kafka"]["environment"]
    listeners = dict(item.split("://") for item in kafka["KAFKA_LISTENERS"].split(","))
    assert listeners == {"SASL_PLAINTEXT": ":9092", "CONTROLLER": "localhost:9093"}
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "SASL_PLAINTEXT://kafka:9092"
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "ports" not in services["kafka"]
    assert services["kafka"]["depends_on"]["kafka-format"]["condition"] == "service_completed_successfully"
    assert "--add-scram" in services["kafka-format"]["command"][2]
    passwords = set()
    for name in SERVICE_NAMES:
        env = services[name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["KAFKA_SASL_USERNAME"] == name
        assert env["KAFKA_SASL_PASSWORD"].startswith(f"${{{name.upper()}_KAFKA_PASSWORD:?")
        passwords.add(env["KAFKA_SASL_PASSWORD"])
    assert len(passwords) == len(SERVICE_NAMES)
    acls = services["kafka-acls"]
    assert acls["command"] == ["careroute", "kafka-acls", services["load"]["command"][2]]
    assert acls["environment"]["KAFKA_SASL_USERNAME"] == "admin"
    assert all(f"{n.upper()}_KAFKA_SASL_PASSWORD" in acls["environment"] for n in SERVICE_NAMES)
    assert services["load"]["depends_on"]["kafka-acls"]["condition"] == "service_completed_successfully"
