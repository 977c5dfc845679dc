"""The simulator as the fault suite drives it: CADs and agencies that retry a 503 as told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from aiokafka import AIOKafkaConsumer

from shared.kafka import client_options
from shared.topics import agency_topic
from tools.faults import broker
from tools.sim.run import Simulation

# How long a CAD or an agency keeps retrying an answer of 503 (a dependency outage) before giving up.
RETRY_FOR_S = 150.0


class RetryingSimulation(Simulation):
    """A simulated day whose clients wait out an outage: a 503 is retried after its Retry-After
    (the promise under test is "unavailable, try again", so a client that gave up at once would
    leave calls half-way through their lives for reasons that are not the system's)."""

    async def _send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_FOR_S
        while True:
            r = await super()._send(request)
            if r is None or r.status_code != 503 or loop.time() > deadline:
                return r
            self.tally.counts["http_503_retried"] += 1
            try:
                wait = float(r.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.5), 10.0))

    def linger(self, seconds: float) -> None:
        """Keep the agencies listening at least `seconds` from now, load over or not: the offers
        held back by an outage that outlasted the load come after it, and the drain would
        otherwise end with nothing pending and leave them unanswered."""
        task = asyncio.create_task(asyncio.sleep(seconds))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _agencies(
        self, http: httpx.AsyncClient, consumer: AIOKafkaConsumer, stop: asyncio.Event
    ) -> None:
        """The agencies read their topics without a consumer group: after the broker was down a
        minute, the simulator's group consumer did not get its group back and the agencies
        answered nothing more, while a plain reader reconnects and goes on."""
        # Its group consumer leaves now, while the broker is up: stopped later, after an outage,
        # it waited on its group's coordinator for ever.
        await consumer.stop()
        names = [self.settings.topic(agency_topic(a.id)) for a in self.j.agencies]
        tps = await broker.partitions(self.settings, names)
        reader = AIOKafkaConsumer(**client_options(self.settings), group_id=None, fetch_max_wait_ms=50)
        await reader.start()
        try:
            reader.assign(tps)
            await reader.seek_to_end(*tps)
            await super()._agencies(http, reader, stop)
        finally:
            await broker.stop_reader(reader)
