"""Intake's HTTP routes: thin: parse, authorise, call a handler, shape the answer."""

# No `from __future__ import annotations` here: FastAPI must see the dependency aliases defined
# inside router(), which string annotations would hide.

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from services.intake import eido, handlers
from services.intake.guard import PsapGuard, current_psap
from services.intake.schemas import (
    CallAccepted,
    CallView,
    CancelRequest,
    NativeCall,
    OverrideAccepted,
    OverrideRequest,
)
from services.intake.settings import IntakeSettings
from shared.auth import Principal
from shared.errors import ApiError

_SIGNED = (
    "Requires `Authorization: Bearer <token>`; a PSAP with a signing secret also signs each POST with"
    " Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over"
    " `id.timestamp.body`, 300 s tolerance). A replayed `webhook-id` gets the first answer again."
)


def router(pool: asyncpg.Pool, guard: PsapGuard, settings: IntakeSettings) -> APIRouter:
    """The /v1 routes of intake."""
    api = APIRouter(prefix="/v1", tags=["calls"], route_class=guard.route_class())
    Psap = Annotated[Principal, Depends(current_psap)]
    tolerance = settings.clock_tolerance_s

    @api.post("/calls", status_code=202, response_model=CallAccepted, description=_SIGNED)
    async def post_call(call: NativeCall, psap: Psap) -> JSONResponse:
        """Forward a call; the answer carries the routing recommendation."""
        accepted = await handlers.receive_call(pool, psap, call.to_call(), tolerance)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    @api.post("/incidents", status_code=202, response_model=CallAccepted, description=_SIGNED)
    async def post_incident(
        document: Annotated[eido.EidoDocument, Body(openapi_examples={"mntl": {"value": eido.example()}})],
        psap: Psap,
    ) -> JSONResponse:
        """Forward a NENA EIDO; its `$id` and `lastUpdateTimeStamp` are the version of the call (a
        timestamp more than INTAKE_CLOCK_TOLERANCE_S ahead of intake's clock: 422 timestamp_in_future)."""
        try:
            call = eido.normalise(document)
        except eido.EidoError as exc:
            raise ApiError(422, exc.code, str(exc)) from None
        accepted = await handlers.receive_call(pool, psap, call, tolerance)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    @api.get("/calls/{call_id}", response_model=CallView)
    async def get_call(call_id: str, psap: Psap) -> dict[str, Any]:
        """A call's status and timeline (404 unless this PSAP owns it)."""
        return await handlers.call_view(pool, psap, call_id)

    @api.post("/calls/{call_id}/cancel", status_code=202, description=_SIGNED)
    async def cancel(call_id: str, psap: Psap, body: CancelRequest | None = None) -> JSONResponse:
        """Cancel a call; any community assignment is withdrawn."""
        status = await handlers.cancel_call(pool, psap, call_id, body.reason if body else None)
        return JSONResponse({"call_id": call_id, "status": status}, status_code=202)

    @api.post("/calls/{call_id}/override", response_model=OverrideAccepted, description=_SIGNED)
    async def override(call_id: str, body: OverrideRequest, psap: Psap) -> JSONResponse:
        """Route the call differently from the recommendation; a reason code is required."""
        accepted = await handlers.override_call(pool, psap, call_id, body)
        return JSONResponse(accepted.model_dump(mode="json"))

    return api
