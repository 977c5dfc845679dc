"""The benchmark's agencies: their topics read from the end, and offers answered as the simulator's
agencies answer them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import client_options
from shared.settings import Settings
from shared.topics import agency_topic
from tools.bench import roster
from tools.psap import bearer
from tools.sim.scenario import Answer, Options, agency_answer


async def reader(settings: Settings) -> AIOKafkaConsumer:
    """A started consumer on every partition of every benchmark agency's topic, at its end as it is
    now: no group to join, so no offer published after this returns can be missed."""
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        fetch_max_wait_ms=settings.fetch_max_wait_ms(),
        enable_auto_commit=False,
    )
    await consumer.start()
    partitions = [
        TopicPartition(settings.topic(agency_topic(a)), p)
        for a in roster.AGENCIES
        for p in range(roster.PARTITIONS)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer


class Agencies:
    """Every offer on the agencies' topics answered once (a re-page repeats it), by the simulator's
    answer model (`tools.sim.scenario.agency_answer`) with its delays taken as real seconds; each
    accept notify takes is reported to `accepted(call_id)` the moment notify answers 200."""

    def __init__(
        self,
        settings: Settings,
        notify: httpx.AsyncClient,
        options: Options,
        rng: random.Random,
        accepted: Callable[[str], None],
    ) -> None:
        self.counts: Counter[str] = Counter()
        self._agency_of = {settings.topic(agency_topic(a)): a for a in roster.AGENCIES}
        self._notify = notify
        self._options = options
        self._rng = rng
        self._accepted = accepted
        self._seen: set[str] = set()
        self._pending: set[asyncio.Task[None]] = set()

    async def follow(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Read offers until `stop`, drawing each one's answer as it arrives."""
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    message = json.loads(record.value)["data"]
                    assignment = message.get("assignment_id")
                    if message.get("kind") != "offered" or assignment in self._seen:
                        continue
                    self._seen.add(assignment)
                    self.counts["offers"] += 1
                    answer = agency_answer(self._rng, self._options)
                    if answer.choice == "ignore":
                        self.counts["ignored"] += 1
                        continue
                    agency = self._agency_of[record.topic]
                    task = asyncio.create_task(self._respond(agency, assignment, record.key.decode(), answer))
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)

    async def _respond(self, agency: str, assignment: str, call_id: str, answer: Answer) -> None:
        await asyncio.sleep(answer.after_s)
        verb = "accept" if answer.choice == "accept" else "decline"
        body = None if verb == "accept" else {"reason_code": answer.reason_code}
        try:
            r = await self._notify.post(
                f"/v1/assignments/{assignment}/{verb}", json=body, headers=bearer(roster.agency_token(agency))
            )
        except httpx.TransportError:
            self.counts[f"{verb}_transport_error"] += 1
            return
        # accept_409: the offer had run out (or the call gone back) before the agency answered.
        self.counts[f"{verb}_{r.status_code}"] += 1
        if verb == "accept" and r.status_code == 200:
            self._accepted(call_id)

    async def aclose(self) -> None:
        """Drop the answers not given yet (the phase is over)."""
        for task in list(self._pending):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pending, return_exceptions=True)
