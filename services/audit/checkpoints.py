"""Signed tree heads: the signing key, checkpoints every N events or T seconds, and proofs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import time
from collections.abc import Callable

import asyncpg
import structlog

from services.audit import merkle, repository
from services.audit.note import Checkpoint, NoteError, Signer, VerifierKey, open_checkpoint
from services.audit.settings import AuditSettings
from shared.waits import Listener, first_of

log = structlog.get_logger(__name__)


class Checkpointer:
    """Signs the tree head when N events or T seconds have passed since the last checkpoint."""

    def __init__(self, pool: asyncpg.Pool, settings: AuditSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._signer: Signer | None = None
        self._last_at = time.monotonic()

    @property
    def signer(self) -> Signer:
        """The signing key (after start())."""
        if self._signer is None:
            raise RuntimeError("the checkpointer has not started")
        return self._signer

    @property
    def key(self) -> VerifierKey:
        """The public key oversight bodies verify checkpoints with."""
        return self.signer.verifier()

    async def start(self) -> None:
        """Load the configured key, or the stored development key (generated the first time)."""
        name = self._settings.log_origin
        if self._settings.signing_key is not None:
            try:
                seed = base64.b64decode(self._settings.signing_key.get_secret_value(), validate=True)
            except binascii.Error as exc:
                raise NoteError("AUDIT_SIGNING_KEY is not base64") from exc
            if len(seed) != 32:
                raise NoteError("AUDIT_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed")
        else:
            async with self._pool.acquire() as conn:
                seed = await repository.dev_seed(conn, os.urandom(32))
            log.warning("AUDIT_SIGNING_KEY is not set: signing checkpoints with a generated development key")
        self._signer = Signer.from_seed(name, seed)

    async def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign the current tree head if it is due (or `force`) and grew; returns the new checkpoint."""
        async with self._pool.acquire() as conn, conn.transaction():
            size, root = await repository.tree_head(conn)
            latest = await repository.latest_checkpoint(conn)
            signed_size = latest.tree_size if latest else 0
            due = size - signed_size >= self._settings.checkpoint_every or (
                time.monotonic() - self._last_at >= self._settings.checkpoint_interval_s
            )
            if size <= signed_size or not (due or force):
                return None
            head = Checkpoint(self._settings.log_origin, size, root)
            await repository.act_as_writer(conn)
            await repository.add_checkpoint(conn, size, root, self.signer.sign(head.text()))
        self._last_at = time.monotonic()
        return head

    async def run(self, stop: asyncio.Event) -> None:
        """Sign due checkpoints until `stop`: checked when the trail grew (the appending
        transaction's NOTIFY, at most every half second) and when the interval comes due; a trail
        that does not grow is not looked at more often than the interval (every half second while
        not listening)."""
        interval = self._settings.checkpoint_interval_s
        poll = min(0.5, interval)
        listener = Listener(self._pool, repository.APPENDED_CHANNEL)
        try:
            while not stop.is_set():
                listening = await listener.listening()
                listener.woken.clear()
                checked = time.monotonic()
                try:
                    await self.checkpoint()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("checkpoint failed; will retry", error=repr(exc))
                since = checked - self._last_at
                until_due = interval - since if since < interval else interval
                await first_of(listener.woken, stop, timeout_s=max(poll, until_due) if listening else poll)
                if (rest := poll - (time.monotonic() - checked)) > 0:
                    await first_of(stop, timeout_s=rest)
        finally:
            await listener.close()

    async def kept(self, conn: asyncpg.Connection) -> tuple[dict[int, bytes], list[str]]:
        """Tree size -> root of the stored checkpoints that verify with our key, and why others do not."""
        heads: dict[int, bytes] = {}
        refused: list[str] = []
        for note in await repository.checkpoint_notes(conn):
            try:
                head = open_checkpoint(note, self.key)
            except NoteError as exc:
                refused.append(str(exc))
                continue
            heads[head.size] = head.root
        return heads, refused


class MissingNodes(LookupError):
    """The tree nodes a proof needs are not stored (rows older than the tree_nodes table)."""


async def _prove(conn: asyncpg.Connection, proof: Callable[[merkle.Nodes], list[bytes]]) -> list[bytes]:
    stored = await repository.nodes(conn, merkle.needed_nodes(proof))

    def lookup(level: int, index: int) -> bytes:
        try:
            return stored[(level, index)]
        except KeyError:
            raise MissingNodes(f"tree node {level}/{index} is not stored") from None

    return proof(lookup)


async def inclusion(conn: asyncpg.Connection, seq: int, size: int) -> list[bytes]:
    """The inclusion proof of row `seq` in the tree of `size` rows."""
    return await _prove(conn, lambda nodes: merkle.inclusion_path(seq - 1, size, nodes))


async def consistency(conn: asyncpg.Connection, size1: int, size2: int) -> list[bytes]:
    """The consistency proof from the tree of `size1` rows to `size2` rows."""
    return await _prove(conn, lambda nodes: merkle.consistency_path(size1, size2, nodes))
