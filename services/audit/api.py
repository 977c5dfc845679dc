"""Audit's HTTP routes: the oversight API over the trail."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from services.audit import domain, handlers, repository
from shared.auth import Authenticator, Principal
from shared.errors import ApiError, not_found


def _shape(stored: dict[str, Any], who: Principal) -> dict[str, Any]:
    envelope = stored["envelope"] if who.role == "admin" else domain.redact(stored["envelope"])
    return {
        "seq": stored["seq"],
        "recorded_at": stored["recorded_at"],
        "row_hash": stored["row_hash"],
        "id": envelope["id"],
        "type": envelope["type"],
        "source": envelope["source"],
        "subject": envelope["subject"],
        "time": envelope["time"],
        "correlationid": envelope.get("correlationid"),
        "causationid": envelope.get("causationid"),
        "data": envelope["data"],
    }


def router(pool: asyncpg.Pool, auth: Authenticator) -> APIRouter:
    """The /v1/audit routes."""
    api = APIRouter(prefix="/v1/audit", tags=["audit"])
    Reader = Annotated[Principal, Depends(auth.require("oversight", "admin"))]

    @api.get("/calls/{call_id}")
    async def call_trail(call_id: str, who: Reader) -> dict[str, Any]:
        """One call's whole story, in trail order (contact details redacted for oversight)."""
        async with pool.acquire() as conn:
            stored = await repository.events_of_call(conn, call_id)
        if not stored:
            raise not_found("call")
        return {"call_id": call_id, "events": [_shape(s, who) for s in stored]}

    @api.get("/events")
    async def list_events(
        who: Reader,
        call_id: str | None = None,
        agency_id: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Events by call, agency, type and time range; pass `next_cursor` back for the next page."""
        if since and until and since >= until:
            raise ApiError(422, "invalid_range", "since must be before until")
        async with pool.acquire() as conn:
            stored = await repository.search(
                conn,
                call_id=call_id,
                agency_id=agency_id,
                type_=type,
                since=since,
                until=until,
                after_seq=cursor,
                limit=limit,
            )
        next_cursor = stored[-1]["seq"] if len(stored) == limit else None
        return {"events": [_shape(s, who) for s in stored], "next_cursor": next_cursor}

    @api.get("/verify")
    async def verify(
        _: Reader,
        first: Annotated[int, Query(ge=1)] = 1,
        last: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """Re-walk the hash chain (all, or a range) and report ok or the first bad row."""
        if last is not None and last < first:
            raise ApiError(422, "invalid_range", "last must not be below first")
        return await handlers.verify(pool, first, last)

    return api
