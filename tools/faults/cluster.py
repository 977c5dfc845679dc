"""The system under test as separate processes, so each piece can be killed, paused and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx

from services import loader
from shared.jurisdiction import Jurisdiction
from shared.settings import SERVICE_NAMES, Settings
from tools import infra

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
        self.db = f"faults_{uuid.uuid4().hex[:8]}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.endpoints = infra.InfraEndpoints("", "", broker)
        self.settings = Settings()

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
        await self.stop_services()
        if self.settings.database_url.get_secret_value().endswith(f"/{self.db}"):
            await self._drop_database()
        self.db = f"faults_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(self.endpoints.database_url)
        await admin.execute(f"CREATE DATABASE {self.db}")
        await admin.close()
        base = self.endpoints.database_url.rpartition("/")[0]
        self.settings = Settings.model_validate(
            {
                "database_url": f"{base}/{self.db}",
                "kafka_bootstrap_servers": self.endpoints.kafka_bootstrap_servers,
                "kafka_broker": self.endpoints.broker,
                "kafka_namespace": f"{self.db}.",
                **{f"{s}_port": infra.free_port() for s in SERVICE_NAMES},
            }
        )
        await loader.load(self.settings, jurisdiction)
        self.start_services()
        await self.wait_ready()

    def start_services(self) -> None:
        """Start every service process that is not running."""
        for name in PROCESSES:
            if name not in self.processes or self.processes[name].poll() is not None:
                self.spawn(name)

    async def stop_services(self) -> None:
        """SIGTERM every service process (SIGCONT first, in case it is paused) and wait for it."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 60)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    def _env(self, name: str) -> dict[str, str]:
        s = self.settings
        port = infra.free_port() if name == "matching-2" else s.port_for(name)
        return {
            **os.environ,
            **s.process_env(),
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "MATCHING_OFFER_TIMEOUT_S": str(self.offer_timeout_s),
            "LOG_LEVEL": "WARNING",
            f"{name.split('-')[0].upper()}_PORT": str(port),
        }

    def spawn(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """Start one service process (with `extra_env`, e.g. a skewed clock)."""
        module = f"services.{name.split('-')[0]}"
        with (self.run_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self._env(name), **(extra_env or {})},
                stdout=log,
                stderr=log,
            )

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send a signal to one service process."""
        self.processes[name].send_signal(sig)

    def kill(self, name: str) -> None:
        """SIGKILL one service process and reap it."""
        self.signal(name, signal.SIGKILL)
        self.processes[name].wait()

    def kill_and_restart(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """SIGKILL one service and start it again at once."""
        self.kill(name)
        self.spawn(name, extra_env)

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

    def url(self, service: str) -> str:
        """Base URL of one service."""
        return f"http://127.0.0.1:{self.settings.port_for(service)}"

    async def wait_ready(self, timeout_s: float = 120) -> None:
        """Every service answers /readyz."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(timeout=3) as http:
            for name in SERVICE_NAMES:
                while True:
                    try:
                        if (await http.get(f"{self.url(name)}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if loop.time() > deadline:
                        raise RuntimeError(f"{name} not ready; see {self.run_dir}/{name}.log")
                    await asyncio.sleep(0.3)

    async def _drop_database(self) -> None:
        admin = await asyncpg.connect(self.endpoints.database_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        finally:
            await admin.close()

    async def stop(self) -> None:
        """Stop the services, drop the database, stop the infrastructure."""
        await self.stop_services()
        if self.keep:
            return  # left for a look: `careroute infra down` with this run folder stops it
        try:
            if self.endpoints.database_url:
                await self._drop_database()
        finally:
            infra.down(self.run_dir)
