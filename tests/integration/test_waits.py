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
        first = listener.on.get_server_pid()
        await pool.execute("SELECT pg_terminate_backend($1)", first)
        for _ in range(50):
            if lost(listener.on):
                break
            await asyncio.sleep(0.1)
        listener.woken.clear()
        assert await listener.listening()
        assert listener.on.get_server_pid() != first
        await pool.execute("NOTIFY t_waits")
        await asyncio.wait_for(listener.woken.wait(), 5)
    finally:
        await listener.close()
        await pool.close()


async def test_a_pools_listeners_share_one_backend_and_all_listen_again_when_it_is_lost(settings: Settings):
    # PostgreSQL wakes every listening backend at each NOTIFY, whatever its channel: a process's
    # jobs listen on one connection. Tried: two jobs on two channels, one NOTIFY each, then their
    # backend terminated: both are woken by the loss, listen again on one new connection and are
    # woken by their own channel only; the last to stop gives the connection back to the pool.
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=0)
    heard: list[str] = []
    relay, sender = Listener(pool, "t_shared_a", on_payload=heard.append), Listener(pool, "t_shared_b")
    try:
        assert await relay.listening() and await sender.listening()
        first = relay.on.get_server_pid()
        assert sender.on.get_server_pid() == first
        await pool.execute("SELECT pg_notify('t_shared_a', 'one')")
        await asyncio.wait_for(relay.woken.wait(), 5)
        await asyncio.sleep(0.2)
        assert heard == ["one"] and not sender.woken.is_set()
        relay.woken.clear()
        await pool.execute("SELECT pg_terminate_backend($1)", first)
        await asyncio.wait_for(asyncio.gather(relay.woken.wait(), sender.woken.wait()), 5)
        relay.woken.clear()
        sender.woken.clear()
        assert await relay.listening() and await sender.listening()
        second = relay.on.get_server_pid()
        assert second != first and sender.on.get_server_pid() == second
        await pool.execute("NOTIFY t_shared_b")
        await asyncio.wait_for(sender.woken.wait(), 5)
        assert not relay.woken.is_set()
        await relay.close()
        assert pool.get_size() - pool.get_idle_size() == 1  # still the sender's
    finally:
        await relay.close()
        await sender.close()
    assert pool.get_size() == pool.get_idle_size()
    await pool.close()
