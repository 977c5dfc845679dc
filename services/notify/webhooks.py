"""Signed webhooks to agencies: Standard Webhooks signatures, retries with backoff, in order per call."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import structlog
from standardwebhooks.webhooks import Webhook

from services.notify import delivery, domain, repository
from services.notify.settings import NotifySettings
from shared.events import LifeSign
from shared.waits import serve_queue

log = structlog.get_logger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
# An HTTP verdict, or "refused": the URL may not be called at all (never retried).
Verdict = Literal["delivered", "gone", "retry", "refused"]


class AddressRefused(Exception):
    """The webhook URL is not one notify may call (scheme, or a private address without consent)."""


def signer(secret: str) -> Webhook:
    """The Standard Webhooks signer of an agency secret: `whsec_<base64>` as the spec writes it,
    otherwise the secret's UTF-8 bytes are the key."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def signed_headers(secret: str, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The headers of one signed message: webhook-id, webhook-timestamp and webhook-signature."""
    timestamp = int(now.timestamp())
    signature = signer(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/cloudevents+json",
    }


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Target:
    """Where one webhook request goes: the address that was checked, so DNS cannot change it after."""

    url: str
    host: str
    sni_hostname: str | None


async def check_url(url: str, allow_private: bool, resolver: Resolver = resolve) -> Target:
    """The checked target of a URL; AddressRefused when it is not http(s) or reaches a loopback,
    private or reserved address (OSError when its name cannot be resolved now: try again later)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"webhook URL must be http(s) with a host: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolver(parts.hostname, port)
    refused = [a for a in addresses if not domain.address_allowed(a, allow_private)]
    if refused or not addresses:
        raise AddressRefused(
            f"webhook address not allowed: {parts.hostname} resolves to {refused or 'nothing'}"
            " (loopback, private and reserved addresses need allow_private in the jurisdiction file)"
        )
    # Connect to the address just checked (a second lookup could answer differently), and keep
    # the name for the Host header and for TLS (SNI and certificate check).
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
    host = parts.netloc.rpartition("@")[2]
    return Target(pinned, host, parts.hostname if parts.scheme == "https" else None)


class WebhookSender:
    """Sends queued webhook messages until each is taken, refused for good, or out of time."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotifySettings,
        *,
        resolver: Resolver = resolve,
        jitter: Callable[[], float] = random.random,
        on_delivered: Callable[[str, LifeSign], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        # A 2xx is the agency's sign of life (told after the transaction that records it).
        self._on_delivered = on_delivered
        self._settings = settings
        self._resolver = resolver
        self._jitter = jitter

    async def run(self, stop: asyncio.Event) -> None:
        """Send due messages until `stop`: woken by the NOTIFY of the transaction that queued one,
        else asleep until the next retry falls due (`shared.waits.serve_queue`)."""
        async with httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_s, follow_redirects=False, trust_env=False
        ) as http:
            await serve_queue(
                self._pool,
                repository.WEBHOOKS_CHANNEL,
                stop,
                work=partial(self.send_due, http),
                next_due_in_s=partial(repository.next_webhook_due_in_s, self._pool),
                poll_s=self._settings.webhook_poll_s,
                failed=lambda exc: log.warning("webhook sender failed; will retry", error=repr(exc)),
            )

    async def send_due(self, http: httpx.AsyncClient) -> int:
        """One pass: attempt every due message that heads its call's queue; return how many."""
        lease = self._settings.webhook_timeout_s + 5
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await repository.lease_webhooks(conn, lease, 50)
        await asyncio.gather(*(self._attempt(http, row) for row in rows))
        return len(rows)

    async def _attempt(self, http: httpx.AsyncClient, row: repository.LeasedWebhook) -> None:
        error: str | None = None
        verdict: Verdict = "retry"
        try:
            if row.webhook_disabled_at is not None:
                raise AddressRefused("endpoint disabled after it answered 410")
            target = await check_url(row.webhook_url, row.webhook_allow_private, self._resolver)
            body = bytes(row.body)
            headers = signed_headers(row.webhook_secret, str(row.notification_id), body, datetime.now(UTC))
            answer = await http.post(
                target.url,
                content=body,
                headers={**headers, "host": target.host},
                extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else None,
            )
            verdict = domain.webhook_verdict(answer.status_code)
            if verdict != "delivered":
                error = f"HTTP {answer.status_code}"
        except AddressRefused as exc:
            verdict, error = "refused", str(exc)
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._settle(row, verdict, error)

    async def _settle(self, row: repository.LeasedWebhook, verdict: Verdict, error: str | None) -> None:
        if verdict == "delivered":
            async with self._pool.acquire() as conn, conn.transaction():
                await repository.finish_webhook(conn, row.id, "delivered", None)
                await delivery.record(conn, await _notice(conn, row))
            if self._on_delivered is not None:
                await self._on_delivered(row.agency_id, "webhook")
            return
        attempt = int(row.attempts)
        async with self._pool.acquire() as conn, conn.transaction():
            notice = await _notice(conn, row)
            assert error is not None
            age = (datetime.now(UTC) - row.created_at).total_seconds()
            delay = domain.backoff_s(
                attempt,
                self._settings.webhook_backoff_base_s,
                self._settings.webhook_backoff_max_s,
                self._jitter(),
            )
            if verdict == "retry" and age + delay < self._settings.webhook_retry_for_s:
                await repository.finish_webhook(conn, row.id, "pending", error, delay)
                await delivery.record(conn, notice, error, will_retry=True)
                return
            await repository.finish_webhook(conn, row.id, "failed", error)
            await delivery.record(conn, notice, error)
            if verdict == "gone":
                for other in await repository.disable_webhook(conn, row.agency_id):
                    await delivery.record(conn, await _notice(conn, other), "endpoint disabled after 410")
        # An alert: the agency was not told through this channel (the metric counts it too).
        log.error(
            "webhook delivery failed",
            agency_id=row.agency_id,
            call_id=str(row.call_id),
            notification_id=str(row.notification_id),
            attempts=attempt,
            error=error,
            endpoint_disabled=verdict == "gone",
        )


async def _notice(conn: asyncpg.Connection, row: repository.WebhookMessage) -> delivery.Notice:
    assignment = await repository.get(conn, str(row.assignment_id))
    correlation = assignment.correlation if assignment else str(row.call_id)
    return delivery.Notice.of_webhook(row, correlation)
