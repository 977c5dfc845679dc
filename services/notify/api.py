"""Notify's HTTP routes: an agency's assignments, its answers and its status reports."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse

from services.notify import feed, handlers, repository
from services.notify.schemas import Decline, StatusReport
from services.notify.settings import NotifySettings
from shared.auth import Authenticator, Principal
from shared.registries import DISPOSITIONS


def router(
    pool: asyncpg.Pool, auth: Authenticator, waker: feed.FeedWaker, settings: NotifySettings
) -> APIRouter:
    """The /v1 routes of notify."""
    api = APIRouter(prefix="/v1/assignments", tags=["assignments"])
    Agency = Annotated[Principal, Depends(auth.require("agency"))]
    Status = Literal[
        "offered", "accepted", "declined", "en_route", "on_scene", "cleared", "withdrawn", "expired"
    ]

    @api.get("")
    async def list_assignments(
        agency: Agency,
        status: Status | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """The agency's own assignments, newest first."""
        async with pool.acquire() as conn:
            rows = await repository.list_for_agency(conn, agency.tenant_id, status, limit)
        return [handlers.view(r) for r in rows]

    @api.get(
        "/stream",
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
    )
    async def stream(
        agency: Agency,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    ) -> EventSourceResponse:
        """The agency's own offers and updates as Server-Sent Events; send Last-Event-ID to resume.

        Each event's id is its sequence number in the agency's feed, its event name the kind
        (offered, withdrawn, expired, accepted, declined, en_route, on_scene, cleared,
        backup_requested) and its data the assignment as `GET /v1/assignments` shows it.
        """
        after = feed.parse_last_event_id(last_event_id)
        return EventSourceResponse(
            feed.events(pool, waker, settings, agency.tenant_id, after), ping=int(settings.sse_ping_s)
        )

    @api.post("/{assignment_id}/accept")
    async def accept(assignment_id: str, agency: Agency) -> dict[str, Any]:
        """Accept an offer before its deadline (accepting twice is a no-op)."""
        return await handlers.answer(pool, agency, assignment_id, "accepted")

    @api.post("/{assignment_id}/decline")
    async def decline(assignment_id: str, body: Decline, agency: Agency) -> dict[str, Any]:
        """Decline an offer with a reason code."""
        return await handlers.answer(
            pool, agency, assignment_id, "declined", body.reason_code, body.reason_text
        )

    @api.post("/{assignment_id}/status")
    async def status_report(assignment_id: str, body: StatusReport, agency: Agency) -> dict[str, Any]:
        """Report en route, on scene, cleared (with disposition) or a backup request."""
        return await handlers.report_status(
            pool, agency, assignment_id, body.status, body.disposition, body.urgency
        )

    return api


def registries() -> APIRouter:
    """Code lists an agency's software needs to answer well (public reference data)."""
    api = APIRouter(prefix="/v1", tags=["reference"])

    @api.get("/dispositions")
    async def dispositions() -> list[dict[str, str]]:
        """The EIDO common disposition codes a cleared report must use."""
        return [{"code": code, "description": text} for code, text in DISPOSITIONS.items()]

    return api
