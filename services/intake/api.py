"""Intake's HTTP routes: thin: parse, authorise, call a handler, shape the answer."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from services.intake import handlers
from services.intake.schemas import CallAccepted, CallView, CancelRequest, NativeCall
from shared.auth import Authenticator, Principal


def router(pool: asyncpg.Pool, auth: Authenticator) -> APIRouter:
    """The /v1 routes of intake."""
    api = APIRouter(prefix="/v1", tags=["calls"])
    Psap = Annotated[Principal, Depends(auth.require("psap"))]

    @api.post("/calls", status_code=202, response_model=CallAccepted)
    async def post_call(call: NativeCall, psap: Psap) -> JSONResponse:
        """Forward a call; the answer carries the routing recommendation."""
        accepted = await handlers.receive_call(pool, psap, call)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    @api.get("/calls/{call_id}", response_model=CallView)
    async def get_call(call_id: str, psap: Psap) -> dict[str, Any]:
        """A call's status and timeline (404 unless this PSAP owns it)."""
        return await handlers.call_view(pool, psap, call_id)

    @api.post("/calls/{call_id}/cancel", status_code=202)
    async def cancel(call_id: str, psap: Psap, body: CancelRequest | None = None) -> dict[str, str]:
        """Cancel a call; any community assignment is withdrawn."""
        status = await handlers.cancel_call(pool, psap, call_id, body.reason if body else None)
        return {"call_id": call_id, "status": status}

    return api
