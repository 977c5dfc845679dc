"""The trail in real PostgreSQL: the database refuses changes, and a superuser's tampering is found."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.audit import checkpoints, domain, handlers, merkle
from services.audit.checkpoints import Checkpointer
from services.audit.note import open_checkpoint
from services.audit.settings import AuditSettings
from shared.db import create_pool, migrate
from shared.settings import Settings
from tests.audit_scenario import scenario

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).parents[2] / "services" / "audit" / "migrations"
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url.get_secret_value())
    await migrate(pool, "audit", [MIGRATIONS])
    yield pool
    await pool.close()


@pytest.fixture
async def trail(pool: asyncpg.Pool) -> Checkpointer:
    """Twenty rows appended as the consumer appends them, with checkpoints at 6, 12 and 20."""
    checkpointer = Checkpointer(pool, AuditSettings(signing_key=KEY, checkpoint_every=6))
    await checkpointer.start()
    for n, event in enumerate(scenario(), 1):
        async with pool.acquire() as conn, conn.transaction():
            await handlers.on_any_event(conn, event, None)
        if n in (6, 12, 20):
            assert (await checkpointer.checkpoint()) is not None
    return checkpointer


async def verify(pool: asyncpg.Pool, checkpointer: Checkpointer, first: int = 1, last: int | None = None):
    return await handlers.verify(pool, checkpointer, first, last)


async def tamper(pool: asyncpg.Pool, *statements: str) -> None:
    """Run SQL as the superuser with the append-only trigger switched off, as an insider could."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER USER")
        for sql in statements:
            await conn.execute(sql)
        await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER USER")


async def test_an_untouched_trail_verifies_whole_and_by_range(pool, trail):
    whole = await verify(pool, trail)
    assert whole["ok"] and whole["checked"] == 20 and whole["checkpoints_checked"] == 3, whole
    part = await verify(pool, trail, 5, 9)
    assert part["ok"] and part["checked"] == 5 and part["range"] == [5, 9], part


async def test_the_writer_role_may_insert_and_read_but_not_change_or_remove(pool, trail):
    async with pool.acquire() as conn:
        for sql in (
            "UPDATE audit.events SET type = 'x' WHERE seq = 1",
            "DELETE FROM audit.events WHERE seq = 1",
            "TRUNCATE audit.events",
            "UPDATE audit.checkpoints SET note = 'x'",
            "DELETE FROM audit.checkpoints",
        ):
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE audit_writer")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE audit_writer")
            assert await conn.fetchval("SELECT count(*) FROM audit.events") == 20


async def test_even_the_superuser_is_refused_by_the_trigger(pool, trail):
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        for sql in (
            "UPDATE audit.events SET type = 'x' WHERE seq = 1",
            "DELETE FROM audit.events WHERE seq = 1",
            "TRUNCATE audit.events",
            "DELETE FROM audit.checkpoints",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)


async def test_one_edited_row_is_found_at_its_seq(pool, trail):
    await tamper(
        pool,
        "UPDATE audit.events SET envelope = jsonb_set(envelope, '{data,psap_id}', '\"x\"') WHERE seq = 7",
    )
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 7), result
    assert "content changed" in result["reason"]


async def test_an_edited_public_view_is_found_too(pool, trail):
    await tamper(
        pool,
        "UPDATE audit.events SET public_event = jsonb_set(public_event, '{type}', '\"x\"') WHERE seq = 4",
    )
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 4), result


async def test_one_deleted_row_is_a_gap_at_its_seq(pool, trail):
    await tamper(pool, "DELETE FROM audit.events WHERE seq = 9")
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 9), result
    assert "gap" in result["reason"]


async def test_two_swapped_rows_are_a_reorder_at_the_first(pool, trail):
    await tamper(
        pool,
        "UPDATE audit.events SET seq = -1 WHERE seq = 10",
        "UPDATE audit.events SET seq = 10 WHERE seq = 11",
        "UPDATE audit.events SET seq = 11 WHERE seq = -1",
    )
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 10), result
    assert "out of order" in result["reason"]


async def test_a_dropped_tail_is_found_against_the_kept_checkpoint(pool, trail):
    # The insider also moves the head back, so only the signed checkpoint of size 20 remembers.
    await tamper(
        pool,
        "DELETE FROM audit.events WHERE seq > 16",
        "UPDATE audit.chain_head SET seq = 16, hash = (SELECT row_hash FROM audit.events WHERE seq = 16)",
    )
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 17), result
    assert "truncated below a checkpoint" in result["reason"]


async def test_a_rewrite_of_everything_is_a_fork_against_the_checkpoints(pool, trail):
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seq, recorded_at, public_event, nonce, envelope FROM audit.events ORDER BY seq"
        )
    prev, statements = domain.GENESIS, []
    for r in rows:
        envelope = r["envelope"]
        envelope["data"]["psap_id"] = "rewritten"
        public = domain.redact(envelope)
        sealed = domain.seal(bytes(r["nonce"]), envelope)
        h = domain.row_hash(prev, r["seq"], r["recorded_at"].isoformat(), public, sealed)
        statements.append(
            f"UPDATE audit.events SET envelope = '{json.dumps(envelope)}'::jsonb,"
            f" public_event = '{json.dumps(public)}'::jsonb, prev_hash = '\\x{prev.hex()}',"
            f" row_hash = '\\x{h.hex()}' WHERE seq = {r['seq']}"
        )
        prev = h
    statements.append(f"UPDATE audit.chain_head SET hash = '\\x{prev.hex()}'")
    await tamper(pool, *statements)
    result = await verify(pool, trail)
    assert (result["ok"], result["first_bad_seq"]) == (False, 1), result
    assert "fork" in result["reason"]


async def test_a_replaced_checkpoint_is_reported_as_forged(pool, trail):
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit.checkpoints DISABLE TRIGGER USER")
        await conn.execute("UPDATE audit.checkpoints SET note = replace(note, E'\\n12\\n', E'\\n13\\n')")
        await conn.execute("ALTER TABLE audit.checkpoints ENABLE TRIGGER USER")
    result = await verify(pool, trail)
    assert result["ok"] is False and "forged" in result["reason"], result


async def test_proofs_from_stored_nodes_verify_against_the_signed_checkpoints(pool, trail):
    async with pool.acquire() as conn:
        hashes = [
            bytes(h) for h in await conn.fetchval("SELECT array_agg(row_hash ORDER BY seq) FROM audit.events")
        ]
        notes = await conn.fetch("SELECT tree_size, note FROM audit.checkpoints ORDER BY tree_size")
        heads = [open_checkpoint(r["note"], trail.key) for r in notes]
        leaves = [merkle.leaf_hash(h) for h in hashes]
        for head in heads:
            for seq in range(1, head.size + 1):
                proof = await checkpoints.inclusion(conn, seq, head.size)
                assert proof == merkle.inclusion_proof(seq - 1, leaves[: head.size])
                assert merkle.verify_inclusion(seq - 1, head.size, leaves[seq - 1], proof, head.root)
        old, new = heads[0], heads[-1]
        proof = await checkpoints.consistency(conn, old.size, new.size)
        assert merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
