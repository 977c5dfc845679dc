"""Audit's HTTP routes: the oversight API over the trail, its proofs, exports and reports."""

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel

from services.audit import checkpoints, handlers, outcomes, reports, repository, shadow, tables
from services.audit.checkpoints import Checkpointer
from services.audit.repository import StoredEvent
from services.audit.schemas import (
    AgencyIds,
    AreaReport,
    CallIds,
    CallTrail,
    ConsistencyProof,
    DispositionClass,
    EventIds,
    EventPage,
    InclusionProof,
    Integrity,
    ShadowDifferences,
    Summary,
    TrailEvent,
    Verification,
    VerifierKey,
    WorkforceReport,
    ZoneMap,
    ZoneShape,
)
from shared.auth import Authenticator, Principal, require
from shared.errors import ApiError, error_responses, not_found
from shared.http import Pool

# A trail position is a PostgreSQL bigint: a larger one is refused (422) before any query.
MAX_SEQ = 2**63 - 1
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int, Query(ge=0, le=MAX_SEQ)]
Seq = Annotated[int, Query(ge=1, le=MAX_SEQ)]
Reader = Annotated[Principal, Depends(require("oversight", "admin"))]


async def _checkpointer(request: Request) -> Checkpointer:
    checkpointer: Checkpointer = request.app.state.checkpointer
    return checkpointer


CheckpointerDep = Annotated[Checkpointer, Depends(_checkpointer)]


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(view: dict[str, Any], key: str) -> str:
    value = view.get(key)
    return value if isinstance(value, str) else ""


def _optional_text(view: dict[str, Any], key: str) -> str | None:
    value = view.get(key)
    return value if isinstance(value, str) else None


def _shape(stored: StoredEvent, full: bool) -> TrailEvent:
    # Total over whatever a row holds: a flagged row shows its header alone, and a row edited
    # since (not an object, keys missing or of another type) shows what is there, empty elsewhere,
    # so one stored row never fails a whole answer; /verify names such a row.
    view = _object(stored.envelope if full else stored.public)
    return TrailEvent(
        seq=stored.seq,
        recorded_at=stored.recorded_at,
        row_hash=stored.row_hash,
        id=_text(view, "id"),
        type=_text(view, "type"),
        source=_text(view, "source"),
        subject=_text(view, "subject"),
        time=_text(view, "time"),
        correlationid=_optional_text(view, "correlationid"),
        causationid=_optional_text(view, "causationid"),
        data=_object(view.get("data")),
    )


def export_line(stored: StoredEvent) -> dict[str, Any]:
    """One JSON Lines export record: what a stand-alone verifier needs, redacted."""
    return {
        "seq": stored.seq,
        "recorded_at": stored.recorded_at.isoformat(),
        "event": stored.public,
        "sealed": stored.sealed,
        "prev_hash": stored.prev_hash,
        "row_hash": stored.row_hash,
    }


CSV_COLUMNS = ("seq", "recorded_at", "event_id", "type", "subject", "agency_id", "time", "row_hash", "data")


def _csv_row(stored: StoredEvent) -> list[Any]:
    e = _object(stored.public)
    data = _object(e.get("data"))
    return [
        stored.seq,
        stored.recorded_at.isoformat(),
        _text(e, "id"),
        _text(e, "type"),
        _text(e, "subject"),
        data.get("agency_id", ""),
        _text(e, "time"),
        stored.row_hash,
        json.dumps(data, sort_keys=True),
    ]


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since and until and since >= until:
        raise ApiError(422, "invalid_range", "since must be before until")


async def _full_detail(request: Request, who: Principal, phi: bool) -> bool:
    """Whether to show unredacted events: only an admin asking for phi, and that read is recorded."""
    if not phi:
        return False
    if who.role != "admin":
        raise ApiError(403, "forbidden", "full detail (phi) is for the admin role only")
    auth: Authenticator = request.app.state.auth
    await auth.record(request, "allowed", who, "phi: unredacted read")
    return True


