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
