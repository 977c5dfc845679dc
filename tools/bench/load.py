"""A lean HTTP/1.1 load client: keep-alive connections over asyncio streams, bodies built beforehand.

httpx spends most of a core choosing a pooled connection at a few hundred requests a second, and
on a 2-core machine that core is taken from the system being measured. This client does only what
the benchmark needs: POST a prepared JSON body, read the status and the JSON answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any


class LoadClientError(Exception):
    """The server closed the connection or answered something this client cannot read."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise LoadClientError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                raise LoadClientError("chunked answers are not read by the load client")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            raise _Closed(status, body)
        return status, body

    def close(self) -> None:
        self.writer.close()


class _Closed(Exception):
    """A complete answer after which the server closes the connection."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class LoadClient:
    """Up to `connections` keep-alive connections to one host; `post` waits for a free one."""

    def __init__(self, host: str, port: int, connections: int, headers: dict[str, str]) -> None:
        self._host = host
        self._port = port
        self._size = connections
        self._opened = 0
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())

    def request(self, path: str, body: bytes) -> bytes:
        """The bytes of one POST with a JSON body (built before the clock starts)."""
        return (
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def _take(self) -> _Connection:
        if self._idle.empty() and self._opened < self._size:
            self._opened += 1
            try:
                reader, writer = await asyncio.open_connection(self._host, self._port)
            except OSError as exc:
                self._opened -= 1
                raise LoadClientError(f"cannot connect: {exc}") from exc
            return _Connection(reader, writer)
        return await self._idle.get()

    async def send(self, request: bytes) -> tuple[int, Any]:
        """Send a prepared request; the status and the decoded JSON answer (None when empty).

        Raises LoadClientError when the request got no complete answer.
        """
        conn = await self._take()
        try:
            status, body = await conn.exchange(request)
        except _Closed as closed:
            conn.close()
            self._opened -= 1
            status, body = closed.status, closed.body
        except (OSError, asyncio.IncompleteReadError, LoadClientError, ValueError, IndexError) as exc:
            conn.close()
            self._opened -= 1
            raise LoadClientError(str(exc) or type(exc).__name__) from exc
        else:
            self._idle.put_nowait(conn)
        return status, json.loads(body) if body else None

    async def paced(
        self, requests: Sequence[bytes], rate: float, answered: Callable[[int, Any], None]
    ) -> int:
        """Send `requests` at `rate` a second on the schedule, each without waiting for the ones
        before it (an open loop, as 911 centers call); `answered(status, body)` hears each answer.
        Returns how many got none (reported, not hidden: an overloaded server dropped them)."""
        failed = 0

        async def one(request: bytes) -> None:
            nonlocal failed
            try:
                status, body = await self.send(request)
            except LoadClientError:
                failed += 1
                return
            answered(status, body)

        start = time.perf_counter()
        tasks = []
        for n, request in enumerate(requests):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request)))
        await asyncio.gather(*tasks)
        return failed

    async def aclose(self) -> None:
        """Close every idle connection."""
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            conn.close()
            self._opened -= 1
