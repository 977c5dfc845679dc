"""Start and stop the project's own PostgreSQL and Kafka broker on loopback, without Docker."""

from tools.infra.kafka_apache import KAFKA_VERSION
from tools.infra.lifecycle import choose_broker, down, status, up
from tools.infra.ports import free_port
from tools.infra.state import InfraEndpoints, InfraError, database_url, read_endpoints

__all__ = [
    "KAFKA_VERSION",
    "InfraEndpoints",
    "InfraError",
    "choose_broker",
    "database_url",
    "down",
    "free_port",
    "read_endpoints",
    "status",
    "up",
]
