"""Intake keeps credentials and triage settings in memory only while PostgreSQL can say they
changed: a write to their tables, or the loss of the listening connection, makes it read again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.intake.settings import IntakeSettings
from tests.integration.intake_harness import Intake, native_call, running_intake
from tests.support import eventually

pytestmark = pytest.mark.integration

PSAP = "valley-ecc"


@pytest.fixture
async def intake(stack) -> AsyncIterator[Intake]:
    # Its own database: the tests take the PSAP's token away. Kept a minute without a NOTIFY, so
    # that what a test sees is the NOTIFY's doing, never the periodic forgetting's.
    async with running_intake(stack, IntakeSettings(kept_for_s=60)) as running:
        yield running


async def post(intake: Intake) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as http:
        return await intake.post(http, "/v1/calls", PSAP, native_call(f"KEPT-{uuid.uuid4().hex[:8]}"))


async def status(intake: Intake) -> int:
    return (await post(intake)).status_code


async def quietly(conn: asyncpg.Connection, table: str, statement: str, *args: object) -> None:
    """Run `statement` with `table`'s trigger off: a change intake is not told of."""
    trigger = f"{table.removeprefix('intake.')}_changed"
    async with conn.transaction():
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        await conn.execute(statement, *args)
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


@pytest.fixture
async def db(intake: Intake) -> AsyncIterator[asyncpg.Connection]:
    conn = await intake.db()
    yield conn
    await conn.close()


async def revoke_unannounced(intake: Intake, db: asyncpg.Connection) -> None:
    """Admit one call, then take the PSAP's token away without a word: the next request is
    admitted on what intake kept (it did not read the credential again)."""
    assert (await post(intake)).status_code == 202
    await quietly(db, "intake.credentials", "DELETE FROM intake.credentials WHERE tenant_id = $1", PSAP)
    assert (await post(intake)).status_code == 202


async def test_a_kept_credential_is_used_until_a_write_to_its_table_says_otherwise(intake, db):
    token = await db.fetchval("SELECT token_sha256 FROM intake.credentials WHERE tenant_id = $1", PSAP)
    await revoke_unannounced(intake, db)
    # Any write to the table (here one that changes no row) tells intake to read again.
    await db.execute("UPDATE intake.credentials SET role = role WHERE false")
    await eventually(lambda: status(intake), lambda s: s == 401, timeout_s=10)
    await db.execute(
        "INSERT INTO intake.credentials (token_sha256, tenant_id, role) VALUES ($1, $2, 'psap')", token, PSAP
    )
    await eventually(lambda: status(intake), lambda s: s == 202, timeout_s=10)


async def test_a_revoked_token_is_refused_at_the_next_request(intake, db):
    assert (await post(intake)).status_code == 202
    await db.execute("DELETE FROM intake.credentials WHERE tenant_id = $1", PSAP)
    # The commit's NOTIFY arrives long before a request can: no waiting for a cache to expire.
    answer = await post(intake)
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"


async def test_triage_rules_taken_out_of_force_stop_calls_at_once(intake, db):
    assert (await post(intake)).status_code == 202
    await quietly(db, "intake.triage_rules", "UPDATE intake.triage_rules SET active = false WHERE active")
    assert (await post(intake)).status_code == 202  # kept: the rules were not read again
    await db.execute("UPDATE intake.triage_rules SET active = active WHERE false")
    await eventually(lambda: status(intake), lambda s: s == 503, timeout_s=10)


async def test_losing_the_listening_connection_forgets_what_was_kept(intake, db):
    await revoke_unannounced(intake, db)
    # A change whose NOTIFY could have gone with the connection: nothing kept is trusted after it.
    ended = await db.fetchval(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%') t"
    )
    assert ended == 1  # one listening connection for the whole process
    await eventually(lambda: status(intake), lambda s: s == 401, timeout_s=10)
