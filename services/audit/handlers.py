"""Audit's use cases: append every event to the chain, answer oversight queries, verify."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.audit import domain, repository
from shared.envelope import Envelope, utcnow


async def on_any_event(conn: asyncpg.Connection, event: Envelope, _: Any) -> None:
    """Append the event to the trail (the inbox already dropped a redelivery)."""
    await repository.append(conn, event, utcnow())


async def verify(pool: asyncpg.Pool, first: int, last: int | None) -> dict[str, Any]:
    """Re-walk the chain over a range and report ok or the first bad row."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        head_seq, head_hash = await repository.head(conn)
        prev = await repository.hash_before(conn, first)
        rows = await repository.chain_rows(conn, first, last)
    end = min(last, head_seq) if last is not None else head_seq
    if prev is None:
        return {
            "ok": False,
            "checked": 0,
            "first_bad_seq": first - 1,
            "reason": "gap: the row before the range is missing",
        }
    verdict = domain.verify(rows, prev, first)
    result: dict[str, Any] = {
        "ok": verdict.ok,
        "checked": verdict.checked,
        "first_bad_seq": verdict.first_bad_seq,
        "reason": verdict.reason,
        "head_seq": head_seq,
        "range": [first, end],
    }
    if verdict.ok and end >= first and (not rows or rows[-1].seq != end):
        result.update(
            ok=False,
            first_bad_seq=(rows[-1].seq + 1) if rows else first,
            reason="truncated: rows missing below the chain head",
        )
    elif verdict.ok and last is None and rows and rows[-1].row_hash != head_hash:
        result.update(ok=False, first_bad_seq=rows[-1].seq, reason="the chain head does not match")
    return result
