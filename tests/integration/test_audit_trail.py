"""The trail in real PostgreSQL: the database refuses changes, and a superuser's tampering is found."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.audit import checkpoints, domain, handlers, merkle, repository
from services.audit.checkpoints import Checkpointer
from services.audit.note import open_checkpoint
from services.audit.settings import AuditSettings
from shared.db import create_pool, migrate
from shared.settings import Settings
from tests.audit_events import AT, EVENTS, NONCES, received
from tests.audit_scenario import scenario
from tests.support import Calls

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


# Per fixed event (tests/audit_events.py) as PostgreSQL stores it: the envelope and public view as
# jsonb writes them back, and the row hash. Taken from the code before audit's one-pass change.
STORED: list[tuple[str, str, str]] = [
    (
        "b08b9c23871ff3c3ba99985ca0e5f7c6858e7efc40470bbefe8abe345edac548",
        "fa9deaa8bc2be3bde80d181fcb9b95fa826d0b5707f5ec1f07cb18b0937ebaa0",
        "7b7d38e9e747695647e2d7f2feea6fdde93aa6b06d06ffe01ccf29637e4971c6",
    ),
    (
        "4d6f258b4c9302b485f0011c77ab04b8114b2f4bd61f92ddc4bb045ec2387545",
        "6f5618bafdb3017d4a5e1f75117186ce948cba288556c77467757bad7b7463f6",
        "880211dcff25ede6d961ad251a1bfe99297b9d2d1828814525c1c63aa73eca13",
    ),
    (
        "54fce69d5192ccd15b9fbf780cacb3ffdc42e94f030ffdfec102c7d755b9a908",
        "582b55802cfdfacf9ee816fb8d06783abc464db7412ca299bb2837e0f35162dc",
        "a37e2f7934676733061d3b986b75dea7f78469e6fea1d062b9e09411bac9435d",
    ),
    (
        "ddfdb136ada685a65474ec5c602d68ee67ba842051e94fb61f80caa89f016c18",
        "00ddbffe94e12811eb4cc011c5e2b958452cfdc5f60bc525315b56129e5374c4",
        "489d72c01a38affdce61a3407ca5a68d93ec45673b42f55ca708993af72947fe",
    ),
    (
        "f7366dcb8c94cb9ffdb1d559f27e1e72fe3a04d2b13b3df52cdbf8ed5ba191a0",
        "4439ce17ce53a775f1e553896ef3ccf975e649945014e9028cc8ee0aadcc3b93",
        "d9e959777dcd92389d7e060872e543b0b6f132b47f7f16853061f6c95a4d28ef",
    ),
    (
        "c8828e316d7f330fa2ebed25f5569e5a7c26c80144ebf74aa40c549095a77526",
        "dca31e520ef406668563443df0f1828ba19678e37c7f74d67f9ac5a915bea1d8",
        "662f77ac5ea6331ecd6112718984f78679aaa30926786c0fc1612aea99f96c6c",
    ),
    (
        "26e54478615f34f13e7451a01a92815df76a5bc814b39721004e1d519e57d9a3",
        "cf8696433a7d4a4f1d6771b9d47211c0662dd7231897c0d0069f5975f4ca4dee",
        "e45e0de5e3c1b1e8c3653fa8dd883de09d63ff64dcd5050c3e061bed2fcbcaf2",
    ),
    (
        "248bda03474bf00d5a9789df74f94e27cddea701a86bba188d6871352eb851e8",
        "248bda03474bf00d5a9789df74f94e27cddea701a86bba188d6871352eb851e8",
        "3ef2c2d81a73b0b48df333fcf3973626e1786ac9eefa610b99e831ea8447ab0e",
    ),
    (
        "f02c8aa013a85169ee43c41876b4db319bda778ffd6fbfd300a9318d7e66384a",
        "f02c8aa013a85169ee43c41876b4db319bda778ffd6fbfd300a9318d7e66384a",
        "e0e3bee2bb5f14cc13cbdbc57db3cce993aaab9ca042a029f751c8480f84099b",
    ),
    (
        "e7de1b06818591d31b1421ebbc5510232eb14c87f52716c6c7c155a30765daa8",
        "db440abbf690a3a4c3c2193416a2dc3607eed81016a011c51c2657ce7ac9628d",
        "7c5a023e0d9d0cbcdd42a7c5aafeca8e4011fbf48f70ee7e330efb27d9b1b492",
    ),
]


async def test_fixed_events_are_stored_byte_for_byte_as_they_always_were(pool: asyncpg.Pool):
    """The JSON columns hold the same values (jsonb's text of them is the same) and the rows the
    same hashes as before each event was encoded once, so trails written before still verify."""
    parsed = [(event, NONCES[n]) for n, e in enumerate(EVENTS) if (event := received(e)) is not None]
    async with pool.acquire() as conn, conn.transaction():
        await repository.append_many(conn, parsed, AT)
        rows = await conn.fetch(
            "SELECT envelope::text AS envelope, public_event::text AS public, row_hash"
            " FROM audit.events ORDER BY seq"
        )
    stored = [
        (
            hashlib.sha256(r["envelope"].encode()).hexdigest(),
            hashlib.sha256(r["public"].encode()).hexdigest(),
            bytes(r["row_hash"]).hex(),
        )
        for r in rows
    ]
    assert stored == STORED


async def test_the_checkpointer_rests_while_the_trail_does_not_grow_and_signs_when_it_does(pool):
    # Tried: a checkpointer (every 3 events or every hour) left for 2 s with nothing appended, then
    # three events appended. At rest it looks once (it used to look every half second); the
    # appending transactions' NOTIFY wakes it, and it signs the head of three.
    checkpointer = Checkpointer(
        pool, AuditSettings(signing_key=KEY, checkpoint_every=3, checkpoint_interval_s=3600)
    )
    await checkpointer.start()
    looks = Calls(checkpointer, "checkpoint")
    stop = asyncio.Event()
    running = asyncio.create_task(checkpointer.run(stop))
    try:
        await asyncio.sleep(2)
        assert looks.count == 1
        for event in scenario()[:3]:
            async with pool.acquire() as conn, conn.transaction():
                await handlers.on_any_event(conn, event, None)
        for _ in range(50):
            async with pool.acquire() as conn:
                if await repository.latest_checkpoint(conn) is not None:
                    break
            await asyncio.sleep(0.1)
        async with pool.acquire() as conn:
            latest = await repository.latest_checkpoint(conn)
        assert latest is not None and latest.tree_size == 3
    finally:
        stop.set()
        await running
