"""Settings shared by every service, read once from the environment by the entry points."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES: tuple[str, ...] = ("intake", "matching", "notify", "audit")
DEFAULT_PORTS: dict[str, int] = {"intake": 8001, "matching": 8002, "notify": 8003, "audit": 8004}
BROKERS = ("apache", "tansu", "external")


class UnknownBroker(ValueError):
    """KAFKA_BROKER names no broker careroute knows."""


def choose_broker(requested: str | None) -> str:
    """'apache' | 'tansu' | 'external'; None, '' or 'auto' -> apache if java and mvn exist, else tansu."""
    value = (requested or "").strip().lower()
    if value in ("", "auto"):
        return "apache" if shutil.which("java") and shutil.which("mvn") else "tansu"
    if value not in BROKERS:
        raise UnknownBroker(
            f"unknown broker {requested!r}; set KAFKA_BROKER to apache, tansu, external or auto"
        )
    return value


class Settings(BaseSettings):
    """Everything a careroute process needs to reach its database and broker."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:55432/postgres"),
        description="PostgreSQL DSN; every service owns one schema in this database.",
    )
    kafka_bootstrap_servers: str = "127.0.0.1:59092"
    kafka_broker: str = Field(
        default="auto", description="apache | tansu | external | auto (apache when java+mvn exist)"
    )
    # Prefixed to every topic and consumer group, so test runs never see each other's data.
    kafka_namespace: str = ""
    # None: chosen by broker (fetch_max_wait_ms below).
    kafka_fetch_max_wait_ms: int | None = Field(default=None, ge=1, le=60_000)
    kafka_session_timeout_ms: int = 6000
    kafka_partitions: int = 3
    # Off (PLAINTEXT) for the embedded demo; SASL_* authenticates every client, *SSL encrypts.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    # This process's principal; a service with its own password below authenticates as itself.
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # Each service's own principal (its username defaults to the service's name).
    intake_kafka_sasl_username: str = ""
    intake_kafka_sasl_password: SecretStr | None = None
    matching_kafka_sasl_username: str = ""
    matching_kafka_sasl_password: SecretStr | None = None
    notify_kafka_sasl_username: str = ""
    notify_kafka_sasl_password: SecretStr | None = None
    audit_kafka_sasl_username: str = ""
    audit_kafka_sasl_password: SecretStr | None = None
    # `careroute infra up` starts the local Apache Kafka with SASL, SCRAM and ACLs.
    kafka_secured: bool = False
    http_host: str = "127.0.0.1"
    intake_port: int = DEFAULT_PORTS["intake"]
    matching_port: int = DEFAULT_PORTS["matching"]
    notify_port: int = DEFAULT_PORTS["notify"]
    audit_port: int = DEFAULT_PORTS["audit"]
    log_level: str = "INFO"
    log_json: bool = True
    run_dir: Path = Field(default=Path(".run"), validation_alias="CAREROUTE_RUN_DIR")
    local_pg_port: int = Field(default=55432, validation_alias="CAREROUTE_PG_PORT")
    local_kafka_port: int = Field(default=59092, validation_alias="CAREROUTE_KAFKA_PORT")
    consumer_max_attempts: int = 5
    consumer_retry_base_s: float = 0.2
    # Records of one partition applied in one transaction (1 = one transaction per record).
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    # Offsets committed at most this often (a redelivery after a crash is dropped by the inbox).
    consumer_commit_interval_s: float = Field(default=0.2, ge=0, le=60)
    # Failed authentications one client address may make in a window before it is answered 429.
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failure_window_s: float = Field(default=60.0, gt=0)
    outbox_poll_interval_s: float = 1.0
    # The relay's poll while NOTIFY wakes it: each poll is a transaction in every service at rest.
    outbox_poll_listening_s: float = Field(default=10.0, gt=0)
    max_body_bytes: int = 1_000_000

    def port_for(self, service: str) -> int:
        """The HTTP port of one service."""
        return int(getattr(self, f"{service}_port"))

    def kafka_secured_protocol(self) -> bool:
        """Whether clients authenticate (SASL_PLAINTEXT, SASL_SSL) or present certificates (SSL)."""
        return self.kafka_security_protocol != "PLAINTEXT"

    def kafka_service_username(self, service: str) -> str:
        """The principal name of one service: its own setting, else the service's name."""
        return str(getattr(self, f"{service}_kafka_sasl_username")) or service

    def kafka_login(self, service: str | None = None) -> tuple[str, SecretStr]:
        """The SASL username and password `service` (None: the process itself) authenticates with.

        A service whose own password is set authenticates as its own principal even when all four
        run in one process; otherwise it uses the process's KAFKA_SASL_USERNAME.
        """
        if service is not None:
            password = getattr(self, f"{service}_kafka_sasl_password")
            if password is not None:
                return self.kafka_service_username(service), password
        return self.kafka_sasl_username, self.kafka_sasl_password

    def fetch_max_wait_ms(self) -> int:
        """How long a consumer's fetch may wait for records when there are none.

        A Kafka broker answers a waiting fetch as soon as a record arrives, so a long wait costs no
        latency and spares the broker and every consumer dozens of empty fetches a second (500 ms,
        Kafka's own default). Tansu does not wake a waiting fetch: there the wait is the latency,
        so it is 20 ms (docs/brokers.md).
        """
        if self.kafka_fetch_max_wait_ms is not None:
            return self.kafka_fetch_max_wait_ms
        return 20 if choose_broker(self.kafka_broker) == "tansu" else 500

    def process_env(self) -> dict[str, str]:
        """Environment variables giving a child process this database, broker and namespace."""
        env = {
            "DATABASE_URL": self.database_url.get_secret_value(),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "KAFKA_BROKER": self.kafka_broker,
            "KAFKA_NAMESPACE": self.kafka_namespace,
        }
        if self.kafka_fetch_max_wait_ms is not None:
            env["KAFKA_FETCH_MAX_WAIT_MS"] = str(self.kafka_fetch_max_wait_ms)
        if self.kafka_secured_protocol():
            env["KAFKA_SECURITY_PROTOCOL"] = self.kafka_security_protocol
            env["KAFKA_SASL_MECHANISM"] = self.kafka_sasl_mechanism
            env["KAFKA_SASL_USERNAME"] = self.kafka_sasl_username
            env["KAFKA_SASL_PASSWORD"] = self.kafka_sasl_password.get_secret_value()
            for name in ("cafile", "certfile", "keyfile"):
                path = getattr(self, f"kafka_ssl_{name}")
                if path is not None:
                    env[f"KAFKA_SSL_{name.upper()}"] = str(path)
            for service in SERVICE_NAMES:
                password = getattr(self, f"{service}_kafka_sasl_password")
                if password is not None:
                    env[f"{service.upper()}_KAFKA_SASL_USERNAME"] = self.kafka_service_username(service)
                    env[f"{service.upper()}_KAFKA_SASL_PASSWORD"] = password.get_secret_value()
        return env

    def topic(self, name: str) -> str:
        """The physical topic name of a logical topic in this namespace."""
        return f"{self.kafka_namespace}{name}"

    def group(self, service: str) -> str:
        """The consumer group of one service in this namespace."""
        return f"{self.kafka_namespace}{service}"
