"""An agency's answers and status reports: who may answer, when, how often, and in which order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from services.notify import jobs
from services.notify.settings import NotifySettings
from shared.settings import Settings
from shared.topics import ASSIGNMENTS_EXPIRED, ASSIGNMENTS_RESPONDED, ASSIGNMENTS_STATUS_CHANGED
from tests.integration.notify_system import Notify, Offer, jurisdiction, own_settings, running_notify
from tests.support import eventually, read_topic
from tools import infra

pytestmark = pytest.mark.integration

HOLDER = {"Authorization": "Bearer token-holder-0123456789"}


@pytest.fixture(scope="module")
async def notify(stack: infra.InfraEndpoints) -> AsyncIterator[Notify]:
    """One notify for the module; each test makes its own offers, so tests do not see each other."""
    agencies: list[dict[str, Any]] = [{"id": "holder", "channels": ["kafka"]}, {"id": "other"}]
    async with (
        own_settings(stack) as settings,
        running_notify(settings, jurisdiction(agencies), NotifySettings(repage_every_s=3600)) as n,
    ):
        yield n


async def offered(notify: Notify, **kwargs: Any) -> Offer:
    offer = await notify.offer("holder", **kwargs)
    await eventually(partial(notify.status, offer.assignment_id), lambda s: s == "offered", what="the offer")
    return offer


async def published(notify: Notify, topic: str, offer: Offer) -> list[dict[str, Any]]:
    """The events notify wrote for this offer to `topic` (its outbox: what the relay publishes)."""
    rows = await notify.pool.fetch(
        "SELECT value FROM notify.outbox WHERE topic = $1 AND key = $2 ORDER BY id", topic, offer.call_id
    )
    return [json.loads(bytes(r["value"]))["data"] for r in rows]


async def test_only_the_agency_holding_the_offer_may_answer_others_get_404(notify: Notify):
    offer = await offered(notify)
    url = f"/v1/assignments/{offer.assignment_id}"
    async with notify.http() as http:
        for path, body in (
            ("accept", None),
            ("decline", {"reason_code": "no_capacity"}),
            ("status", {"status": "en_route"}),
        ):
            answer = await http.post(f"{url}/{path}", json=body, headers=notify.auth("other"))
            assert answer.status_code == 404 and answer.json()["code"] == "not_found", (path, answer.text)
        for unknown in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            answer = await http.post(f"/v1/assignments/{unknown}/accept", headers=notify.auth("holder"))
            assert answer.status_code == 404 and answer.json()["code"] == "not_found", answer.text
        listed = await http.get("/v1/assignments", headers=notify.auth("other"))
        assert offer.assignment_id not in {a["assignment_id"] for a in listed.json()}
        assert await notify.status(offer.assignment_id) == "offered"


async def test_an_answer_after_withdrawal_is_refused_with_a_clear_code(notify: Notify):
    withdrawn = await offered(notify)
    await notify.withdraw(withdrawn)
    await eventually(partial(notify.status, withdrawn.assignment_id), lambda s: s == "withdrawn")
    async with notify.http() as http:
        for path, body in (("accept", None), ("status", {"status": "en_route"})):
            answer = await http.post(
                f"/v1/assignments/{withdrawn.assignment_id}/{path}", json=body, headers=notify.auth("holder")
            )
            assert answer.status_code == 409 and answer.json()["code"] == "offer_withdrawn", answer.text
    refused = await notify.pool.fetch(
        "SELECT source, from_state, step, code FROM notify.refusals"
        " WHERE assignment_id = $1::uuid ORDER BY id",
        withdrawn.assignment_id,
    )
    assert [tuple(r) for r in refused] == [
        ("api:holder", "withdrawn", "accepted", "offer_withdrawn"),
        ("api:holder", "withdrawn", "en_route", "offer_withdrawn"),
    ]


async def test_an_offer_arriving_past_its_deadline_is_expired_at_once_and_never_delivered(notify: Notify):
    """(Before the change such an offer was stored as offered and paged to the agency.)"""
    late = await notify.offer("holder", deadline_s=-1)
    await eventually(partial(notify.status, late.assignment_id), lambda s: s == "expired", what="the expiry")
    assert (
        await notify.pool.fetch(
            "SELECT 1 FROM notify.deliveries WHERE assignment_id = $1::uuid", late.assignment_id
        )
        == []
    )
    [expiry] = await published(notify, ASSIGNMENTS_EXPIRED, late)
    assert (expiry["assignment_id"], expiry["attempt"]) == (late.assignment_id, 1)
    async with notify.http() as http:
        answer = await http.post(
            f"/v1/assignments/{late.assignment_id}/accept", headers=notify.auth("holder")
        )
        assert answer.status_code == 409 and answer.json()["code"] == "offer_expired", answer.text
    assert await published(notify, ASSIGNMENTS_RESPONDED, late) == []


async def test_notify_alone_decides_the_deadline_and_the_agency_hears_the_truth(settings: Settings):
    """An accept in time wins for good (the deadline passing later changes nothing); an accept after
    the deadline, before any expiry pass, answers 409 offer_expired and expires the offer in the same
    transaction; notify publishes each expiry once, with the attempt. (Before the change notify
    answered 409 without expiring and left the expiry to matching's clock.)"""
    agencies: list[dict[str, Any]] = [{"id": "holder", "channels": ["kafka"]}]
    # No expiry pass runs during the test: the answers decide.
    idle = NotifySettings(repage_every_s=3600, expiry_interval_s=3600)
    async with running_notify(settings, jurisdiction(agencies), idle) as notify:
        in_time, too_late = await offered(notify, deadline_s=2), await offered(notify, deadline_s=2)
        async with notify.http() as http:
            r = await http.post(f"/v1/assignments/{in_time.assignment_id}/accept", headers=HOLDER)
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
            await asyncio.sleep(2.2)
            r = await http.post(f"/v1/assignments/{too_late.assignment_id}/accept", headers=HOLDER)
            assert r.status_code == 409 and r.json()["code"] == "offer_expired", r.text
            r = await http.post(
                f"/v1/assignments/{in_time.assignment_id}/status", json={"status": "en_route"}, headers=HOLDER
            )
            assert r.status_code == 200, r.text
        assert await notify.status(too_late.assignment_id) == "expired"
        await jobs.expire_due(notify.pool)
        assert await notify.status(in_time.assignment_id) == "en_route"
        assert await published(notify, ASSIGNMENTS_EXPIRED, in_time) == []
        [expiry] = await published(notify, ASSIGNMENTS_EXPIRED, too_late)
        assert (expiry["assignment_id"], expiry["attempt"]) == (too_late.assignment_id, 1)
        assert await published(notify, ASSIGNMENTS_RESPONDED, too_late) == []
        [accepted] = await published(notify, ASSIGNMENTS_RESPONDED, in_time)
        assert accepted["attempt"] == 1
        # The agency was told the late offer expired.
        kinds = await notify.pool.fetch(
            "SELECT kind FROM notify.feed WHERE assignment_id = $1::uuid ORDER BY seq", too_late.assignment_id
        )
        assert [k["kind"] for k in kinds] == ["offered", "expired"]


async def test_the_expiry_loop_expires_an_unanswered_offer_and_tells_the_agency(settings: Settings):
    agencies: list[dict[str, Any]] = [{"id": "holder", "channels": ["kafka"]}]
    fast = NotifySettings(repage_every_s=3600, expiry_interval_s=0.2)
    async with running_notify(settings, jurisdiction(agencies), fast) as notify:
        offer = await offered(notify, deadline_s=1)
        await eventually(
            partial(notify.status, offer.assignment_id), lambda s: s == "expired", what="the expiry"
        )
        [expiry] = await published(notify, ASSIGNMENTS_EXPIRED, offer)
        assert expiry["assignment_id"] == offer.assignment_id
        async with notify.http() as http:
            r = await http.post(
                f"/v1/assignments/{offer.assignment_id}/decline",
                json={"reason_code": "no_capacity"},
                headers=HOLDER,
            )
            assert r.status_code == 409 and r.json()["code"] == "offer_expired", r.text


async def test_answering_twice_is_idempotent_and_changing_the_answer_is_refused(notify: Notify):
    offer = await offered(notify)
    url = f"/v1/assignments/{offer.assignment_id}"
    async with notify.http() as http:
        first = await http.post(f"{url}/accept", headers=notify.auth("holder"))
        again = await http.post(f"{url}/accept", headers=notify.auth("holder"))
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json() == again.json() and again.json()["status"] == "accepted"
        changed = await http.post(
            f"{url}/decline", json={"reason_code": "other", "reason_text": "x"}, headers=notify.auth("holder")
        )
        assert changed.status_code == 409 and changed.json()["code"] == "already_answered", changed.text
    assert [e["response"] for e in await published(notify, ASSIGNMENTS_RESPONDED, offer)] == ["accepted"]


async def test_a_decline_needs_a_known_reason_and_text_for_other(notify: Notify):
    offer = await offered(notify)
    url = f"/v1/assignments/{offer.assignment_id}/decline"
    async with notify.http() as http:
        for body in ({}, {"reason_code": "tired"}, {"reason_code": "other"}):
            answer = await http.post(url, json=body, headers=notify.auth("holder"))
            assert answer.status_code == 422 and answer.json()["code"] == "invalid_request", (
                body,
                answer.text,
            )
        answer = await http.post(
            url, json={"reason_code": "safety_concern", "reason_text": "dog"}, headers=notify.auth("holder")
        )
        assert answer.status_code == 200 and answer.json()["status"] == "declined", answer.text
    [event] = await published(notify, ASSIGNMENTS_RESPONDED, offer)
    assert (event["response"], event["reason_code"], event["reason_text"]) == (
        "declined",
        "safety_concern",
        "dog",
    )


async def test_status_reports_follow_the_lifecycle_and_a_repeat_has_no_second_effect(notify: Notify):
    offer = await offered(notify)
    url = f"/v1/assignments/{offer.assignment_id}"
    holder = notify.auth("holder")
    async with notify.http() as http:
        early = await http.post(f"{url}/status", json={"status": "on_scene"}, headers=holder)
        assert early.status_code == 409 and early.json()["code"] == "invalid_transition", early.text
        assert (await http.post(f"{url}/accept", headers=holder)).status_code == 200
        steps = [
            {"status": "en_route"},
            {"status": "en_route"},
            {"status": "on_scene"},
            {"status": "cleared", "disposition": "18"},
            {"status": "cleared", "disposition": "18"},
        ]
        for body in steps:
            answer = await http.post(f"{url}/status", json=body, headers=holder)
            assert answer.status_code == 200 and answer.json()["status"] == body["status"], (
                body,
                answer.text,
            )
        back = await http.post(f"{url}/status", json={"status": "on_scene"}, headers=holder)
        assert back.status_code == 409 and back.json()["code"] == "invalid_transition", back.text
        no_disposition = await http.post(f"{url}/status", json={"status": "cleared"}, headers=holder)
        assert no_disposition.status_code == 422, no_disposition.text
        # Tried: a disposition that is not an EIDO common disposition code.
        made_up = await http.post(
            f"{url}/status", json={"status": "cleared", "disposition": "WENT-FINE"}, headers=holder
        )
        assert made_up.status_code == 422 and "disposition" in made_up.text, made_up.text
        codes = (await http.get("/v1/dispositions", headers=holder)).json()
        assert (
            len(codes) == 45
            and {"code": "18", "description": "Assignment Completed/Settled By Contact"} in codes
        )
    statuses = [e["status"] for e in await published(notify, ASSIGNMENTS_STATUS_CHANGED, offer)]
    assert statuses == ["en_route", "on_scene", "cleared"]


async def test_a_backup_request_is_published_at_once_with_its_urgency(notify: Notify):
    offer = await offered(notify)
    url = f"/v1/assignments/{offer.assignment_id}"
    holder = notify.auth("holder")
    async with notify.http() as http:
        assert (await http.post(f"{url}/accept", headers=holder)).status_code == 200
        missing = await http.post(f"{url}/status", json={"status": "backup_requested"}, headers=holder)
        assert missing.status_code == 422, missing.text
        answer = await http.post(
            f"{url}/status", json={"status": "backup_requested", "urgency": "emergency"}, headers=holder
        )
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text

    topic = notify.settings.topic(ASSIGNMENTS_STATUS_CHANGED)

    async def on_topic() -> list[dict[str, Any]]:
        records = await read_topic(notify.settings, topic, 1000, timeout_s=1)
        return [json.loads(r.value)["data"] for r in records if r.key.decode() == offer.call_id]

    [event] = await eventually(on_topic, bool, what="the backup request on the topic")
    assert (event["status"], event["urgency"], event["assignment_id"]) == (
        "backup_requested",
        "emergency",
        offer.assignment_id,
    )
