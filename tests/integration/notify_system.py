"""Notify running in-process on the real broker and PostgreSQL, fed offers the way matching sends them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from services.notify import repository
from services.notify.service import build
from services.notify.settings import NotifySettings
from shared import events, topics
from shared.envelope import Envelope, new_event, utcnow
from shared.jurisdiction import Jurisdiction
from shared.kafka import make_producer
from shared.settings import Settings
from tests.support import TEST_SETTINGS
from tools import infra
from tools.jurisdictions import small
from tools.psap import bearer
from tools.system import System, scratch

CLEAR = {question: "no" for question in events.SafetyScreen.model_fields}


def team_of(agency_id: str) -> str:
    """The one team of an agency (team ids are not domain names, agency ids may be)."""
    return f"{agency_id.replace('.', '-')}-1"


def jurisdiction(agencies: list[dict[str, Any]]) -> Jurisdiction:
    """A small deployment with the given agencies, one team each."""
    return small(
        psap_token="test-psap-token-0001",
        agencies=[{"name": a["id"], "token": f"token-{a['id']}-0123456789", **a} for a in agencies],
        teams=[
            {"id": team_of(a["id"]), "agency": a["id"], "name": "Team", "home": {"lat": 44.0, "lon": -123.0}}
            for a in agencies
        ],
    )


@dataclass
class Offer:
    """An offer notify was sent, and what identifies it."""

    assignment_id: str
    call_id: str
    agency_id: str
    team_id: str
    event: Envelope


@dataclass
class Notify:
    """A running notify and the handles a test needs."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    url: str

    def auth(self, agency_id: str) -> dict[str, str]:
        """The Authorization header of an agency of the test jurisdiction."""
        return bearer(f"token-{agency_id}-0123456789")

    def http(self) -> httpx.AsyncClient:
        """A client of notify's HTTP API."""
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def publish(self, topic: str, event: Envelope) -> None:
        """Send an event as its producer service would (keyed by call id)."""
        await self.producer.send_and_wait(
            self.settings.topic(topic), value=event.to_bytes(), key=event.subject.encode()
        )

    async def offer(
        self,
        agency_id: str,
        *,
        deadline_s: float = 120,
        extra: dict[str, Any] | None = None,
        publish: bool = True,
    ) -> Offer:
        """Matching offers a new call to the agency's team; `extra` adds fields a producer might leak."""
        call_id, assignment_id = str(uuid.uuid4()), str(uuid.uuid4())
        offer = {
            "location": {"lat": 44.05, "lon": -123.09, "address": "100 W 10th Ave"},
            "presenting_problem": "MNTL",
            "language": "es",
            "safety": CLEAR,
            "callback_number": "+15415550123",
        }
        payload = events.AssignmentOffered.model_validate(
            {
                "assignment_id": assignment_id,
                "call_id": call_id,
                "agency_id": agency_id,
                "team_id": team_of(agency_id),
                "attempt": 1,
                "deadline": utcnow() + timedelta(seconds=deadline_s),
                "offer": {**offer, **(extra or {})},
                **({"caller_name": "leaked"} if extra else {}),
            }
        )
        event = new_event(topics.ASSIGNMENTS_OFFERED, "matching", call_id, payload)
        if publish:
            await self.publish(topics.ASSIGNMENTS_OFFERED, event)
        return Offer(assignment_id, call_id, agency_id, team_of(agency_id), event)

    async def withdraw(self, offer: Offer, reason: str = "safety_flag") -> None:
        """Matching takes the offer back (notify itself expires offers at their deadline)."""
        payload = events.AssignmentWithdrawn(
            assignment_id=offer.assignment_id,
            call_id=offer.call_id,
            agency_id=offer.agency_id,
            team_id=offer.team_id,
            attempt=1,
            reason=reason,
        )
        topic = topics.ASSIGNMENTS_WITHDRAWN
        await self.publish(topic, new_event(topic, "matching", offer.call_id, payload, cause=offer.event))

    async def status(self, assignment_id: str) -> str | None:
        """Notify's view of an assignment's state (None until the offer is stored)."""
        row = await repository.get(self.pool, assignment_id)
        return None if row is None else row.status


def own_settings(stack: infra.InfraEndpoints) -> AbstractAsyncContextManager[Settings]:
    """A database and namespace of their own, for a fixture wider than one test; removed afterwards."""
    return scratch(stack, **TEST_SETTINGS)


@contextlib.asynccontextmanager
async def running_notify(
    settings: Settings, j: Jurisdiction, notify_settings: NotifySettings
) -> AsyncIterator[Notify]:
    """Load `j` and run notify (HTTP, consumer, relay, jobs) until the block ends; notify itself
    creates the agencies' topics, as it does when it starts."""
    async with (
        System.start(
            settings,
            ["notify"],
            jurisdiction=j,
            agency_topics=False,
            builders={"notify": partial(build, settings=notify_settings)},
        ) as system,
        system.pool() as pool,
    ):
        producer = make_producer(system.settings)
        await producer.start()
        try:
            yield Notify(system.settings, pool, producer, system.url("notify"))
        finally:
            await producer.stop()
