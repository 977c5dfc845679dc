"""Notify's HTTP routes: an agency's assignments, its answers and its status reports."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse

from services.notify import feed, follow_ups, handlers, repository
from services.notify.liveness import Liveness
from services.notify.schemas import (
    AgencyLiveness,
    AssignmentStatus,
    AssignmentView,
    CheckIn,
    Decline,
    Disposition,
    FollowUpClose,
    FollowUpState,
    FollowUpView,
    StatusReport,
)
from services.notify.settings import NotifySettings
from shared.auth import Principal, require
from shared.errors import error_responses
from shared.http import Pool
from shared.registries import DISPOSITIONS


async def _live_agency(
    request: Request, background: BackgroundTasks, agency: Annotated[Principal, Depends(require("agency"))]
) -> Principal:
    """An agency's authenticated request, which is a sign of life, recorded once it is answered
    (outside the request's own transactions)."""
    liveness: Liveness = request.app.state.liveness
    background.add_task(liveness.seen, agency.tenant_id, "request")
    return agency


Agency = Annotated[Principal, Depends(_live_agency)]


async def _waker(request: Request) -> feed.FeedWaker:
    waker: feed.FeedWaker = request.app.state.waker
    return waker


async def _settings(request: Request) -> NotifySettings:
    settings: NotifySettings = request.app.state.settings
    return settings


Waker = Annotated[feed.FeedWaker, Depends(_waker)]
Settings = Annotated[NotifySettings, Depends(_settings)]

router = APIRouter(
    prefix="/v1/assignments", tags=["assignments"], responses=error_responses(401, 403, 429, 503)
)
# What an answer or report on one assignment can meet besides the router's: not the agency's, or refused.
_ANSWERED = error_responses(404, 409)


@router.get("")
async def list_assignments(
    agency: Agency,
    pool: Pool,
    status: AssignmentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AssignmentView]:
    """The agency's own assignments, newest first."""
    async with pool.acquire() as conn:
        rows = await repository.list_for_agency(conn, agency.tenant_id, status, limit)
    return [AssignmentView.model_validate(handlers.view(r)) for r in rows]


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream(
    request: Request,
    agency: Agency,
    pool: Pool,
    waker: Waker,
    settings: Settings,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> EventSourceResponse:
    """The agency's own offers and updates as Server-Sent Events; send Last-Event-ID to resume.

    Each event's id is its sequence number in the agency's feed, its event name the kind
    (offered, updated, withdrawn, expired, timer_missed, accepted, declined, en_route, on_scene,
    cleared, backup_requested, checked_in, timer_overdue: the PSAP was told of a miss) and its
    data the assignment as `GET /v1/assignments` shows it.
    """
    after = feed.parse_last_event_id(last_event_id)
    # An opened stream brings an unreachable agency back at once; notify's liveness job then
    # counts it as a sign of life on every pass while it stays open.
    liveness: Liveness = request.app.state.liveness
    await liveness.seen(agency.tenant_id, "stream")
    return EventSourceResponse(
        feed.events(pool, waker, settings, agency.tenant_id, after), ping=int(settings.sse_ping_s)
    )


@router.post("/{assignment_id}/accept", responses=_ANSWERED)
async def accept(assignment_id: str, agency: Agency, pool: Pool) -> AssignmentView:
    """Accept an offer before its deadline (accepting twice is a no-op)."""
    return AssignmentView.model_validate(await handlers.answer(pool, agency, assignment_id, "accepted"))


@router.post("/{assignment_id}/decline", responses=_ANSWERED)
async def decline(assignment_id: str, body: Decline, agency: Agency, pool: Pool) -> AssignmentView:
    """Decline an offer with a reason code."""
    answered = await handlers.answer(
        pool, agency, assignment_id, "declined", body.reason_code, body.reason_text
    )
    return AssignmentView.model_validate(answered)


@router.post("/{assignment_id}/status", responses=_ANSWERED)
async def status_report(assignment_id: str, body: StatusReport, agency: Agency, pool: Pool) -> AssignmentView:
    """Report en route (optionally with the team's ETA), on scene, cleared (with disposition) or a
    backup request; each step starts the timer of the next (see the jurisdiction's watch section)."""
    reported = await handlers.report_status(
        pool, agency, assignment_id, body.status, body.disposition, body.urgency, body.eta_min
    )
    return AssignmentView.model_validate(reported)


@router.post("/{assignment_id}/check-in", responses=_ANSWERED)
async def check_in(assignment_id: str, body: CheckIn, agency: Agency, pool: Pool) -> AssignmentView:
    """A team on scene checks in: the safety check-in timer starts again (409 unless on scene)."""
    return AssignmentView.model_validate(await handlers.check_in(pool, agency, assignment_id, body.code))


follow_up_router = APIRouter(
    prefix="/v1/follow-ups", tags=["follow-ups"], responses=error_responses(401, 403, 429, 503)
)


@follow_up_router.get("")
async def list_follow_ups(
    agency: Agency,
    pool: Pool,
    state: FollowUpState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FollowUpView]:
    """The 988 center's own follow-ups (one per call it accepted), newest first."""
    return [FollowUpView.model_validate(f) for f in await follow_ups.list_for(pool, agency, state, limit)]


@follow_up_router.post("/{follow_up_id}/close", responses=_ANSWERED)
async def close_follow_up(follow_up_id: str, body: FollowUpClose, agency: Agency, pool: Pool) -> FollowUpView:
    """Close a follow-up with how the call back went (closing it again the same way is a no-op;
    another outcome is 409 `follow_up_closed`)."""
    closed = await follow_ups.close(pool, agency, follow_up_id, body.outcome, body.note)
    return FollowUpView.model_validate(closed)


registries = APIRouter(prefix="/v1", tags=["reference"], responses=error_responses())


@registries.get("/dispositions")
async def dispositions() -> list[Disposition]:
    """The EIDO common disposition codes a cleared report must use (public reference data)."""
    return [Disposition(code=code, description=text) for code, text in DISPOSITIONS.items()]


agency_router = APIRouter(prefix="/v1", tags=["agency"], responses=error_responses(401, 403, 429, 503))


@agency_router.post("/heartbeat")
async def heartbeat(
    request: Request, agency: Annotated[Principal, Depends(require("agency"))], pool: Pool
) -> AgencyLiveness:
    """Say the agency is there: an explicit sign of life, for an agency none of whose channels
    shows one (its teams are skipped once it has been silent past its liveness timeout)."""
    liveness: Liveness = request.app.state.liveness
    await liveness.seen(agency.tenant_id, "request", force=True)
    return AgencyLiveness.model_validate(await liveness.state(pool, agency.tenant_id))
