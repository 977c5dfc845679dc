"""The whole system as a user runs it: `python -m services` in its own process, on real infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from services import loader
from services.intake.signatures import PsapAuth
from shared.jurisdiction import Jurisdiction, load_file
from shared.settings import SERVICE_NAMES, Settings
from tests.support import delete_namespace
from tools import infra

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"


@dataclass
class System:
    """A running system and what a test needs to talk to it."""

    settings: Settings
    jurisdiction: Jurisdiction
    processes: list[subprocess.Popen[bytes]]
    log: Path

    def url(self, service: str) -> str:
        """The base URL of one service."""
        return f"http://127.0.0.1:{self.settings.port_for(service)}"

    def token(self, tenant: str) -> dict[str, str]:
        """The Authorization header of a PSAP, agency or oversight body from the example."""
        j = self.jurisdiction
        tokens = {p.id: p.token for p in j.psaps} | {a.id: a.token for a in j.agencies}
        tokens |= {o.id: o.token for o in j.oversight}
        return {"Authorization": f"Bearer {tokens[tenant]}"}

    def psap_auth(self, psap_id: str) -> PsapAuth:
        """A PSAP's bearer token plus the Standard Webhooks signature intake requires of its POSTs."""
        psap = next(p for p in self.jurisdiction.psaps if p.id == psap_id)
        return PsapAuth(psap.token, psap.signing_secret)

    def exited(self) -> bool:
        """Whether any service process has ended."""
        return any(p.poll() is not None for p in self.processes)

    def stop(self, timeout_s: float = 60) -> list[int]:
        """SIGTERM every process, then wait; returns their exit codes."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"services did not stop within {timeout_s} s") from None
        return [p.returncode for p in self.processes]


async def _wait_ready(system: System, timeout_s: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with httpx.AsyncClient(timeout=3) as http:
        for name in SERVICE_NAMES:
            while True:
                if system.exited():
                    raise AssertionError(f"services exited early:\n{system.log.read_text()[-4000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{system.url(name)}/readyz")).status_code == 200:
                        break
                if loop.time() > deadline:
                    raise AssertionError(f"{name} not ready:\n{system.log.read_text()[-4000:]}")
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_system(
    endpoints: infra.InfraEndpoints,
    log_dir: Path,
    *,
    separate: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[System]:
    """A fresh database and namespace, the example loaded, and all four services running.

    `separate` runs `python -m services.<name>` once per service instead of one `python -m services`;
    `env` adds settings (e.g. a short offer deadline).
    """
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    base = endpoints.database_url.rpartition("/")[0]
    ports = {f"{s}_port": infra.free_port() for s in SERVICE_NAMES}
    settings = Settings.model_validate(
        {
            "database_url": f"{base}/{name}",
            "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
            "kafka_broker": endpoints.broker,
            "kafka_namespace": f"{name}.",
            **ports,
        }
    )
    jurisdiction = load_file(EXAMPLE)
    await loader.load(settings, jurisdiction)
    environment = {
        **os.environ,
        **settings.process_env(),
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        **{k.upper(): str(v) for k, v in ports.items()},
        **(env or {}),
    }
    log = log_dir / f"{name}.log"
    modules = [f"services.{s}" for s in SERVICE_NAMES] if separate else ["services"]
    with log.open("wb") as out:
        # Popen returns at once (it does not wait for the child), so it does not block the loop.
        processes = [
            subprocess.Popen([sys.executable, "-m", m], env=environment, stdout=out, stderr=out)  # noqa: ASYNC220
            for m in modules
        ]
    system = System(settings, jurisdiction, processes, log)
    try:
        await _wait_ready(system)
        yield system
    finally:
        system.stop()
        await delete_namespace(settings, settings.kafka_namespace)
        admin = await asyncpg.connect(endpoints.database_url)
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
