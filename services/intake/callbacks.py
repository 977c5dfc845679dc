"""Status callbacks to the PSAP: signed, retried with backoff, in order per call, delivered or failed;
one that fails for good is an event in the trail, a metric and an alert to the PSAP's supervisor."""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import asyncpg
import httpx
import structlog
from prometheus_client import Counter

from services.intake import repository, signatures
from services.intake.repository import SCHEMA, DueAlert, DueCallback
from services.intake.settings import IntakeSettings
from shared import events, topics
from shared.envelope import new_event, utcnow
from shared.outbox import enqueue
from shared.waits import serve_queue

log = structlog.get_logger(__name__)
CHANNEL = "intake_callbacks"
ALERTS_CHANNEL = "intake_alerts"
SERVICE = "intake"

CALLBACKS_FAILED = Counter(
    "careroute_callbacks_failed_total",
    "Status callbacks to a PSAP that failed for good (each one is an alert)",
    ["psap"],
)


@dataclass(frozen=True)
class Attempt:
    """How one POST went: None when delivered, else the error (kept in the queue's row) and its class."""

    error: str | None = None
    error_class: events.CallbackErrorClass | None = None


def _status_class(status: int) -> events.CallbackErrorClass:
    if 400 <= status < 500:
        return "http_4xx"
    return "http_5xx" if status >= 500 else "http_other"


def _exception_class(exc: httpx.HTTPError | httpx.InvalidURL) -> events.CallbackErrorClass:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "invalid_url"
    return "transport"


