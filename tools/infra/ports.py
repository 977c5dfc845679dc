"""Loopback ports: find free ones, refuse taken ones, and check that a Kafka broker answers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from tools.infra.procs import wait_until
from tools.infra.state import InfraError

HOST = "127.0.0.1"

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Return True if a server could listen on 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def ensure_port_free(port: int, what: str, env_var: str) -> None:
    """Raise InfraError at once if 127.0.0.1:port is taken."""
    if not 0 < port < 65536:
        raise InfraError(f"port {port} for {what} is not a valid TCP port; set {env_var}")
    if not port_is_free(port):
        raise InfraError(
            f"port {port} ({what}) is taken by another process; set {env_var} to another port "
            f"or stop that process (`ss -ltnp 'sport = :{port}'` shows which)"
        )


def tcp_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Return True if host:port accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_coro(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _list_topics(bootstrap: str, seconds: float, options: Mapping[str, Any] | None) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1000, int(seconds * 1000)),
        client_id="careroute-infra-check",
        **(options or {}),
    )
    try:
        async with asyncio.timeout(seconds):
            await admin.start()
            await admin.list_topics()
    finally:
        await admin.close()


def probe_error(factory: Callable[[], Coroutine[Any, Any, None]]) -> str | None:
    """Run a readiness probe; None if it succeeded, else the error text."""
    try:
        run_coro(factory)
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering yet"
        return f"{type(exc).__name__}: {exc}"
    return None


def kafka_error(bootstrap: str, timeout: float = 5.0, options: Mapping[str, Any] | None = None) -> str | None:
    """Send a metadata request (logged in with `options`); None if the broker answered, else the error."""
    return probe_error(lambda: _list_topics(bootstrap, timeout, options))


def wait_for_kafka(
    port: int, *, timeout: float, alive: Callable[[], bool], options: Mapping[str, Any] | None = None
) -> tuple[str, str | None]:
    """Wait until a broker on 127.0.0.1:port answers metadata: (outcome, last error) as wait_until."""
    bootstrap = f"{HOST}:{port}"
    last_error: list[str | None] = ["port not open yet"]

    def answers() -> bool:
        # A cheap TCP probe first keeps the Kafka client from logging a failure per attempt.
        if not tcp_open(port):
            return False
        last_error[0] = kafka_error(bootstrap, options=options)
        return last_error[0] is None

    return wait_until(answers, timeout=timeout, alive=alive, interval=0.1), last_error[0]
