"""The runtime's HTTP server: an idle service wakes once a second, and stops at once when told."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import uvicorn
from fastapi import FastAPI

from shared.runtime import Server
from tests.support import Calls


async def test_an_idle_server_ticks_once_a_second_and_stops_at_once() -> None:
    """Tried: a server left idle for 2.5 s (uvicorn's own loop ticks 25 times), then told to exit."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = Server(uvicorn.Config(app, log_config=None, lifespan="off", access_log=False))
    ticks = Calls(server, "on_tick")
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            if server.started:
                break
            await asyncio.sleep(0.05)
        reply = await http.get(f"http://127.0.0.1:{port}/ping")
    assert reply.status_code == 200 and reply.headers["date"]
    ticks.count = 0
    await asyncio.sleep(2.5)
    assert 1 <= ticks.count <= 4, ticks.count
    told = time.monotonic()
    server.should_exit = True
    await asyncio.wait_for(serving, 5)
    # The loop's wait ends with the exit, not at its next tick a second later.
    assert time.monotonic() - told < 0.9
    assert server.should_exit
