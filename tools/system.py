"""The one way to start careroute for a test, a tool or a benchmark: `System.start(...)`.

    async with System.start(endpoints, ["intake", "matching"], mode="per-service") as system:
        httpx.get(f"{system.url('intake')}/v1/...")

On the given infrastructure it makes a fresh database and topic namespace (or runs on the
Settings it is given), builds Settings for them, migrates every schema and loads a jurisdiction,
starts the chosen services in this process (through shared.runtime, as `python -m services` does)
or as OS processes (`python -m services ...` with the settings' environment), waits until each
answers /readyz, and at the end stops them, deletes the namespace's topics and drops the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from services import builders as service_builders
from services import loader
from services.topology import TOPOLOGY
from shared.db import connect, create_pool
from shared.jurisdiction import Jurisdiction, Psap
from shared.kafka import client_options
from shared.runtime import Builder, run
from shared.settings import SERVICE_NAMES, Settings
from tools.infra import InfraEndpoints, free_port
from tools.jurisdictions import EXAMPLE, resolve
from tools.psap import PsapAuth, PsapClient, bearer

# in-process: every service in this process, through shared.runtime; one-process: one
# `python -m services <names>`; per-service: one `python -m services.<name>` per service (a name
# such as "matching-2" starts another replica of that service on a port of its own).
Mode = Literal["in-process", "one-process", "per-service"]


class NotReady(RuntimeError):
    """A service did not answer /readyz with 200 in time, or its process ended first."""


async def wait_ready(
    urls: Mapping[str, str],
    *,
    timeout_s: float = 120,
    ended: Callable[[], str | None] = lambda: None,
    interval_s: float = 0.2,
) -> None:
    """Poll every `urls` value's /readyz until each answers 200.

    `ended` says what went wrong when something the caller started has stopped (None while all
    runs); that ends the wait at once rather than after `timeout_s`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = dict(urls)
    async with httpx.AsyncClient(timeout=3) as http:
        while pending:
            for name, url in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        del pending[name]
            if not pending:
                return
            if (what := ended()) is not None:
                raise NotReady(what)
            if loop.time() > deadline:
                raise NotReady(f"not ready after {timeout_s:.0f} s: {', '.join(pending)}")
            await asyncio.sleep(interval_s)


async def delete_topics(settings: Settings, prefix: str) -> None:
    """Delete every topic of a namespace (its dead-letter topics included)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = [
            t for t in await admin.list_topics() if t.startswith(prefix) or t.startswith(f"dlq.{prefix}")
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, name: str, *, keep: bool = False) -> AsyncIterator[str]:
    """Create database `name` on the cluster of `admin_url`; its URL; dropped afterwards unless `keep`."""
    admin = await connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        if not keep:
            admin = await connect(admin_url)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()


def settings_for(endpoints: InfraEndpoints, database_url: str, namespace: str, **overrides: Any) -> Settings:
    """Settings on `endpoints` with this database and topic namespace, then `overrides`."""
    return Settings(
        **{
            "database_url": database_url,
            "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
            "kafka_broker": endpoints.broker,
            "kafka_namespace": namespace,
            **overrides,
        }
    )


@contextlib.asynccontextmanager
async def scratch(
    endpoints: InfraEndpoints, prefix: str = "t", *, keep: bool = False, **overrides: Any
) -> AsyncIterator[Settings]:
    """A fresh database and topic namespace `<prefix>_<random>` and Settings for them (plus
    `overrides`); the topics are deleted and the database dropped afterwards unless `keep`."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    async with scratch_database(endpoints.database_url, name, keep=keep) as url:
        settings = settings_for(endpoints, url, f"{name}.", **overrides)
        try:
            yield settings
        finally:
            if not keep:
                await delete_topics(settings, settings.kafka_namespace)


async def load(settings: Settings, jurisdiction: Jurisdiction | Path, *, topics: bool = True) -> Jurisdiction:
    """Migrate every schema and store the jurisdiction, as `careroute load` does (`topics`: and
    create each agency's own topic)."""
    j = resolve(jurisdiction)
    if topics:
        await loader.load(settings, j)
        return j
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        await loader.apply(pool, j)
    finally:
        await pool.close()
    return j


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _service(process: str) -> str:
    """The service a process runs ("matching-2" is a replica of matching)."""
    return process.split("-")[0]


