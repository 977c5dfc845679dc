"""A background job's LISTEN connection: replaced when PostgreSQL takes it away."""

from __future__ import annotations

import asyncio

import pytest

from shared.db import create_pool
from shared.settings import Settings
from shared.waits import Listener, lost

pytestmark = pytest.mark.integration


async def test_a_listener_whose_backend_is_terminated_listens_again_and_is_woken(settings: Settings):
    # Tried: the listening backend killed with pg_terminate_backend (what a database restart or the
    # fault suite's terminate-db-connections does); the next check listens on a new connection,
    # and a NOTIFY sent after that wakes the job.
    pool = await create_pool(settings.database_url.get_secret_value())
    listener = Listener(pool, "t_waits")
    try:
        assert await listener.listening()
        await pool.execute("NOTIFY t_waits")
        await asyncio.wait_for(listener.woken.wait(), 5)
        first = listener._conn.get_server_pid()
        await pool.execute("SELECT pg_terminate_backend($1)", first)
        for _ in range(50):
            if lost(listener._conn):
                break
            await asyncio.sleep(0.1)
        listener.woken.clear()
        assert await listener.listening()
        assert listener._conn.get_server_pid() != first
        await pool.execute("NOTIFY t_waits")
        await asyncio.wait_for(listener.woken.wait(), 5)
    finally:
        await listener.close()
        await pool.close()
