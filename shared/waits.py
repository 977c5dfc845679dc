"""Waiting on asyncio events: a background job sleeps until woken, told to stop, or its time is up."""

from __future__ import annotations

import asyncio


async def first_of(*events: asyncio.Event, timeout_s: float) -> None:
    """Return when any of `events` is set or after `timeout_s`, whichever comes first."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