router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=error_responses(401, 403, 429, 503))


@router.get("/calls/{call_id}", responses=error_responses(404))
async def call_trail(call_id: str, who: Reader, request: Request, pool: Pool, phi: bool = False) -> CallTrail:
    """One call's whole story, in trail order (redacted unless an admin asks for phi)."""
    full = await _full_detail(request, who, phi)
    async with pool.acquire() as conn:
        stored = await repository.events_of_call(conn, call_id)
    if not stored:
        raise not_found("call")
    return CallTrail(call_id=call_id, events=[_shape(s, full) for s in stored])


@router.get("/events")
async def list_events(
    who: Reader,
    request: Request,
    pool: Pool,
    call_id: str | None = None,
    agency_id: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Cursor = 0,
    limit: Limit = 100,
    phi: bool = False,
) -> EventPage:
    """Events by call, agency, type and time range (NENA RetrieveLogEvents); pass `next_cursor` back."""
    _check_range(since, until)
    full = await _full_detail(request, who, phi)
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
    next_cursor = stored[-1].seq if len(stored) == limit else None
    return EventPage(events=[_shape(s, full) for s in stored], next_cursor=next_cursor)


@router.get("/event-ids")
async def list_event_ids(
    _: Reader, pool: Pool, call_id: str, cursor: Cursor = 0, limit: Limit = 100
) -> EventIds:
    """Ids of one call's events (NENA ListLogEventsById)."""
    async with pool.acquire() as conn:
        rows = await repository.event_ids(conn, call_id, cursor, limit)
    return EventIds(
        event_ids=[str(r.event_id) for r in rows],
        next_cursor=rows[-1].seq if len(rows) == limit else None,
    )


@router.get("/call-ids")
async def list_call_ids(
    _: Reader,
    pool: Pool,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str = "",
    limit: Limit = 100,
) -> CallIds:
    """Ids of calls received in a time range (NENA ListCalls); pass `next_cursor` back."""
    _check_range(since, until)
    async with pool.acquire() as conn:
        ids = await repository.call_ids(conn, since, until, cursor, limit)
    return CallIds(call_ids=ids, next_cursor=ids[-1] if len(ids) == limit else None)


@router.get("/agency-ids")
async def list_agency_ids(_: Reader, pool: Pool, call_id: str | None = None) -> AgencyIds:
    """Agencies involved in one call, or in any (NENA ListAgenciesById)."""
    async with pool.acquire() as conn:
        return AgencyIds(agency_ids=await repository.agency_ids(conn, call_id))


@router.get("/verify")
async def verify(
    _: Reader,
    pool: Pool,
    checkpointer: CheckpointerDep,
    first: Seq = 1,
    last: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
) -> Verification:
    """Re-walk the hash chain (a range or all) and the signed checkpoints: ok, or the first bad row."""
    if last is not None and last < first:
        raise ApiError(422, "invalid_range", "last must not be below first")
    return Verification.model_validate(await handlers.verify(pool, checkpointer, first, last))


@router.get("/key")
async def key(_: Reader, checkpointer: CheckpointerDep) -> VerifierKey:
    """The checkpoint verifier key (`name+keyid+base64(0x01||ed25519 public key)`)."""
    return VerifierKey(origin=checkpointer.key.name, verifier_key=checkpointer.key.encode())


@router.get("/checkpoint", response_class=PlainTextResponse, responses=error_responses(404))
async def checkpoint(
    _: Reader, pool: Pool, size: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None
) -> PlainTextResponse:
    """The latest signed checkpoint (or the one of `size`), as a C2SP signed note."""
    async with pool.acquire() as conn:
        if size is None:
            latest = await repository.latest_checkpoint(conn)
            note = latest.note if latest else None
        else:
            note = await repository.checkpoint_of_size(conn, size)
    if note is None:
        raise not_found("checkpoint")
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


