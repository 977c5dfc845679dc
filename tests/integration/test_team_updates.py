"""A PSAP update the team must hear reaches it on every channel, on the real broker and PostgreSQL:
matching publishes what changed, notify keeps the newer details and tells the agency's topic, its
webhook and its SSE stream; an update read before its offer, a repeat and a finished assignment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared import events, topics
from shared.envelope import Envelope, new_event
from shared.settings import Settings
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    CLEAR,
    HERE,
    Db,
    load,
    place_call,
    publish,
    running_matching,
    team,
    topic_events,
)
from tests.integration.notify_system import Notify, running_notify
from tests.integration.notify_system import jurisdiction as notify_jurisdiction
from tests.integration.webhook_receiver import SPEC_SECRET, Receiver, serving
from tests.support import eventually, read_topic
from tools.jurisdictions import small
from tools.psap import bearer

pytestmark = pytest.mark.integration

NORTH = bearer(AGENCY_TOKENS["north"])
FAST = NotifySettings(repage_every_s=3600, expiry_interval_s=0.2, webhook_poll_s=0.05, sse_ping_s=1)
MOVED = {"lat": HERE["lat"] + 0.002, "lon": HERE["lon"], "address": "220 Oak St, Apt 4"}


def psap_update(call_id: str, location: dict[str, Any], **fields: Any) -> Envelope:
    """A newer version of a community call, as intake publishes it (no flag raised)."""
    payload = events.CallUpdated(
        call_id=call_id,
        psap_id="psap",
        incident_type="MNTL",
        location=events.Location(**location),
        safety=events.SafetyScreen(**CLEAR),
        decision=events.TriageDecision(route=events.Route.community, reasons=["update"], rules_version="t1"),
        updated_at=datetime.now(UTC),
        reason="eido_update",
        **fields,
    )
    return new_event(topics.CALLS_UPDATED, "intake", call_id, payload)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver(secrets={"north": SPEC_SECRET}, fail_first={}, always={})) as running:
        yield running


async def stream_until_updated(url: str) -> list[tuple[str, dict[str, Any]]]:
    """The agency's SSE stream from its start, read until its first `updated` event."""
    seen: list[tuple[str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=None)) as http,
        aconnect_sse(http, "GET", "/v1/assignments/stream", headers=NORTH) as source,
    ):
        assert source.response.status_code == 200
        async with asyncio.timeout(30):
            async for event in source.aiter_sse():
                seen.append((event.event, json.loads(event.data)))
                if event.event == "updated":
                    break
    return seen


async def test_a_new_place_number_and_caution_reach_the_assigned_team_on_every_channel_once(
    settings: Settings, db: Db, producer, receiver: Receiver
):
    """The team accepted; the PSAP then sends a new address, a new callback number and a caution
    that raises no flag. The agency's topic, webhook and stream each get one `updated` message
    naming the three changes with the newer details; the same update again tells nobody anything;
    a later language change is a second update. (Before: matching only stored the newer details,
    so a team on its way never heard of the new address.)"""
    hook = {"url": receiver.url("north"), "secret": SPEC_SECRET, "allow_private": True}
    north = {"id": "north", "name": "North", "token": AGENCY_TOKENS["north"], "webhook": hook}
    j = small(
        psap_token="psap-token-0000000001",
        agencies=[{**north, "channels": ["kafka", "webhook", "sse"]}],
        teams=[team("t1")],
        timezone="America/Los_Angeles",
        triage_version="t1",
    )
    await load(settings, j)
    async with running_notify(settings, j, FAST) as notify, running_matching(settings, MatchingSettings()):
        call_id, offer = await place_call(producer, settings, db)
        async with notify.http() as http:
            await eventually(partial(notify.status, offer["assignment_id"]), lambda s: s == "offered")
            accepted = await http.post(f"/v1/assignments/{offer['assignment_id']}/accept", headers=NORTH)
            assert accepted.status_code == 200, accepted.text
        await eventually(partial(db.offers, call_id), lambda o: o[0]["status"] == "accepted")

        update = psap_update(call_id, MOVED, callback_number="+15415550199", cautions=["DOG ON PREMISES"])
        await publish(producer, settings, update)
        [told] = await topic_events(settings, topics.ASSIGNMENTS_UPDATED, 1)
        assert told["changed"] == ["location", "callback_number", "cautions"]
        assert told["assignment_id"] == offer["assignment_id"] and told["team_id"] == "t1"

        agency_topic = settings.topic(topics.agency_topic("north"))
        records = await read_topic(settings, agency_topic, 2)
        kinds = [json.loads(r.value)["data"]["kind"] for r in records]
        assert kinds == ["offered", "updated"]
        message = json.loads(records[1].value)["data"]
        assert message["changed"] == ["location", "callback_number", "cautions"]
        assert message["details"]["location"]["address"] == "220 Oak St, Apt 4"
        assert message["details"]["callback_number"] == "+15415550199"
        assert message["details"]["cautions"] == ["DOG ON PREMISES"]
        assert message["deadline"] is None  # accepted: no answer is due

        hooks = await eventually(
            partial(receiver.taken, "north"), lambda seen: any(s.kind == "updated" for s in seen)
        )
        [hooked] = [s for s in hooks if s.kind == "updated"]
        assert hooked.signed and hooked.data["details"]["cautions"] == ["DOG ON PREMISES"]

        streamed = await stream_until_updated(notify.url)
        kind, view = streamed[-1]
        assert kind == "updated" and view["changed"] == ["location", "callback_number", "cautions"]
        assert view["status"] == "accepted" and view["details"]["callback_number"] == "+15415550199"

        async with notify.http() as http:
            [listed] = (await http.get("/v1/assignments", headers=NORTH)).json()
        assert listed["details"]["location"]["address"] == "220 Oak St, Apt 4"

        # The same update again (a new event) changes nothing; a language named later is the second.
        again = psap_update(call_id, MOVED, callback_number="+15415550199", cautions=["DOG ON PREMISES"])
        await publish(producer, settings, again)
        later = psap_update(call_id, MOVED, language="vi")
        await publish(producer, settings, later)
        await db.wait_processed(later)
        updates = await topic_events(settings, topics.ASSIGNMENTS_UPDATED, 3, timeout_s=5)
        assert [u["changed"] for u in updates] == [["location", "callback_number", "cautions"], ["language"]]
        records = await read_topic(settings, agency_topic, 4, timeout_s=5)
        assert [json.loads(r.value)["data"]["kind"] for r in records] == ["offered", "updated", "updated"]


