"""Matching's HTTP routes: an agency's own roster, and why a team was chosen."""

import dataclasses
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from services.matching import handlers, repository
from services.matching.handlers import match_view
from services.matching.matcher import Matcher
from services.matching.schemas import AgencyPause, AgencyView, MatchView, TeamUpdate, TeamView
from shared.auth import Principal, require
from shared.errors import error_responses, not_found
from shared.http import Pool

AgencyOrAdmin = Annotated[Principal, Depends(require("agency", "admin"))]
Agency = Annotated[Principal, Depends(require("agency"))]
Oversight = Annotated[Principal, Depends(require("oversight", "admin"))]


async def _matcher(request: Request) -> Matcher:
    matcher: Matcher = request.app.state.matcher
    return matcher


MatcherDep = Annotated[Matcher, Depends(_matcher)]


def _team(row: repository.TeamRow) -> TeamView:
    out = dataclasses.asdict(row)
    out["current_call"] = str(row.current_call) if row.current_call else None
    return TeamView.model_validate(out)


router = APIRouter(prefix="/v1", responses=error_responses(401, 403, 429, 503))


@router.get("/teams", tags=["roster"])
async def list_teams(who: AgencyOrAdmin, pool: Pool) -> list[TeamView]:
    """An agency's own teams (an admin sees all)."""
    async with pool.acquire() as conn:
        rows = await repository.teams_of(conn, None if who.role == "admin" else who.tenant_id)
    return [_team(r) for r in rows]


@router.patch("/teams/{team_id}", tags=["roster"], responses=error_responses(404))
async def update_team(
    team_id: str, body: TeamUpdate, agency: Agency, pool: Pool, matcher: MatcherDep
) -> TeamView:
    """Change an agency's own team's status, position, capacity or shifts (404 for another's team)."""
    return _team(await handlers.update_team(matcher, pool, agency, team_id, body))


def _agency(row: repository.AgencyRow) -> AgencyView:
    return AgencyView(paused=row.paused_at is not None, **dataclasses.asdict(row))


@router.get("/agency", tags=["roster"], responses=error_responses(404))
async def own_agency(agency: Agency, pool: Pool) -> AgencyView:
    """The agency's own state: paused or taking calls."""
    async with pool.acquire() as conn:
        row = await repository.get_agency(conn, agency.tenant_id)
    if row is None:
        raise not_found("agency")
    return _agency(row)


@router.post("/agency/pause", tags=["roster"], responses=error_responses(404, 422))
async def pause(
    agency: Agency, pool: Pool, matcher: MatcherDep, body: Annotated[AgencyPause | None, Body()] = None
) -> AgencyView:
    """Pause the agency (say, no staff tonight): none of its teams is offered a call until it resumes,
    and the offers its teams hold go to the next team; accepted calls stay with their teams."""
    reason = (body or AgencyPause()).reason
    return _agency(await handlers.pause_agency(matcher, pool, agency, reason))


@router.post("/agency/resume", tags=["roster"], responses=error_responses(404))
async def resume(agency: Agency, pool: Pool, matcher: MatcherDep) -> AgencyView:
    """Take calls again: the agency's teams are chosen from the next decision on."""
    return _agency(await handlers.pause_agency(matcher, pool, agency, None))


@router.get("/calls/{call_id}/match", tags=["oversight"], responses=error_responses(404))
async def match(call_id: str, who: Oversight, pool: Pool) -> MatchView:
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
    return MatchView.model_validate(
        {"call_id": call_id, **match_view(decisions, offers, oversight=who.role != "admin")}
    )
