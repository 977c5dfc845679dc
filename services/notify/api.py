"""Notify's HTTP routes: an agency's assignments, its answers and its status reports."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query

from services.notify import handlers, repository
from services.notify.schemas import Decline, StatusReport
from shared.auth import Authenticator, Principal


def router(pool: asyncpg.Pool, auth: Authenticator) -> APIRouter:
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
