"""Drivers of races on one call: a PSAP and an agency acting on it at the same moment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from shared.jurisdiction import Jurisdiction
from shared.kafka import client_options
from shared.settings import Settings
from shared.topics import agency_topic
from tools.faults import broker
from tools.psap import PsapAuth, bearer
from tools.sim.scenario import PlannedCall, as_eido

SAFE = {q: "no" for q in ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")}


class RaceDriver:
    """Creates community calls near the teams and acts on each from both ends at once."""

    def __init__(self, settings: Settings, j: Jurisdiction, seed: int) -> None:
        self.settings = settings
        self.j = j
        self.rng = random.Random(seed)
        self.seed = seed
        self.counts: Counter[str] = Counter()
        self.call_ids: list[str] = []
        self.psap = j.psaps[0]
        self.auth = PsapAuth.of(self.psap)
        self.agency_tokens = {a.id: a.token for a in j.agencies}
        self.offers: dict[str, asyncio.Future[tuple[str, str]]] = {}
        self._n = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._follower: asyncio.Task[None] | None = None

    def url(self, service: str) -> str:
        """Base URL of one service."""
        return f"http://{self.settings.http_host}:{self.settings.port_for(service)}"

    async def __aenter__(self) -> RaceDriver:
        names = [self.settings.topic(agency_topic(a.id)) for a in self.j.agencies]
        tps = await broker.partitions(self.settings, names)
        consumer = AIOKafkaConsumer(**client_options(self.settings), group_id=None)
        await consumer.start()
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        self._consumer = consumer
        self._follower = asyncio.create_task(self._follow(consumer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        agency_of = {self.settings.topic(agency_topic(a.id)): a.id for a in self.j.agencies}
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    data = json.loads(r.value)["data"]
                    waiting = self.offers.get(str(data.get("call_id")))
                    if data.get("kind") == "offered" and waiting is not None and not waiting.done():
                        waiting.set_result((agency_of[r.topic], str(data["assignment_id"])))

    def _planned(self) -> PlannedCall:
        self._n += 1
        team = self.rng.choice(self.j.teams)
        body: dict[str, Any] = {
            "external_id": f"RACE-{self.seed}-{self._n:05d}-{self.rng.getrandbits(24):06x}",
            "incident_type": "MNTL",
            "origin": "911",
            "location": {
                "lat": round(team.home.lat + self.rng.uniform(-0.005, 0.005), 5),
                "lon": round(team.home.lon + self.rng.uniform(-0.005, 0.005), 5),
            },
            "safety": dict(SAFE),
            "language": "en",
            "callback_number": f"+1541555{self.rng.randrange(10_000):04d}",
        }
        return PlannedCall(0.0, self.psap.id, body, behavioural=True, eido=True)

    @staticmethod
    def _stamp() -> str:
        return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    async def _post(
        self, http: httpx.AsyncClient, path: str, what: str, body: Any, **kw: Any
    ) -> httpx.Response | None:
        try:
            r = await http.post(f"{path}", json=body, **kw)
        except httpx.HTTPError:
            self.counts[f"{what}_failed"] += 1
            return None
        self.counts[f"{what}_{r.status_code}"] += 1
        return r

    async def create(self, http: httpx.AsyncClient) -> tuple[PlannedCall, str] | None:
        """Post one community call; its plan and id, or None when intake did not answer 202."""
        call = self._planned()
        r = await self._post(
            http, f"{self.url('intake')}/v1/incidents", "create", as_eido(call, self._stamp()), auth=self.auth
        )
        if r is None or r.status_code != 202:
            return None
        call_id = str(r.json()["call_id"])
        self.call_ids.append(call_id)
        return call, call_id

    async def cancel(self, http: httpx.AsyncClient, call_id: str) -> None:
        """The PSAP cancels the call."""
        await self._post(
            http,
            f"{self.url('intake')}/v1/calls/{call_id}/cancel",
            "cancel",
            {"reason": "race"},
            auth=self.auth,
        )

    async def _jitter(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.03))

    async def race_one(self, http: httpx.AsyncClient) -> None:
        """One call: once offered, cancel, a weapon update, the accept and en route fired together."""
        created = await self.create(http)
        if created is None:
            return
        call, call_id = created
        waiting: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self.offers[call_id] = waiting
        try:
            agency, assignment = await asyncio.wait_for(waiting, 40)
        except TimeoutError:
            self.counts["no_offer"] += 1
            return
        finally:
            self.offers.pop(call_id, None)
        headers = bearer(self.agency_tokens[agency])
        base = f"{self.url('notify')}/v1/assignments/{assignment}"

        async def jittered(coro: Any) -> None:
            await self._jitter()
            await coro

        await asyncio.gather(
            jittered(self.cancel(http, call_id)),
            jittered(
                self._post(
                    http,
                    f"{self.url('intake')}/v1/incidents",
                    "update",
                    as_eido(call, self._stamp(), weapon="yes"),
                    auth=self.auth,
                )
            ),
            jittered(self._post(http, f"{base}/accept", "accept", None, headers=headers)),
            jittered(self._post(http, f"{base}/status", "status", {"status": "en_route"}, headers=headers)),
        )
        # The agency goes on as if it had the call: a second status a moment later.
        await asyncio.sleep(0.2)
        await self._post(http, f"{base}/status", "status", {"status": "on_scene"}, headers=headers)
        self.counts["races"] += 1

    async def races(self, calls: int, at_once: int = 6) -> None:
        """`calls` races, `at_once` at a time."""
        async with httpx.AsyncClient(timeout=30) as http:
            gate = asyncio.Semaphore(at_once)

            async def one() -> None:
                async with gate:
                    await self.race_one(http)

            await asyncio.gather(*(one() for _ in range(calls)))

    async def create_and_cancel(self, stop: asyncio.Event, every_s: float = 0.5) -> None:
        """Until `stop`: a call created and cancelled 20 ms later, every `every_s` seconds."""
        async with httpx.AsyncClient(timeout=30) as http:
            pending: set[asyncio.Task[None]] = set()

            async def pair() -> None:
                created = await self.create(http)
                if created is not None:
                    await asyncio.sleep(0.02)
                    await self.cancel(http, created[1])

            while not stop.is_set():
                task = asyncio.create_task(pair())
                pending.add(task)
                task.add_done_callback(pending.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
            await asyncio.gather(*pending)
