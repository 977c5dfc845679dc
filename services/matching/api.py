"""Matching's HTTP routes: an agency's own roster, and why a team was chosen."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

import json
import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.matching import repository
from services.matching.domain import OFF_ROSTER
from services.matching.handlers import MatchingHandlers, match_view
from shared.auth import Authenticator, Principal
from shared.errors import not_found
from shared.jurisdiction import Shift


class TeamUpdate(BaseModel):
    """What an agency may change about its own team."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["available", "off_shift", "out_of_service"] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    # Capacity 0, or shifts that do not cover now, take the team out of every choice at once
    # (no shifts at all means always on).
    capacity: int | None = Field(default=None, ge=0, le=100)
    shifts: list[Shift] | None = Field(default=None, max_length=50)


def _team(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["current_call"] = str(row["current_call"]) if row["current_call"] else None
    out["shifts"] = json.loads(row["shifts"])
    return out


def router(pool: asyncpg.Pool, auth: Authenticator, handlers: MatchingHandlers) -> APIRouter:
    """The /v1 routes of matching."""
    api = APIRouter(prefix="/v1")
    AgencyOrAdmin = Annotated[Principal, Depends(auth.require("agency", "admin"))]
    Agency = Annotated[Principal, Depends(auth.require("agency"))]
    Oversight = Annotated[Principal, Depends(auth.require("oversight", "admin"))]

    @api.get("/teams", tags=["roster"])
    async def list_teams(who: AgencyOrAdmin) -> list[dict[str, Any]]:
        """An agency's own teams (an admin sees all)."""
        async with pool.acquire() as conn:
            rows = await repository.teams_of(conn, None if who.role == "admin" else who.tenant_id)
        return [_team(r) for r in rows]

    @api.patch("/teams/{team_id}", tags=["roster"])
    async def update_team(team_id: str, body: TeamUpdate, agency: Agency) -> dict[str, Any]:
        """Change an agency's own team's status, position, capacity or shifts (404 for another's team)."""
        async with pool.acquire() as conn, conn.transaction():
            if await repository.agency_of_team(conn, team_id) != agency.tenant_id:
                raise not_found("team")
            # Capacity gone means no offer at all, also the one this team may be holding now.
            takes_away = body.capacity == 0 or body.status in OFF_ROSTER
            held = await handlers.lock_offer_of(conn, team_id) if takes_away else None
            changes = body.model_dump(mode="json", exclude_none=True)
            handlers.roster.touched(team_id)
            if "shifts" in changes:
                handlers.roster.invalidate()
            row = await repository.update_team(conn, team_id, agency.tenant_id, changes)
            if held is not None:
                # The change is in place first, so choosing the next team already sees it.
                await handlers.take_off_roster(conn, team_id, held, body.status or "available")
                row = await repository.update_team(conn, team_id, agency.tenant_id, changes)
        assert row is not None
        return _team(row)

    @api.get("/calls/{call_id}/match", tags=["oversight"])
    async def match(call_id: str, who: Oversight) -> dict[str, Any]:
        """Every decision for this call with its inputs, scores and rules version (oversight, admin)."""
        try:
            uuid.UUID(call_id)
        except ValueError:
            raise not_found("call") from None
        async with pool.acquire() as conn:
            decisions = await repository.decisions_of_call(conn, call_id)
            offers = await repository.assignments_of_call(conn, call_id)
        if not decisions and not offers:
            raise not_found("call")
        return {"call_id": call_id, **match_view(decisions, offers, oversight=who.role != "admin")}

    return api