class System:
    """A running careroute and what its user needs: URLs, settings, the database, its processes."""

    def __init__(
        self,
        settings: Settings,
        jurisdiction: Jurisdiction | None,
        services: Sequence[str],
        mode: Mode,
        log_dir: Path,
        env: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self._jurisdiction = jurisdiction
        self.services = list(services)
        self.mode = mode
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._env = dict(env)
        self._ports: dict[str, int] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        where: InfraEndpoints | Settings,
        services: Sequence[str] = SERVICE_NAMES,
        *,
        jurisdiction: Jurisdiction | Path | None = EXAMPLE,
        mode: Mode = "in-process",
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        builders: Mapping[str, Builder] | None = None,
        log_dir: Path | None = None,
        prefix: str = "sys",
        agency_topics: bool = True,
        keep: bool = False,
        ready_timeout_s: float = 120,
    ) -> AsyncIterator[System]:
        """Run `services` until the block ends, then tear everything down.

        `where`: infrastructure endpoints (a fresh database and namespace, removed afterwards unless
        `keep`, and free ports) or Settings whose database, namespace and ports the caller owns.
        `jurisdiction` (None: load nothing) is loaded first, with each agency's topic unless not
        `agency_topics`.
        `settings` overrides fields of the Settings (service processes get them as environment
        variables, `env` adds more); `builders` replaces services' composition roots in process
        (e.g. with their own settings). Service processes log to `log_dir`/<process>.log.
        """
        overrides = dict(settings or {})
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(where, Settings):
                base = where.model_copy(update=overrides)
            else:
                base = await stack.enter_async_context(scratch(where, prefix, keep=keep, **overrides))
            if mode != "in-process" and not isinstance(where, Settings):
                base = base.model_copy(update={f"{s}_port": free_port() for s in SERVICE_NAMES})
            loaded = None if jurisdiction is None else await load(base, jurisdiction, topics=agency_topics)
            name = base.kafka_namespace.rstrip(".") or prefix
            folder = log_dir or base.run_dir / "logs" / name
            child_env = {k.upper(): _env_value(v) for k, v in overrides.items()} | dict(env or {})
            system = cls(base, loaded, services, mode, folder, child_env)
            if mode == "in-process":
                await stack.enter_async_context(system._in_process(builders or {}, ready_timeout_s))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                stack.push_async_callback(system.stop_services)
                system.start_services()
            await system.wait_ready(ready_timeout_s)
            yield system

    @contextlib.asynccontextmanager
    async def _in_process(self, builders: Mapping[str, Builder], timeout_s: float) -> AsyncIterator[None]:
        """The services in this process on free ports, through the runtime production uses."""
        names = self.services
        chosen = {**service_builders([n for n in names if n not in builders]), **builders}
        free = self.settings.model_copy(update={f"{n}_port": 0 for n in names})
        stop = asyncio.Event()
        ready: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            run(free, names, chosen, topology=TOPOLOGY, stop=stop, on_ready=ready.set_result)
        )
        try:
            waiters: list[asyncio.Future[Any]] = [task, ready]
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                if task.done():
                    task.result()
                raise NotReady(f"{', '.join(names)} did not start within {timeout_s:.0f} s")
            self._ports = ready.result()
            self.settings = self.settings.model_copy(
                update={f"{n}_port": p for n, p in self._ports.items() if n in SERVICE_NAMES}
            )
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, 60)
            finally:
                # The runtime owns SIGTERM and SIGINT while it runs; give them back.
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                signal.signal(signal.SIGINT, signal.default_int_handler)

    @property
    def jurisdiction(self) -> Jurisdiction:
        """The jurisdiction loaded at start."""
        if self._jurisdiction is None:
            raise LookupError("this system was started with no jurisdiction")
        return self._jurisdiction

    @property
    def database_url(self) -> str:
        """The URL of this system's database."""
        return self.settings.database_url.get_secret_value()

    @property
    def database_name(self) -> str:
        """The name of this system's database."""
        return self.database_url.rpartition("/")[2]

    @contextlib.asynccontextmanager
    async def pool(self, max_size: int = 4) -> AsyncIterator[asyncpg.Pool]:
        """A connection pool on this system's database, closed when the block ends."""
        pool = await create_pool(self.database_url, max_size=max_size)
        try:
            yield pool
        finally:
            await pool.close()

    def port(self, name: str) -> int:
        """The HTTP port of a service or a service process ("matching-2")."""
        return self._ports.get(name) or self.settings.port_for(name)

    def url(self, name: str) -> str:
        """The base URL of a service or a service process."""
        return f"http://{self.settings.http_host}:{self.port(name)}"

    def psap(self, psap_id: str) -> Psap:
        """One PSAP of the loaded jurisdiction."""
        return next(p for p in self.jurisdiction.psaps if p.id == psap_id)

    def psap_auth(self, psap_id: str) -> PsapAuth:
        """A PSAP's bearer token plus the Standard Webhooks signature intake requires of its POSTs."""
        return PsapAuth.of(self.psap(psap_id))

    def psap_client(self, http: httpx.AsyncClient, psap_id: str) -> PsapClient:
        """A client of intake signing as one PSAP of the loaded jurisdiction."""
        return PsapClient(http, self.url("intake"), self.psap(psap_id))

    def token(self, tenant: str) -> dict[str, str]:
        """The Authorization header of a PSAP, agency or oversight body of the loaded jurisdiction."""
        j = self.jurisdiction
        tokens = {p.id: p.token for p in j.psaps} | {a.id: a.token for a in j.agencies}
        tokens |= {o.id: o.token for o in j.oversight}
        return bearer(tokens[tenant])

    # Service processes (mode one-process or per-service).

    def _process_names(self) -> list[str]:
        return ["services"] if self.mode == "one-process" else self.services

    def _serves(self, process: str) -> dict[str, str]:
        """The URL of each service a process (or, in process, the runtime) answers for."""
        if self.mode == "per-service":
            return {process: self.url(process)}
        return {name: self.url(name) for name in self.services}

    def spawn(self, process: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start one service process (with `extra_env`, e.g. a skewed clock)."""
        if self.mode == "one-process":
            command = ["services", *self.services]
        else:
            command = [f"services.{_service(process)}"]
        ports = {f"{s.upper()}_PORT": str(self.settings.port_for(s)) for s in SERVICE_NAMES}
        if process not in SERVICE_NAMES and self.mode == "per-service":
            self._ports[process] = free_port()  # a replica: a port of its own at each start
            ports[f"{_service(process).upper()}_PORT"] = str(self._ports[process])
        env = {**os.environ, **self.settings.process_env(), **self._env, **ports, **(extra_env or {})}
        with (self.log_dir / f"{process}.log").open("ab") as log:
            self.processes[process] = subprocess.Popen(
                [sys.executable, "-m", *command], env=env, stdout=log, stderr=log
            )

    def start_services(self) -> None:
        """Start every service process that is not running."""
        for name in self._process_names():
            if name not in self.processes or self.processes[name].poll() is not None:
                self.spawn(name)

    def signal(self, process: str, sig: signal.Signals) -> None:
        """Send a signal to one service process."""
        self.processes[process].send_signal(sig)

    def kill(self, process: str) -> None:
        """SIGKILL one service process and reap it."""
        self.signal(process, signal.SIGKILL)
        self.processes[process].wait()

    def restart(self, process: str, extra_env: Mapping[str, str] | None = None) -> None:
        """SIGKILL one service process and start it again at once."""
        self.kill(process)
        self.spawn(process, extra_env)

    def exited(self) -> list[str]:
        """The service processes that have ended."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def stop(self, timeout_s: float = 60) -> list[int]:
        """SIGTERM every service process (SIGCONT first, in case it is paused) and wait; their exit
        codes in start order (one that did not stop within `timeout_s` is killed)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return [p.returncode for p in self.processes.values()]

    async def stop_services(self) -> list[int]:
        """`stop` without blocking the event loop."""
        return await asyncio.to_thread(self.stop)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of each service process's log."""
        tails = []
        for name in self.processes:
            path = self.log_dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            tails.append(f"--- {path}\n{text[-chars:]}")
        return "\n".join(tails)

    async def wait_ready(self, timeout_s: float = 120) -> None:
        """Wait until every running service answers /readyz with 200 (NotReady with the logs' tails
        when a process ends first or time runs out)."""
        if self.mode == "in-process":
            await wait_ready({n: self.url(n) for n in self.services}, timeout_s=timeout_s)
            return
        urls: dict[str, str] = {}
        for process in self.processes:
            urls |= self._serves(process)

        def ended() -> str | None:
            gone = self.exited()
            return f"service processes exited early: {', '.join(gone)}" if gone else None

        try:
            await wait_ready(urls, timeout_s=timeout_s, ended=ended)
        except NotReady as exc:
            raise NotReady(f"{exc}\n{self.log_tail()}") from None