async def post_signed(
    http: httpx.AsyncClient, url: str, secret: str | None, msg_id: str, payload: dict[str, Any]
) -> Attempt:
    """POST `payload` as JSON, signed with Standard Webhooks headers when the PSAP has a secret."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if secret:
        headers |= signatures.sign(secret, msg_id, utcnow(), body)
    else:
        headers["webhook-id"] = msg_id
    try:
        answer = await http.post(url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Attempt(f"{type(exc).__name__}: {exc}"[:500], _exception_class(exc))
    if answer.is_success:
        return Attempt()
    return Attempt(f"HTTP {answer.status_code}", _status_class(answer.status_code))


class Queued(Protocol):
    """What a sender reads of a queued row."""

    @property
    def id(self) -> int: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def attempts(self) -> int: ...
    @property
    def signing_secret(self) -> str | None: ...


R = TypeVar("R", bound=Queued)


class _Sender(ABC, Generic[R]):
    """A queue of signed POSTs to PSAPs, delivered by one background job across intake replicas."""

    lock: ClassVar[str]
    channel: ClassVar[str]
    queue: ClassVar[repository.Queue]
    msg_prefix: ClassVar[str]  # webhook-id is this and the row's id: the same on every retry

    def __init__(self, pool: asyncpg.Pool, settings: IntakeSettings) -> None:
        self._pool = pool
        self._settings = settings

    def backoff_s(self, attempts: int) -> float:
        """How long to wait after `attempts` failed attempts."""
        s = self._settings
        return float(min(s.callback_retry_max_s, s.callback_retry_base_s * 2 ** (attempts - 1)))

    @property
    @abstractmethod
    def _max_attempts(self) -> int: ...

    @abstractmethod
    def _url(self, row: R) -> str | None: ...

    @abstractmethod
    async def _due(self, conn: asyncpg.Connection) -> Sequence[R]: ...

    @abstractmethod
    async def _failed(self, row: R, outcome: Attempt, attempts: int) -> None:
        """Record that `row` failed for good after `attempts`."""

    async def _attempt(self, http: httpx.AsyncClient, row: R) -> None:
        attempts = row.attempts + 1
        url = self._url(row)
        if not url:
            # The PSAP's URL was removed after this was queued: nothing can deliver it.
            outcome = Attempt(f"the PSAP has no URL for {self.queue}", "no_callback_url")
            attempts = self._max_attempts
        else:
            outcome = await post_signed(
                http, url, row.signing_secret, f"{self.msg_prefix}_{row.id}", row.payload
            )
        if outcome.error is not None and attempts >= self._max_attempts:
            await self._failed(row, outcome, attempts)
            return
        async with self._pool.acquire() as conn:
            if outcome.error is None:
                await repository.finish_delivery(conn, row.id, "delivered", None, self.queue)
            else:
                await repository.retry_delivery(
                    conn, row.id, self.backoff_s(attempts), outcome.error, self.queue
                )

    async def deliver_once(self, http: httpx.AsyncClient) -> int:
        """Attempt every due row of the queue; return how many were attempted (a session advisory
        lock keeps one sender of each queue active across intake replicas)."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.lock):
                return 0
            try:
                due = await self._due(conn)
                await asyncio.gather(*(self._attempt(http, row) for row in due))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.lock)
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, woken by NOTIFY from the queuing transaction, else asleep
        until the next retry falls due (`shared.waits.serve_queue`)."""
        async with httpx.AsyncClient(timeout=self._settings.callback_timeout_s) as http:
            await serve_queue(
                self._pool,
                self.channel,
                stop,
                work=partial(self.deliver_once, http),
                next_due_in_s=self._next_due_in_s,
                poll_s=self._settings.callback_poll_s,
                failed=self._database_away,
            )

    async def _next_due_in_s(self) -> float | None:
        async with self._pool.acquire() as conn:
            return await repository.next_due_in_s(conn, self.queue)

    def _database_away(self, exc: Exception) -> None:
        log.warning("delivery: database unavailable; retrying", queue=self.lock, error=repr(exc))


class CallbackSender(_Sender[DueCallback]):
    """Delivers the status callbacks queue; a background job of intake.

    Only the oldest pending callback of a call is ever attempted, so a later status can never
    overtake an earlier one that is still being retried.
    """

    lock = "intake:callbacks"
    channel = CHANNEL
    queue = "callbacks"
    msg_prefix = "cb"

    @property
    def _max_attempts(self) -> int:
        return self._settings.callback_max_attempts

    def _url(self, row: DueCallback) -> str | None:
        return row.callback_url

    async def _due(self, conn: asyncpg.Connection) -> Sequence[DueCallback]:
        return await repository.due_callbacks(conn)

    async def _failed(self, row: DueCallback, outcome: Attempt, attempts: int) -> None:
        """Record the failure, its event and the supervisor's alert in one transaction: the PSAP
        missed a status, and someone who can act must learn it even if intake stops right after."""
        assert outcome.error is not None and outcome.error_class is not None
        failed = events.CallbackFailed(
            call_id=str(row.call_id),
            psap_id=row.psap_id,
            status=str(row.payload.get("status")),
            unit_status=str(row.payload.get("unitStatus")),
            attempts=attempts,
            error_class=outcome.error_class,
        )
        event = new_event(topics.CALLS_CALLBACK_FAILED, SERVICE, str(row.call_id), failed)
        if isinstance(cause := row.payload.get("event_id"), str):
            event = event.model_copy(update={"causationid": cause})  # the step the PSAP was not told
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.finish_delivery(conn, row.id, "failed", outcome.error)
            await enqueue(conn, SCHEMA, event)
            if row.supervisor_url:
                alert = failed.model_dump(mode="json") | {
                    "type": "call.callback_failed",
                    "external_id": row.payload.get("external_id"),
                    "at": event.time.isoformat(),
                    "event_id": str(event.id),
                }
                await repository.enqueue_alert(conn, row, alert)
        CALLBACKS_FAILED.labels(psap=row.psap_id).inc()
        log.error(
            "status callback failed for good",
            callback=row.id,
            call=str(row.call_id),
            psap=row.psap_id,
            error_class=outcome.error_class,
            supervisor_alerted=bool(row.supervisor_url),
        )


class AlertSender(_Sender[DueAlert]):
    """Delivers the alerts to PSAPs' supervisor channels; a background job of its own, so a slow or
    dead supervisor endpoint never holds up a status callback."""

    lock = "intake:supervisor_alerts"
    channel = ALERTS_CHANNEL
    queue = "supervisor_alerts"
    msg_prefix = "alert"

    @property
    def _max_attempts(self) -> int:
        return self._settings.supervisor_max_attempts

    def _url(self, row: DueAlert) -> str | None:
        return row.supervisor_url

    async def _due(self, conn: asyncpg.Connection) -> Sequence[DueAlert]:
        return await repository.due_alerts(conn)

    async def _failed(self, row: DueAlert, outcome: Attempt, attempts: int) -> None:
        log.error("supervisor alert failed for good", alert=row.id, call=str(row.call_id))
        async with self._pool.acquire() as conn:
            await repository.finish_delivery(conn, row.id, "failed", outcome.error, self.queue)
