"""Status callbacks to the PSAP: signed, retried with backoff, in order per call, delivered or failed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
import httpx
import structlog

from services.intake import repository, signatures
from services.intake.settings import IntakeSettings
from shared.envelope import utcnow

log = structlog.get_logger(__name__)
CHANNEL = "intake_callbacks"


class CallbackSender:
    """Delivers the callbacks queue; the background job of intake."""

    def __init__(self, pool: asyncpg.Pool, settings: IntakeSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._wake = asyncio.Event()

    def backoff_s(self, attempts: int) -> float:
        """How long to wait after `attempts` failed attempts."""
        s = self._settings
        return float(min(s.callback_retry_max_s, s.callback_retry_base_s * 2 ** (attempts - 1)))

    async def deliver_once(self, http: httpx.AsyncClient) -> int:
        """Attempt every due callback that heads its call's queue; return how many were attempted.

        Only the oldest pending callback of a call is ever attempted, so a later status can never
        overtake an earlier one that is still being retried. A session advisory lock keeps one
        sender active across intake replicas.
        """
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('intake:callbacks'))"):
                return 0
            try:
                due = await repository.due_callbacks(conn)
                await asyncio.gather(*(self._attempt(http, row) for row in due))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('intake:callbacks'))")
        return len(due)

    async def _attempt(self, http: httpx.AsyncClient, row: repository.DueCallback) -> None:
        body = json.dumps(row.payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        msg_id = f"cb_{row.id}"
        if row.signing_secret:
            headers |= signatures.sign(row.signing_secret, msg_id, utcnow(), body)
        else:
            headers["webhook-id"] = msg_id
        error: str | None = None
        attempts = row.attempts + 1
        if not row.callback_url:
            # The PSAP's callback URL was removed after this was queued: nothing can deliver it.
            error, attempts = "the PSAP has no callback URL", self._settings.callback_max_attempts
        else:
            try:
                answer = await http.post(row.callback_url, content=body, headers=headers)
                if not answer.is_success:
                    error = f"HTTP {answer.status_code}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        async with self._pool.acquire() as conn:
            if error is None:
                await repository.finish_callback(conn, row.id, "delivered", None)
            elif attempts >= self._settings.callback_max_attempts:
                log.error(
                    "status callback failed for good",
                    callback=row.id,
                    call=str(row.call_id),
                    error=error,
                )
                await repository.finish_callback(conn, row.id, "failed", error)
            else:
                await repository.retry_callback(conn, row.id, self.backoff_s(attempts), error)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, woken by NOTIFY from the status change and by a periodic poll."""
        listener = await self._pool.acquire()
        await listener.add_listener(CHANNEL, self._on_notify)
        try:
            async with httpx.AsyncClient(timeout=self._settings.callback_timeout_s) as http:
                while not stop.is_set():
                    self._wake.clear()
                    try:
                        attempted = await self.deliver_once(http)
                    except (OSError, asyncpg.PostgresError) as exc:
                        log.warning("status callbacks: database unavailable; retrying", error=repr(exc))
                        attempted = 0
                    if attempted:
                        continue  # the next callback of each call may be due at once
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake_or(stop), timeout=self._settings.callback_poll_s)
        finally:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await listener.remove_listener(CHANNEL, self._on_notify)
            await self._pool.release(listener)

    async def _wake_or(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
