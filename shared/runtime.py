"""The one runtime: opens every resource, runs any subset of services, and shuts down in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import structlog
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from shared import kafka_acls
from shared.auth import Authenticator
from shared.consumer import BatchHandler, EventConsumer, Handler, stop_quietly
from shared.db import MigrationError, create_pool, migrate
from shared.envelope import Envelope
from shared.failures import is_transient, wait_backoff
from shared.kafka import TopicsRefused, client_options, ensure_topics, make_producer
from shared.outbox import TRANSIENT, OnPublished, OutboxRelay
from shared.settings import Settings
from shared.throttle import FailureThrottle
from shared.topics import REGISTRY, ServiceTopics, dlq_topic

log = structlog.get_logger(__name__)

Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class StartupError(Exception):
    """The runtime cannot start; the message says why and what to do."""


@dataclass
class Infra:
    """The shared resources a service builder receives."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer

    async def db_ready(self) -> bool:
        """The database answers."""
        try:
            return bool(await self.pool.fetchval("SELECT 1"))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def broker_ready(self) -> bool:
        """The broker answers a metadata request."""
        try:
            await self.producer.client.fetch_all_metadata()
            return True
        except (OSError, KafkaError):
            return False

    def authenticator(self, schema: str) -> Authenticator:
        """The bearer-token check of `schema`'s service, its failure throttle set from the settings."""
        s = self.settings
        return Authenticator(
            self.pool, schema, FailureThrottle(s.auth_failure_burst, s.auth_failure_window_s)
        )

    def consumer(
        self,
        schema: str,
        service: str,
        handlers: Mapping[str, Handler],
        batch_handler: BatchHandler | None = None,
        gather_ms: int = 0,
    ) -> EventConsumer:
        """A consumer for `service`'s group whose effects go to `schema`; with `gather_ms`, each
        fetch waits that long for more records (`EventConsumer`), else the broker's usual wait."""
        s = self.settings
        return EventConsumer(
            group=s.group(service),
            schema=schema,
            pool=self.pool,
            publisher=self.producer,
            kafka=client_options(s, service),
            handlers=handlers,
            topic_name=s.topic,
            max_attempts=s.consumer_max_attempts,
            retry_base_s=s.consumer_retry_base_s,
            fetch_max_wait_ms=gather_ms or s.fetch_max_wait_ms(),
            gather=gather_ms > 0,
            session_timeout_ms=s.kafka_session_timeout_ms,
            batch_size=s.consumer_batch_size,
            batch_handler=batch_handler,
            commit_interval_s=s.consumer_commit_interval_s,
        )


@dataclass
class ServiceParts:
    """What a service's composition root hands the runtime."""

    name: str
    schema: str
    migrations: Path
    app: FastAPI
    consumer: EventConsumer | None = None
    background: list[Background] = field(default_factory=list)
    on_start: Callable[[], Awaitable[None]] | None = None
    # Called when shutdown begins, before servers wait for open connections (e.g. to end streams).
    on_stop: Callable[[], Awaitable[None]] | None = None
    on_published: OnPublished | None = None
    # Called in the transaction that records a dead letter of a decodable event of this service's
    # consumer (e.g. to hand a live call back); it should be idempotent per call.
    on_dead_letter: Callable[[asyncpg.Connection, Envelope], Awaitable[None]] | None = None


Builder = Callable[[Infra], ServiceParts]


class Server(uvicorn.Server):
    """uvicorn without its own signal handling (the runtime owns SIGTERM and SIGINT), whose main
    loop wakes once a second instead of ten times, and at once when told to exit."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()  # before uvicorn's __init__, which sets should_exit
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        """Whether the server is to stop taking requests and close."""
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """No signal handlers of uvicorn's own."""
        yield

    async def main_loop(self) -> None:
        """Tick once a second until told to exit (each tick of an idle service is a wakeup); a tick
        whose counter is 0 is the one on which uvicorn refreshes the Date header."""
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


def _name(job: Background) -> str:
    return getattr(job, "__qualname__", repr(job))


# A job that ran this long before failing starts again from the shortest wait.
_HEALTHY_RUN_S = 30.0


async def supervise(name: str, job: Background, stop: asyncio.Event) -> None:
    """Run a long-lived job; when a database or broker error ends it, start it again.

    Without this, one terminated PostgreSQL connection in one background loop would end the
    whole process (the task group cancels its siblings); with it the job resumes after a backoff
    (doubling up to 5 s, with jitter) for as long as an outage lasts. An outage is a warning; any
    other database or broker error is logged as an error, and the job is restarted all the same.
    """
    clock = asyncio.get_running_loop().time
    failures = 0
    while not stop.is_set():
        started = clock()
        try:
            await job(stop)
            return
        except TRANSIENT as exc:
            failures = 1 if clock() - started > _HEALTHY_RUN_S else failures + 1
            if is_transient(exc):
                log.warning("background job lost a dependency; restarting it", job=name, error=repr(exc))
            else:
                log.error("background job failed; restarting it", job=name, error=repr(exc))
            if not await wait_backoff(stop, failures, base_s=0.5):
                return


