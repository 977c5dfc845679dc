"""Audit's use cases: append every event to the chain, verify the trail, draw the area and
workforce reports from it."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.audit import areas, domain, outcomes, period, repository, workforce
from services.audit.checkpoints import Checkpointer
from services.audit.metrics import EVENTS_FLAGGED
from services.audit.note import NoteError, open_checkpoint
from services.audit.stories import stories
from shared.envelope import Envelope, utcnow

log = structlog.get_logger(__name__)


async def on_any_event(conn: asyncpg.Connection, event: Envelope, _: Any) -> None:
    """Append the event to the trail (the inbox already dropped a redelivery), as the insert-only role."""
    await on_events(conn, [(event, None)])


async def on_events(conn: asyncpg.Connection, items: list[tuple[Envelope, Any]]) -> None:
    """Append a run of events to the trail in their order, as the insert-only role; an event that
    cannot be encoded canonically is kept flagged and alarmed, never refused."""
    await repository.act_as_writer(conn, appending=True)
    flagged = set(
        await repository.append_many(conn, [(event, os.urandom(16)) for event, _ in items], utcnow())
    )
    for event, _ in items:
        if str(event.id) in flagged:
            EVENTS_FLAGGED.labels(type=event.type).inc()
            log.error(
                "event kept flagged: not canonical; its received bytes are sealed",
                event_id=str(event.id),
                type=event.type,
                source=event.source,
            )


async def verify(
    pool: asyncpg.Pool, checkpointer: Checkpointer, first: int, last: int | None
) -> dict[str, Any]:
    """Re-walk the chain over a range (against the signed checkpoints from seq 1) and report."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        head_seq, _ = await repository.head(conn)
        prev = await repository.hash_before(conn, first)
        end = min(last, head_seq) if last is not None else head_seq
        result: dict[str, Any] = {"head_seq": head_seq, "range": [first, end], "checkpoints_checked": 0}
        if prev is None:
            return {
                **result,
                "ok": False,
                "checked": 0,
                "first_bad_seq": first - 1,
                "reason": "gap: the row before the range is missing",
            }
        # Checkpoints are compared only on a walk from seq 1, where the tree can be rebuilt.
        kept, refused = await checkpointer.kept(conn) if first == 1 and last is None else ({}, [])
        walker = domain.ChainWalker(kept, first_seq=first, prev_hash=prev)
        async for stored in repository.stream(conn, first, last):
            if walker.feed(repository.chain_row(stored)) is not None:
                break
        verdict = walker.finish(end if end >= first else None)
    if verdict.ok and refused:
        # Someone with database access replaced a signed checkpoint: the trail cannot be vouched for.
        verdict = domain.Verdict(False, verdict.checked, None, f"a stored checkpoint is forged: {refused[0]}")
    return {
        **result,
        "checkpoints_checked": len(kept),
        "ok": verdict.ok,
        "checked": verdict.checked,
        "first_bad_seq": verdict.first_bad_seq,
        "reason": verdict.reason,
    }


async def integrity(conn: asyncpg.Connection, checkpointer: Checkpointer) -> dict[str, Any]:
    """The trail's length and its newest kept checkpoint, with whether that one's signature holds."""
    head_seq, _ = await repository.head(conn)
    latest = await repository.latest_checkpoint(conn)
    if latest is None:
        return {"head_seq": head_seq, "checkpoint": None}
    try:
        signed = open_checkpoint(latest.note, checkpointer.key)
        signature_ok = (signed.size, signed.root) == (latest.tree_size, latest.root_hash)
    except NoteError:
        signature_ok = False
    return {
        "head_seq": head_seq,
        "checkpoint": {
            "origin": latest.note.split("\n", 1)[0],
            "tree_size": latest.tree_size,
            "root_hash": latest.root_hash.hex(),
            "signed_at": latest.created_at,
            "signature_ok": signature_ok,
        },
    }


def as_of(until: datetime | None) -> datetime:
    """When a report judges review deadlines: now, or the end of its period if that is earlier."""
    end = period.aware(until)
    return min(utcnow(), end) if end is not None else utcnow()


async def area_report(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Behavioural-health calls received in a period by zone and local hour (`areas.areas`); each
    call's zone is named here from its full location, which goes no further."""
    since, until = period.checked(since, until)
    config = await repository.report_config(conn)
    calls = stories(await repository.report_events(conn, since, until))
    located = await repository.call_locations(conn, since, until)
    zone_by_call = {c: areas.zone_of(areas.position_of(located.get(c)), config.zones) for c in calls}
    fates = outcomes.outcomes(calls, as_of(until))
    table = areas.areas(calls, fates, zone_by_call, [z.name for z in config.zones], config.timezone)
    return {"from": since, "to": until, "timezone": str(config.timezone), **table}


async def workforce_report(
    conn: asyncpg.Connection,
    since: datetime | None,
    until: datetime | None,
    target: float,
    within_min: float,
) -> dict[str, Any]:
    """The teams each hour of the week needs against those on shift (`workforce.workforce`), over a
    period widened to whole hours."""
    workforce.check_level(target, within_min)
    start, end = period.checked(since, until, required=True)
    assert start is not None and end is not None  # required: checked refuses a missing end
    start, end = period.whole_hours(start, end)
    config = await repository.report_config(conn)
    calls = stories(await repository.report_events(conn, start, end))
    fates = outcomes.outcomes(calls, as_of(end))
    return workforce.workforce(calls, fates, (start, end), config.timezone, config.teams, target, within_min)
