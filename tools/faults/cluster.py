"""The system under test as separate processes, so each piece can be killed, paused and restarted."""

from __future__ import annotations

import contextlib
from pathlib import Path

from shared.jurisdiction import Jurisdiction
from tools import infra
from tools.system import System

# Two matching replicas: one can be paused past its session timeout while the other takes over.
PROCESSES = ("intake", "matching", "matching-2", "notify", "audit")


class Cluster:
    """Infrastructure in its own run folder, and one OS process per service (matching twice)."""

    def __init__(
        self,
        run_dir: Path,
        broker: str,
        pg_port: int,
        kafka_port: int,
        offer_timeout_s: int,
        *,
        keep: bool = False,
    ) -> None:
        self.keep = keep
        self.run_dir = run_dir
        self.broker = broker
        self.pg_port = pg_port
        self.kafka_port = kafka_port
        self.offer_timeout_s = offer_timeout_s
        self.endpoints = infra.InfraEndpoints("", "", broker)
        self._running: contextlib.AsyncExitStack | None = None
        self._system: System | None = None

    @property
    def system(self) -> System:
        """The services running now, on this fault's database and namespace."""
        assert self._system is not None, "the cluster has not started"
        return self._system

    def infra_up(self) -> None:
        """Start (or restart what died of) PostgreSQL and the broker."""
        # Durable, as a deployment runs it: an immediate stop must not lose what was committed.
        self.endpoints = infra.up(
            self.run_dir, self.broker, pg_port=self.pg_port, kafka_port=self.kafka_port, durable_pg=True
        )

    async def start(self, jurisdiction: Jurisdiction) -> None:
        """Infrastructure, a fresh database and namespace, the jurisdiction, and every service process."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.infra_up()
        await self.fresh(jurisdiction)

    async def fresh(self, jurisdiction: Jurisdiction) -> None:
        """Stop the services and start them on a new database and topic namespace, so each fault is
        judged on its own data (what an earlier fault left is not counted again)."""
        await self._close()
        running = contextlib.AsyncExitStack()
        self._system = await running.enter_async_context(
            System.start(
                self.endpoints,
                PROCESSES,
                mode="per-service",
                jurisdiction=jurisdiction,
                settings={"kafka_session_timeout_ms": 6000},
                env={"LOG_LEVEL": "WARNING", "MATCHING_OFFER_TIMEOUT_S": str(self.offer_timeout_s)},
                log_dir=self.run_dir,
                prefix="faults",
                keep=self.keep,
            )
        )
        self._running = running

    async def _close(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()

    def postgres_pid(self) -> int:
        """The postmaster's process id."""
        state = infra.status(self.run_dir)["postgres"]
        assert isinstance(state, dict)
        return int(state["pid"])

    def broker_pid(self) -> int:
        """The broker's process id."""
        component = "kafka" if self.broker == "apache" else "tansu"
        state = infra.status(self.run_dir)[component]
        assert isinstance(state, dict)
        return int(state["pid"])

    async def stop(self) -> None:
        """Stop the services, drop the database, stop the infrastructure."""
        try:
            await self._close()
        finally:
            if not self.keep:  # left for a look: `careroute infra down` with this run folder stops it
                infra.down(self.run_dir)
