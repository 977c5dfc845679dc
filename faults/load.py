"""The simulator as the fault suite drives it: CADs and agencies that retry a 503 as told."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from sim.run import Simulation

# How long a CAD or an agency keeps retrying an answer of 503 (a dependency outage) before giving up.
RETRY_FOR_S = 150.0


class RetryingSimulation(Simulation):
    """A simulated day whose clients wait out an outage: a 503 is retried after its Retry-After
    (the promise under test is "unavailable, try again", so a client that gave up at once would
    leave calls half-way through their lives for reasons that are not the system's)."""

    async def _post(
        self,
        http: httpx.AsyncClient,
        url: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_FOR_S
        while True:
            r = await super()._post(http, url, headers, body, auth)
            if r is None or r.status_code != 503 or loop.time() > deadline:
                return r
            self.tally.counts["http_503_retried"] += 1
            try:
                wait = float(r.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.5), 10.0))
