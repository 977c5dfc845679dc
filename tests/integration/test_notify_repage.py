"""Re-paging: an unanswered offer is sent again on a cadence until its deadline, and never after accept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from services.notify import jobs
from services.notify.settings import NotifySettings
from shared.settings import Settings
from shared.topics import agency_topic
from tests.integration.notify_system import Notify, jurisdiction, running_notify
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def notify(settings: Settings) -> AsyncIterator[Notify]:
    agencies: list[dict[str, Any]] = [{"id": "pager", "channels": ["kafka", "sse"]}]
    cadence = NotifySettings(repage_every_s=0.3, repage_check_s=0.1)
    async with running_notify(settings, jurisdiction(agencies), cadence) as n:
        yield n


async def pages(notify: Notify, assignment_id: str) -> int:
    return int(
        await notify.pool.fetchval("SELECT pages FROM notify.assignments WHERE id = $1::uuid", assignment_id)
        or 0
    )


async def test_an_unanswered_offer_is_re_paged_until_accepted_and_never_after(notify: Notify):
    offer = await notify.offer("pager")
    await eventually(partial(pages, notify, offer.assignment_id), lambda n: n >= 3, what="three pages")

    # Every page goes out on the agency's channels as the same offer, numbered in the record.
    topic = notify.settings.topic(agency_topic("pager"))
    records = await read_topic(notify.settings, topic, 3)
    sent = [json.loads(r.value)["data"] for r in records]
    assert {(d["kind"], d["assignment_id"]) for d in sent} == {("offered", offer.assignment_id)}
    assert all(d["deadline"] and d["details"] for d in sent)
    numbered = await notify.pool.fetch(
        "SELECT DISTINCT page FROM notify.deliveries WHERE assignment_id = $1::uuid AND channel = 'kafka'",
        offer.assignment_id,
    )
    assert {1, 2, 3} <= {r["page"] for r in numbered}

    async with notify.http() as http:
        accepted = await http.post(
            f"/v1/assignments/{offer.assignment_id}/accept", headers=notify.auth("pager")
        )
        assert accepted.status_code == 200, accepted.text
    after_accept = await pages(notify, offer.assignment_id)

    # A pass that treats everything as due still leaves the accepted offer alone,
    # while an offer nobody answered is paged in that same pass.
    await notify.pool.execute("UPDATE notify.assignments SET last_paged_at = now() - interval '1 hour'")
    open_offer = await notify.offer("pager")
    await eventually(partial(pages, notify, open_offer.assignment_id), lambda n: n >= 1)
    await notify.pool.execute("UPDATE notify.assignments SET last_paged_at = now() - interval '1 hour'")
    await jobs.repage_due(notify.pool, every_s=0, max_repages=5)
    assert await pages(notify, offer.assignment_id) == after_accept
    # The service's own re-page loop may hold that row at this moment (SKIP LOCKED); either pass pages it.
    await eventually(partial(pages, notify, open_offer.assignment_id), lambda n: n >= 2, what="a re-page")


async def test_an_offer_past_its_deadline_is_not_re_paged(notify: Notify):
    late = await notify.offer("pager", deadline_s=-1)
    await eventually(partial(pages, notify, late.assignment_id), lambda n: n == 1, what="the stored offer")
    await notify.pool.execute(
        "UPDATE notify.assignments SET last_paged_at = now() - interval '1 hour' WHERE id = $1::uuid",
        late.assignment_id,
    )
    await jobs.repage_due(notify.pool, every_s=0, max_repages=5)
    assert await pages(notify, late.assignment_id) == 1


async def test_an_offer_is_re_paged_at_most_the_configured_number_of_times(settings: Settings):
    agencies: list[dict[str, Any]] = [{"id": "pager", "channels": ["kafka"]}]
    cadence = NotifySettings(repage_every_s=0.1, repage_check_s=0.05, repage_max=2)
    async with running_notify(settings, jurisdiction(agencies), cadence) as notify:
        offer = await notify.offer("pager", deadline_s=3600)
        # The first page and two re-pages, then nothing more however long the deadline.
        await eventually(partial(pages, notify, offer.assignment_id), lambda n: n == 3, what="three pages")
        await notify.pool.execute("UPDATE notify.assignments SET last_paged_at = now() - interval '1 hour'")
        await jobs.repage_due(notify.pool, every_s=0, max_repages=2)
        assert await pages(notify, offer.assignment_id) == 3
