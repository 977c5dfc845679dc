"""Notify under races on the real broker and PostgreSQL: an agency's declines against withdrawals
consumed in batches and against the deadline, many times at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from typing import Any

import httpx
import pytest

from services.notify.settings import NotifySettings
from shared.settings import Settings
from tests.integration.notify_system import Notify, Offer, jurisdiction, running_notify
from tests.support import eventually

pytestmark = pytest.mark.integration

AGENCIES: list[dict[str, Any]] = [{"id": "busy", "channels": ["kafka"]}]
FINAL = {"declined", "withdrawn", "expired"}


async def decline(notify: Notify, http: httpx.AsyncClient, offer: Offer) -> tuple[int, str | None]:
    """The agency declines; its answer's status and code."""
    r = await http.post(
        f"/v1/assignments/{offer.assignment_id}/decline",
        json={"reason_code": "no_capacity"},
        headers=notify.auth("busy"),
    )
    if r.status_code == 200:
        return 200, None
    is_json = r.headers.get("content-type", "").startswith("application/json")
    return r.status_code, r.json().get("code") if is_json else r.text[:80]


async def offers_stored(notify: Notify, count: int, **kw: Any) -> list[Offer]:
    """`count` offers to the agency, each stored by notify before this returns."""
    offers = [await notify.offer("busy", **kw) for _ in range(count)]
    for offer in offers:
        await eventually(
            partial(notify.status, offer.assignment_id), lambda s: s is not None, what="the offer"
        )
    return offers


def judged(answers: list[tuple[int, str | None]]) -> Counter[tuple[int, str | None]]:
    """Every answer is 200 or a 409 with a code the agency can act on: never a 500 or a deadlock."""
    allowed = {(200, None), (409, "offer_withdrawn"), (409, "offer_expired")}
    assert set(answers) <= allowed, Counter(answers)
    return Counter(answers)


async def test_declines_racing_withdrawals_never_deadlock_or_answer_500(settings: Settings):
    """40 offers; every withdrawal is published at once (the consumer applies them in batches, each
    batch holding the agency's feed row while it goes on to the next offer) while the agency declines
    every offer concurrently, three rounds. (Before the change a decline held its offer and waited for
    the agency's row the batch held, the batch waited for that offer: PostgreSQL killed one, and
    the agency got a 500.)"""
    async with running_notify(
        settings, jurisdiction(AGENCIES), NotifySettings(repage_every_s=3600)
    ) as notify:
        seen: Counter[tuple[int, str | None]] = Counter()
        async with notify.http() as http:
            for _ in range(3):
                offers = await offers_stored(notify, 40)
                withdrawals = asyncio.gather(*(notify.withdraw(o) for o in offers))
                answers = await asyncio.gather(*(decline(notify, http, o) for o in offers))
                await withdrawals
                seen += judged(list(answers))
                for offer in offers:
                    await eventually(
                        partial(notify.status, offer.assignment_id),
                        lambda s: s in FINAL,
                        what="a final state",
                    )
                    assert await notify.status(offer.assignment_id) in ("declined", "withdrawn")
        assert sum(seen.values()) == 120


async def test_declines_racing_the_deadline_never_deadlock_or_answer_500(settings: Settings):
    """40 offers whose deadline passes while the agency declines each of them and notify's expiry
    loop expires them: every answer is 200 (in time) or 409 offer_expired, and each offer ends
    declined or expired, never both (one expiry event per expired offer)."""
    fast = NotifySettings(repage_every_s=3600, expiry_interval_s=0.05)
    async with running_notify(settings, jurisdiction(AGENCIES), fast) as notify:
        offers = await offers_stored(notify, 40, deadline_s=3)
        first = await notify.pool.fetchval(
            "SELECT min(deadline) FROM notify.assignments WHERE agency_id = 'busy' AND status = 'offered'"
        )
        await eventually(
            lambda: notify.pool.fetchval("SELECT now() >= $1::timestamptz - interval '20 ms'", first),
            bool,
            5,
            what="the deadline to come",
        )
        async with notify.http() as http:
            answers = await asyncio.gather(*(decline(notify, http, o) for o in offers))
        counts = judged(list(answers))
        for offer in offers:
            await eventually(
                partial(notify.status, offer.assignment_id), lambda s: s in FINAL, what="a final state"
            )
        states = Counter([await notify.status(o.assignment_id) for o in offers])
        assert (
            states["declined"] == counts[(200, None)] and states["expired"] == counts[(409, "offer_expired")]
        )
        expiries = await notify.pool.fetch(
            "SELECT key FROM notify.outbox WHERE topic = $1", "assignments.expired.v1"
        )
        assert len(expiries) == states["expired"], "each expired offer published once"
