"""Start and stop the project's own PostgreSQL and Kafka broker on loopback, without Docker."""

from shared.infra.kafka_apache import KAFKA_VERSION
from shared.infra.lifecycle import choose_broker, down, status, up
from shared.infra.ports import free_port
from shared.infra.state import InfraEndpoints, InfraError, read_endpoints

__all__ = [
    "KAFKA_VERSION",
    "InfraEndpoints",
    "InfraError",
    "choose_broker",
    "down",
    "free_port",
    "read_endpoints",
    "status",
    "up",
]