async def _prove(
    pool: asyncpg.Pool, size: int, make: Callable[[asyncpg.Connection], Awaitable[list[bytes]]]
) -> list[str]:
    """A proof within the tree of `size` rows, hex-encoded; 404 when the tree is not that big yet."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        if size > (await repository.head(conn))[0]:
            raise not_found("tree of that size")
        try:
            return [p.hex() for p in await make(conn)]
        except checkpoints.MissingNodes as exc:
            raise ApiError(404, "proof_unavailable", str(exc)) from exc


@router.get("/proofs/inclusion", responses=error_responses(404))
async def inclusion_proof(_: Reader, pool: Pool, seq: Seq, size: Seq) -> InclusionProof:
    """The RFC 9162 inclusion proof of row `seq` (leaf index seq-1) in the tree of `size` rows."""
    if seq > size:
        raise ApiError(422, "invalid_range", "seq must not be above size")
    proof = await _prove(pool, size, lambda conn: checkpoints.inclusion(conn, seq, size))
    return InclusionProof(seq=seq, leaf_index=seq - 1, tree_size=size, proof=proof)


@router.get("/proofs/consistency", responses=error_responses(404))
async def consistency_proof(_: Reader, pool: Pool, first: Seq, second: Seq) -> ConsistencyProof:
    """The RFC 9162 consistency proof from the tree of `first` rows to the tree of `second` rows."""
    if first > second:
        raise ApiError(422, "invalid_range", "first must not be above second")
    proof = await _prove(pool, second, lambda conn: checkpoints.consistency(conn, first, second))
    return ConsistencyProof(first=first, second=second, proof=proof)


async def _export_lines(pool: asyncpg.Pool, format: str, first: int, last: int | None) -> AsyncIterator[str]:
    """The export's lines, read in one repeatable-read snapshot."""
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


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The trail, one record a line",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def export(
    _: Reader,
    pool: Pool,
    format: Literal["jsonl", "csv"] = "jsonl",
    first: Seq = 1,
    last: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
) -> StreamingResponse:
    """The redacted trail as JSON Lines (what `careroute verify` reads) or CSV, streamed in batches."""
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    return StreamingResponse(_export_lines(pool, format, first, last), media_type=media)


reports_router = APIRouter(
    prefix="/v1/reports", tags=["reports"], responses=error_responses(401, 403, 429, 503)
)


async def _wanted(
    accept: Annotated[
        str | None,
        Header(description="application/json (the default) or text/csv; anything else answers 406"),
    ] = None,
) -> tables.Media:
    """JSON or CSV, as the request's Accept header asks (checked before any query)."""
    return tables.chosen(accept)


Wanted = Annotated[tables.Media, Depends(_wanted)]
# A report that also answers CSV: its 200 in both types, and 406 for any other Accept.
AS_CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report; with `Accept: text/csv`, its table as CSV (withheld cells read"
        " `suppressed`)",
        "content": {tables.CSV: {"schema": {"type": "string"}}},
    },
    **error_responses(406),
}


def _answer(
    report: BaseModel, media: tables.Media, name: str, as_csv: Callable[[Mapping[str, Any]], str]
) -> BaseModel | Response:
    """The report itself, or its CSV (a download named after the report) when that is wanted."""
    if media == tables.JSON:
        return report
    return Response(
        as_csv(report.model_dump(by_alias=True)),
        media_type=f"{tables.CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="careroute-{name}.csv"'},
    )


@reports_router.get("/summary", response_model=Summary, responses=AS_CSV)
async def summary(
    _: Reader,
    pool: Pool,
    media: Wanted,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    agency: str | None = None,
) -> BaseModel | Response:
    """The diversion funnel, every behavioural-health call's outcome, hand-backs, backups, time
    percentiles and coverage gaps (by UTC hour, and by local hour of the week); a review deadline
    counts as passed when it is before `to` and now. As CSV: one row per figure."""
    _check_range(since, until)
    async with pool.acquire() as conn:
        events = await repository.report_events(conn, since, until)
        config = await repository.report_config(conn)
    now = handlers.as_of(until)
    found = reports.summary(events, agency, now, config.timezone)
    report = Summary.model_validate({"from": since, "to": until, "agency": agency, **found})
    return _answer(report, media, "summary", tables.summary)


