"""The PSAP credentials and triage settings every call reads, kept in memory while PostgreSQL can
say they changed: a trigger on their tables sends a NOTIFY at each write (migration 011)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import asyncpg

from services.intake import repository
from shared.waits import Listener, first_of

CHANNEL = "intake_settings"
Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Remembered:
    """A token's credential row and a PSAP's triage setting, read once and then kept.

    Only while `run` listens: each NOTIFY on CHANNEL, each loss of the listening connection and
    each `kept_for_s` without one forget everything. A revoked token or a new rule set is so used
    no longer than its NOTIFY takes to arrive (the commit's, milliseconds), and a change whose
    NOTIFY went with a connection that died unnoticed no longer than `kept_for_s`. A read that a
    change overtook is not kept. An unknown token is never kept (a spray of them cannot fill
    memory): each is read, as before.
    """

    def __init__(self, pool: asyncpg.Pool, kept_for_s: float = 5.0) -> None:
        self._pool = pool
        self._kept_for_s = kept_for_s
        self._live = False
        self._generation = 0
        self._credentials: dict[bytes, repository.CredentialRow] = {}
        self._settings: dict[str, repository.TriageSetting] = {}

    def forget(self) -> None:
        """Drop everything kept; reads in flight are not kept either."""
        self._generation += 1
        self._credentials.clear()
        self._settings.clear()

    async def credential(self, token_sha256: bytes) -> repository.CredentialRow | None:
        """`repository.credential`, kept while nothing changed."""
        return await self._read(
            self._credentials, token_sha256, lambda: repository.credential(self._pool, token_sha256)
        )

    async def triage_setting(self, conn: asyncpg.Connection, psap_id: str) -> repository.TriageSetting:
        """`repository.triage_setting`, kept while nothing changed."""
        setting = await self._read(self._settings, psap_id, lambda: repository.triage_setting(conn, psap_id))
        assert setting is not None
        return setting

    async def _read(
        self, kept: dict[Key, Value], key: Key, read: Callable[[], Awaitable[Value | None]]
    ) -> Value | None:
        found = kept.get(key) if self._live else None
        if found is not None:
            return found
        generation = self._generation
        value = await read()
        if value is not None and self._live and generation == self._generation:
            kept[key] = value
        return value

    async def run(self, stop: asyncio.Event) -> None:
        """The background job: listen on CHANNEL until `stop`, forgetting at each NOTIFY (as asyncpg
        hands it over, before any request can read again), at each wake and each loss."""
        listener = Listener(self._pool, CHANNEL, on_payload=lambda _table: self.forget())
        try:
            while not stop.is_set():
                live = await listener.listening()
                # No await between these: a NOTIFY that came while listening again is forgotten for.
                listener.woken.clear()
                self.forget()
                self._live = live
                await first_of(stop, listener.woken, timeout_s=self._kept_for_s if live else 1.0)
        finally:
            self._live = False
            self.forget()
            await listener.close()
