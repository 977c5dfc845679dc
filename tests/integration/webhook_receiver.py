"""A local HTTP server standing in for agencies' webhook endpoints, with an independent Standard
Webhooks verifier written from the spec (not notify's own signer)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.support import eventually
from tools.infra import free_port

SPEC_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
PLAIN_SECRET = "a-plain-agency-secret-of-some-length"


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, written from the spec: HMAC-SHA256 over `id.timestamp.body`."""
    key = base64.b64decode(secret[len("whsec_") :]) if secret.startswith("whsec_") else secret.encode()
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return any(hmac.compare_digest(sig, f"v1,{expected}") for sig in headers["webhook-signature"].split(" "))


@dataclass
class Seen:
    """One request the test server received, and what it answered."""

    agency: str
    msg_id: str
    kind: str
    assignment_id: str
    signed: bool
    status: int
    host: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Receiver:
    """A local HTTP server standing in for agencies' webhook endpoints."""

    secrets: dict[str, str]
    fail_first: dict[str, int]
    always: dict[str, int]
    held: set[str] = field(default_factory=set)  # answered 503 until released
    stall: set[str] = field(default_factory=set)  # the first try of each message gets no answer in time
    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)
    arrivals: dict[str, int] = field(default_factory=dict)  # requests per webhook-id, counted on arrival

    def url(self, agency: str) -> str:
        # One agency is named by host name: notify resolves it, checks it, and connects to that address.
        host = "localhost" if agency == "plain" else "127.0.0.1"
        return f"http://{host}:{self.port}/hook/{agency}"

    def answered(self, agency: str, status: int = 200) -> list[Seen]:
        return [s for s in self.seen if s.agency == agency and s.status == status]

    async def taken(self, agency: str) -> list[Seen]:
        """The requests of `agency` answered 200 so far (a probe for `eventually`)."""
        return self.answered(agency)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        agency = scope["path"].rsplit("/", 1)[-1]
        data = json.loads(body)["data"]
        tries = self.arrivals.get(headers["webhook-id"], 0)
        self.arrivals[headers["webhook-id"]] = tries + 1
        if agency in self.stall and tries == 0:
            await asyncio.sleep(3)  # far past notify's webhook timeout in this module
        failing = tries < self.fail_first.get(agency, 0) or agency in self.held
        status = self.always.get(agency, 503 if failing else 200)
        signed = verify(self.secrets[agency], headers, body)
        # A liveness ping names no assignment.
        msg_id, kind, assignment_id = headers["webhook-id"], data["kind"], data.get("assignment_id", "")
        self.seen.append(Seen(agency, msg_id, kind, assignment_id, signed, status, headers["host"], data))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Run `receiver` on its loopback port until the block ends."""
    config = uvicorn.Config(receiver, host="127.0.0.1", port=receiver.port, log_config=None, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, bool, what="the test server")
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