def bind(host: str, port: int, service: str) -> socket.socket:
    """Bind a listening socket now, so a taken port fails at once with a clear message."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"{service}: cannot listen on {host}:{port} ({exc.strerror}); "
            f"stop what uses it or set {service.upper()}_PORT"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def topics_for(settings: Settings, services: list[str]) -> list[str]:
    """Every physical topic the given services need, dead-letter topics included."""
    names = [settings.topic(t) for t in REGISTRY]
    names += [dlq_topic(settings.group(s)) for s in services]
    return names


async def _ensure_topics(
    settings: Settings, services: list[str], topology: Mapping[str, ServiceTopics]
) -> None:
    if not settings.kafka_secured_protocol():
        await ensure_topics(settings, topics_for(settings, services), partitions=settings.kafka_partitions)
        return
    # A service's principal sees only its own topics: each checks those, as itself.
    for service in services:
        await ensure_topics(
            settings,
            kafka_acls.service_topics(settings, service, topology[service]),
            partitions=settings.kafka_partitions,
            service=service,
        )


async def _start_producers(
    stack: AsyncExitStack, settings: Settings, services: list[str]
) -> dict[str, AIOKafkaProducer]:
    """One producer per principal: one for the process, or one per service with its own login."""
    producers: dict[str, AIOKafkaProducer] = {}
    by_login: dict[tuple[str, str], AIOKafkaProducer] = {}
    for name in services:
        username, password = settings.kafka_login(name)
        login = (username, password.get_secret_value())
        if login not in by_login:
            producer = make_producer(settings, name)
            await producer.start()
            stack.push_async_callback(producer.stop)
            by_login[login] = producer
        producers[name] = by_login[login]
    return producers


async def run(
    settings: Settings,
    services: list[str],
    builders: Mapping[str, Builder],
    *,
    topology: Mapping[str, ServiceTopics],
    stop: asyncio.Event | None = None,
    on_ready: Callable[[dict[str, int]], None] | None = None,
) -> None:
    """Run `services` until SIGTERM/SIGINT or `stop`, then close everything in reverse order.

    `topology` (services/topology.py) names the topics each service reads and writes: on a secured
    broker each service checks those, as itself, before anything starts.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    for name in services:
        try:
            client_options(settings, name)  # a missing login or an unreadable CA file fails here, at once
        except (ValueError, OSError) as exc:
            raise StartupError(f"{name}: {exc}") from exc
    async with AsyncExitStack() as stack:
        sockets = {name: bind(settings.http_host, settings.port_for(name), name) for name in services}
        for sock in sockets.values():
            stack.callback(sock.close)
        try:
            pool = await create_pool(settings.database_url.get_secret_value(), max_size=8 * len(services))
        except (OSError, asyncpg.PostgresError) as exc:
            raise StartupError(f"cannot reach PostgreSQL: {exc!r}; is `careroute infra up` running?") from exc
        stack.push_async_callback(pool.close)
        try:
            await _ensure_topics(settings, services, topology)
        except TopicsRefused as exc:
            raise StartupError(str(exc)) from exc
        except KafkaError as exc:
            raise StartupError(
                f"cannot reach the broker at {settings.kafka_bootstrap_servers}: {exc!r}"
            ) from exc
        producers = await _start_producers(stack, settings, services)
        infra = Infra(settings=settings, pool=pool, producer=producers[services[0]])
        # Each service publishes (outbox, dead letters) through the producer of its own principal.
        parts = [builders[name](replace(infra, producer=producers[name])) for name in services]
        for part in parts:
            try:
                await migrate(pool, part.schema, [part.migrations])
            except MigrationError as exc:
                raise StartupError(f"{part.name}: {exc}") from exc
            if part.on_start is not None:
                try:
                    await part.on_start()
                except TopicsRefused as exc:  # notify's agency topics, on a secured broker
                    raise StartupError(f"{part.name}: {exc}") from exc
        for part in parts:
            if part.consumer is not None:
                if part.on_dead_letter is not None:
                    part.consumer.on_dead_letter = part.on_dead_letter
                await part.consumer.start()
                stack.push_async_callback(stop_quietly, part.consumer)

        workers_stop = asyncio.Event()
        servers = {
            p.name: Server(uvicorn.Config(p.app, log_config=None, lifespan="off", access_log=False))
            for p in parts
        }
        async with asyncio.TaskGroup() as tg:
            server_tasks = [tg.create_task(servers[p.name].serve(sockets=[sockets[p.name]])) for p in parts]
            for part in parts:
                relay = OutboxRelay(
                    pool,
                    part.schema,
                    producers[part.name],
                    settings.topic,
                    poll_interval_s=settings.outbox_poll_interval_s,
                    listening_poll_s=settings.outbox_poll_listening_s,
                    on_published=part.on_published,
                )
                tg.create_task(supervise(f"{part.name} outbox relay", relay.run, workers_stop))
                if part.consumer is not None:
                    tg.create_task(supervise(f"{part.name} consumer", part.consumer.run, workers_stop))
                for job in part.background:
                    tg.create_task(supervise(f"{part.name} {_name(job)}", job, workers_stop))
            ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}
            log.info("careroute running", services=services, ports=ports)
            if on_ready is not None:
                on_ready(ports)
            await stop.wait()
            log.info("shutting down: servers stop taking requests")
            for part in parts:
                if part.on_stop is not None:
                    await part.on_stop()
            for server in servers.values():
                server.should_exit = True
            await asyncio.gather(*server_tasks)
            # Then consumers finish their current record and commit, and the relays flush.
            workers_stop.set()
    log.info("careroute stopped")