async def test_an_update_read_before_its_offer_goes_out_with_the_offer_and_a_finished_one_tells_nobody(
    settings: Settings,
):
    """Notify reads the update's topic apart from the offer's: an update that arrives first is kept,
    and the offer, when it comes, carries the newer details. An update for a cleared assignment is
    refused (recorded) and sent to nobody."""
    async with running_notify(settings, notify_jurisdiction([{"id": "east"}]), FAST) as notify:
        offer = await notify.offer("east", publish=False)
        newer = events.OfferDetails.model_validate(
            {**offer.event.data["offer"], "callback_number": "+15415550177", "cautions": ["GATE CODE 4471"]}
        )
        await notify.publish(topics.ASSIGNMENTS_UPDATED, updated_event(offer, newer))
        await eventually(
            partial(early_update, notify, offer.assignment_id), bool, what="the early update kept"
        )
        await notify.publish(topics.ASSIGNMENTS_OFFERED, offer.event)
        await eventually(partial(notify.status, offer.assignment_id), lambda s: s == "offered")
        [record] = await read_topic(notify.settings, notify.settings.topic(topics.agency_topic("east")), 1)
        sent = json.loads(record.value)["data"]
        assert sent["kind"] == "offered" and sent["details"]["callback_number"] == "+15415550177"
        assert sent["details"]["cautions"] == ["GATE CODE 4471"]
        assert not await early_update(notify, offer.assignment_id)  # kept once, in the offer

        async with notify.http() as http:
            base = f"/v1/assignments/{offer.assignment_id}"
            assert (await http.post(f"{base}/accept", headers=notify.auth("east"))).status_code == 200
            cleared = {"status": "cleared", "disposition": "18"}
            assert (
                await http.post(f"{base}/status", json=cleared, headers=notify.auth("east"))
            ).status_code == 200
        late = newer.model_copy(update={"language": "vi"})
        await notify.publish(topics.ASSIGNMENTS_UPDATED, updated_event(offer, late, changed=["language"]))
        await eventually(
            partial(refusals, notify, offer.assignment_id),
            lambda r: ("cleared", "update", "assignment_not_live") in r,
            what="the late update refused",
        )
        kinds = await notify.pool.fetch(
            "SELECT kind FROM notify.feed WHERE assignment_id = $1::uuid ORDER BY seq", offer.assignment_id
        )
        assert "updated" not in [k["kind"] for k in kinds]


def updated_event(
    offer: Any, details: events.OfferDetails, changed: list[events.OfferChange] | None = None
) -> Envelope:
    """Matching's `assignments.updated.v1` for a test offer."""
    payload = events.AssignmentUpdated(
        assignment_id=offer.assignment_id,
        call_id=offer.call_id,
        agency_id=offer.agency_id,
        team_id=offer.team_id,
        attempt=1,
        offer=details,
        changed=changed or ["callback_number", "cautions"],
    )
    return new_event(topics.ASSIGNMENTS_UPDATED, "matching", offer.call_id, payload)


async def early_update(notify: Notify, assignment_id: str) -> bool:
    """Whether notify keeps an update for an offer it has not read."""
    return bool(
        await notify.pool.fetchval(
            "SELECT count(*) FROM notify.early_updates WHERE assignment_id = $1::uuid", assignment_id
        )
    )


async def refusals(notify: Notify, assignment_id: str) -> list[tuple[str, str, str]]:
    """The steps notify refused for an assignment: (from state, step, code)."""
    rows = await notify.pool.fetch(
        "SELECT from_state, step, code FROM notify.refusals WHERE assignment_id = $1::uuid ORDER BY id",
        assignment_id,
    )
    return [(r["from_state"], r["step"], r["code"]) for r in rows]