@reports_router.get("/dispositions")
async def dispositions(_: Reader) -> list[DispositionClass]:
    """The EIDO disposition registry as the reports classify it: which codes involve law enforcement."""
    return [DispositionClass(code=code, **d) for code, d in outcomes.dispositions().items()]


@reports_router.get("/shadow", response_model=ShadowDifferences, responses=AS_CSV)
async def shadow_differences(
    _: Reader,
    pool: Pool,
    media: Wanted,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> BaseModel | Response:
    """Calls received in a period whose shadow rule set's decision differs from the active one,
    counted by pair of routes with their call ids, so a region sees what a change would do."""
    _check_range(since, until)
    async with pool.acquire() as conn:
        events = await repository.report_events(conn, since, until)
    table = shadow.differences(shadow.from_trail(events))
    report = ShadowDifferences.model_validate({"from": since, "to": until, **table})
    return _answer(report, media, "shadow", tables.shadow)


Since = Annotated[
    datetime | None, Query(alias="from", description="first moment (ISO 8601; UTC if no offset)")
]
Until = Annotated[datetime | None, Query(alias="to", description="end of the period, excluded")]


@reports_router.get("/areas", response_model=AreaReport, responses=AS_CSV)
async def areas(
    _: Reader, pool: Pool, media: Wanted, since: Since = None, until: Until = None
) -> BaseModel | Response:
    """Who is left to police: behavioural-health calls by zone and local hour of day, with the
    diversion, police-involvement and hand-back rates and the time to a team on scene; a cell of
    fewer than 11 calls (or one subtraction would tell) shows `suppressed` and no figures. 422
    `invalid_range`, `period_too_long` (over 366 days), `period_out_of_range`."""
    async with pool.acquire() as conn:
        report = AreaReport.model_validate(await handlers.area_report(conn, since, until))
    return _answer(report, media, "areas", tables.areas)


@reports_router.get("/workforce", response_model=WorkforceReport, responses=AS_CSV)
async def workforce(
    _: Reader,
    pool: Pool,
    media: Wanted,
    since: Since = None,
    until: Until = None,
    target: Annotated[float, Query(gt=0, lt=1, description="share of eligible calls to reach in time")] = 0.9,
    within_min: Annotated[
        float, Query(gt=0, le=1440, description="minutes a call may wait for a team")
    ] = 15.0,
) -> BaseModel | Response:
    """How many crisis teams it would take: for each hour of the week, eligible arrivals per hour,
    the teams Erlang C needs so that `target` of calls wait at most `within_min` minutes for one,
    the teams on shift and the shortfall, with the model's inputs. 422 `period_required` (from and
    to), `invalid_range`, `period_too_long`, `period_out_of_range`, or `invalid_request`."""
    async with pool.acquire() as conn:
        report = WorkforceReport.model_validate(
            await handlers.workforce_report(conn, since, until, target, within_min)
        )
    return _answer(report, media, "workforce", tables.workforce)


@reports_router.get("/zones")
async def zones(_: Reader, pool: Pool) -> ZoneMap:
    """The zones the area report counts calls by, with their [lon, lat] rings, for drawing a map."""
    async with pool.acquire() as conn:
        config = await repository.report_config(conn)
    return ZoneMap(
        timezone=str(config.timezone),
        zones=[ZoneShape(name=z.name, polygon=z.polygon) for z in config.zones],
    )


@reports_router.get("/integrity")
async def integrity(_: Reader, pool: Pool, checkpointer: CheckpointerDep) -> Integrity:
    """The trail's length and its newest signed checkpoint (its tree size, root, when it was signed,
    whether the signature verifies); `/v1/audit/verify` re-walks the chain against them."""
    async with pool.acquire() as conn:
        return Integrity.model_validate(await handlers.integrity(conn, checkpointer))
