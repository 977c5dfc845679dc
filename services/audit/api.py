"""Audit's HTTP routes: the oversight API over the trail, its proofs, exports and reports."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from services.audit import checkpoints, handlers, reports, repository
from services.audit.checkpoints import Checkpointer
from shared.auth import Authenticator, Principal
from shared.errors import ApiError, not_found

Limit = Annotated[int, Query(ge=1, le=1000)]


def _shape(stored: dict[str, Any], full: bool) -> dict[str, Any]:
    envelope = stored["envelope"] if full else stored["public"]
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


def export_line(stored: dict[str, Any]) -> dict[str, Any]:
    """One JSON Lines export record: what a stand-alone verifier needs, redacted."""
    return {
        "seq": stored["seq"],
        "recorded_at": stored["recorded_at"].isoformat(),
        "event": stored["public"],
        "sealed": stored["sealed"],
        "prev_hash": stored["prev_hash"],
        "row_hash": stored["row_hash"],
    }


CSV_COLUMNS = ("seq", "recorded_at", "event_id", "type", "subject", "agency_id", "time", "row_hash", "data")


def _csv_row(stored: dict[str, Any]) -> list[Any]:
    e = stored["public"]
    return [
        stored["seq"],
        stored["recorded_at"].isoformat(),
        e["id"],
        e["type"],
        e["subject"],
        e["data"].get("agency_id", ""),
        e["time"],
        stored["row_hash"],
        json.dumps(e["data"], sort_keys=True),
    ]


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since and until and since >= until:
        raise ApiError(422, "invalid_range", "since must be before until")


def router(pool: asyncpg.Pool, auth: Authenticator, checkpointer: Checkpointer) -> APIRouter:
    """The /v1/audit routes."""
    api = APIRouter(prefix="/v1/audit", tags=["audit"])
    Reader = Annotated[Principal, Depends(auth.require("oversight", "admin"))]

    async def full_detail(request: Request, who: Principal, phi: bool) -> bool:
        """Whether to show unredacted events: only an admin asking for phi, and that read is recorded."""
        if not phi:
            return False
        if who.role != "admin":
            raise ApiError(403, "forbidden", "full detail (phi) is for the admin role only")
        await auth.record(request, "allowed", who, "phi: unredacted read")
        return True

    @api.get("/calls/{call_id}")
    async def call_trail(call_id: str, who: Reader, request: Request, phi: bool = False) -> dict[str, Any]:
        """One call's whole story, in trail order (redacted unless an admin asks for phi)."""
        full = await full_detail(request, who, phi)
        async with pool.acquire() as conn:
            stored = await repository.events_of_call(conn, call_id)
        if not stored:
            raise not_found("call")
        return {"call_id": call_id, "events": [_shape(s, full) for s in stored]}

    @api.get("/events")
    async def list_events(
        who: Reader,
        request: Request,
        call_id: str | None = None,
        agency_id: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: Annotated[int, Query(ge=0)] = 0,
        limit: Limit = 100,
        phi: bool = False,
    ) -> dict[str, Any]:
        """Events by call, agency, type and time range (NENA RetrieveLogEvents); pass `next_cursor` back."""
        _check_range(since, until)
        full = await full_detail(request, who, phi)
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
        return {"events": [_shape(s, full) for s in stored], "next_cursor": next_cursor}

    @api.get("/event-ids")
    async def list_event_ids(
        _: Reader, call_id: str, cursor: Annotated[int, Query(ge=0)] = 0, limit: Limit = 100
    ) -> dict[str, Any]:
        """Ids of one call's events (NENA ListLogEventsById)."""
        async with pool.acquire() as conn:
            rows = await repository.event_ids(conn, call_id, cursor, limit)
        return {
            "event_ids": [str(r["event_id"]) for r in rows],
            "next_cursor": rows[-1]["seq"] if len(rows) == limit else None,
        }

    @api.get("/call-ids")
    async def list_call_ids(
        _: Reader,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str = "",
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """Ids of calls received in a time range (NENA ListCalls); pass `next_cursor` back."""
        _check_range(since, until)
        async with pool.acquire() as conn:
            ids = await repository.call_ids(conn, since, until, cursor, limit)
        return {"call_ids": ids, "next_cursor": ids[-1] if len(ids) == limit else None}

    @api.get("/agency-ids")
    async def list_agency_ids(_: Reader, call_id: str | None = None) -> dict[str, Any]:
        """Agencies involved in one call, or in any (NENA ListAgenciesById)."""
        async with pool.acquire() as conn:
            return {"agency_ids": await repository.agency_ids(conn, call_id)}

    @api.get("/verify")
    async def verify(
        _: Reader,
        first: Annotated[int, Query(ge=1)] = 1,
        last: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """Re-walk the hash chain (a range or all) and the signed checkpoints: ok, or the first bad row."""
        if last is not None and last < first:
            raise ApiError(422, "invalid_range", "last must not be below first")
        return await handlers.verify(pool, checkpointer, first, last)

    @api.get("/key")
    async def key(_: Reader) -> dict[str, str]:
        """The checkpoint verifier key (`name+keyid+base64(0x01||ed25519 public key)`)."""
        return {"origin": checkpointer.key.name, "verifier_key": checkpointer.key.encode()}

    @api.get("/checkpoint", response_class=PlainTextResponse)
    async def checkpoint(_: Reader, size: Annotated[int | None, Query(ge=1)] = None) -> PlainTextResponse:
        """The latest signed checkpoint (or the one of `size`), as a C2SP signed note."""
        async with pool.acquire() as conn:
            if size is None:
                latest = await repository.latest_checkpoint(conn)
                note = latest["note"] if latest else None
            else:
                note = await repository.checkpoint_of_size(conn, size)
        if note is None:
            raise not_found("checkpoint")
        return PlainTextResponse(note, media_type="text/plain; charset=utf-8")

    async def prove(size: int, make: Callable[[asyncpg.Connection], Awaitable[list[bytes]]]) -> list[str]:
        """A proof within the tree of `size` rows, hex-encoded; 404 when the tree is not that big yet."""
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            if size > (await repository.head(conn))[0]:
                raise not_found("tree of that size")
            try:
                return [p.hex() for p in await make(conn)]
            except checkpoints.MissingNodes as exc:
                raise ApiError(404, "proof_unavailable", str(exc)) from exc

    @api.get("/proofs/inclusion")
    async def inclusion_proof(
        _: Reader, seq: Annotated[int, Query(ge=1)], size: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of row `seq` (leaf index seq-1) in the tree of `size` rows."""
        if seq > size:
            raise ApiError(422, "invalid_range", "seq must not be above size")
        proof = await prove(size, lambda conn: checkpoints.inclusion(conn, seq, size))
        return {"seq": seq, "leaf_index": seq - 1, "tree_size": size, "proof": proof}

    @api.get("/proofs/consistency")
    async def consistency_proof(
        _: Reader, first: Annotated[int, Query(ge=1)], second: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        """The RFC 9162 consistency proof from the tree of `first` rows to the tree of `second` rows."""
        if first > second:
            raise ApiError(422, "invalid_range", "first must not be above second")
        proof = await prove(second, lambda conn: checkpoints.consistency(conn, first, second))
        return {"first": first, "second": second, "proof": proof}

    @api.get("/export")
    async def export(
        _: Reader,
        format: Literal["jsonl", "csv"] = "jsonl",
        first: Annotated[int, Query(ge=1)] = 1,
        last: Annotated[int | None, Query(ge=1)] = None,
    ) -> StreamingResponse:
        """The redacted trail as JSON Lines (what `careroute verify` reads) or CSV, streamed in batches."""

        async def lines() -> AsyncIterator[str]:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                if format == "csv":
                    yield ",".join(CSV_COLUMNS) + "\r\n"
                async for stored in repository.stream(conn, first, last):
                    if format == "jsonl":
                        yield json.dumps(export_line(stored), separators=(",", ":")) + "\n"
                    else:
                        out = io.StringIO()
                        csv.writer(out).writerow(_csv_row(stored))
                        yield out.getvalue()

        media = "application/x-ndjson" if format == "jsonl" else "text/csv"
        return StreamingResponse(lines(), media_type=media)

    return api


def reports_router(pool: asyncpg.Pool, auth: Authenticator) -> APIRouter:
    """The /v1/reports routes."""
    api = APIRouter(prefix="/v1/reports", tags=["reports"])
    Reader = Annotated[Principal, Depends(auth.require("oversight", "admin"))]

    @api.get("/summary")
    async def summary(
        _: Reader,
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        agency: str | None = None,
    ) -> dict[str, Any]:
        """The diversion funnel, reasons, hand-backs, backups, time percentiles and coverage gaps."""
        _check_range(since, until)
        async with pool.acquire() as conn:
            events = await repository.report_events(conn, since, until)
        return {"from": since, "to": until, "agency": agency, **reports.summary(events, agency)}

    return api
