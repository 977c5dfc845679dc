"""Intake's HTTP routes: thin: parse, authorise, call a handler, shape the answer."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.routing import APIRoute

from services.intake import eido, handlers
from services.intake.geocode import Geocoder
from services.intake.guard import Endpoint, PsapGuard, current_psap
from services.intake.remembered import Remembered
from services.intake.schemas import (
    CallAccepted,
    CallCancelled,
    CallView,
    CancelRequest,
    NativeCall,
    OverrideAccepted,
    OverrideRequest,
)
from services.intake.settings import IntakeSettings
from services.intake.signatures import SIGNATURE_HEADERS
from shared.auth import BEARER, Principal
from shared.errors import error_responses
from shared.http import Pool

_SIGNED = (
    "Requires `Authorization: Bearer <token>`; a PSAP with a signing secret also signs each POST with"
    " Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over"
    " `id.timestamp.body`, 300 s tolerance). A replayed `webhook-id` gets the first answer again."
)

# The Standard Webhooks headers as OpenAPI security schemes: a signed POST carries all three
# together with the bearer token (a PSAP without a signing secret sends the token alone).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    name: {"type": "apiKey", "in": "header", "name": name, "description": f"Standard Webhooks `{name}`"}
    for name in SIGNATURE_HEADERS
}
_SIGNED_SECURITY: dict[str, Any] = {"security": [{"bearer": [], **{name: [] for name in SIGNATURE_HEADERS}}]}
# The two ways a call comes in (native, EIDO) answer alike.
_RECEIVE: dict[str, Any] = {
    "status_code": 202,
    "description": _SIGNED,
    "openapi_extra": _SIGNED_SECURITY,
    "responses": error_responses(409),
}


class PsapRoute(APIRoute):
    """A route whose requests pass the app's PsapGuard (`app.state.guard`) before FastAPI parses them."""

    def get_route_handler(self) -> Endpoint:
        """The route's handler, behind the guard."""
        endpoint = super().get_route_handler()

        async def handler(request: Request) -> Response:
            guard: PsapGuard = request.app.state.guard
            return await guard.handle(request, endpoint)

        return handler


async def _settings(request: Request) -> IntakeSettings:
    settings: IntakeSettings = request.app.state.settings
    return settings


async def _geocoder(request: Request) -> Geocoder:
    geocoder: Geocoder = request.app.state.geocoder
    return geocoder


async def _remembered(request: Request) -> Remembered:
    remembered: Remembered = request.app.state.remembered
    return remembered


Psap = Annotated[Principal, Depends(current_psap)]
Settings = Annotated[IntakeSettings, Depends(_settings)]
Geocoding = Annotated[Geocoder, Depends(_geocoder)]
Kept = Annotated[Remembered, Depends(_remembered)]

# The guard answers 401 for any credential that is not a PSAP's; only an EIDO naming another sender
# answers 403 (sender_mismatch).
router = APIRouter(
    prefix="/v1",
    tags=["calls"],
    route_class=PsapRoute,
    dependencies=[Depends(BEARER)],
    responses=error_responses(401, 429, 503),
)


@router.post("/calls", **_RECEIVE)
async def post_call(
    call: NativeCall, psap: Psap, pool: Pool, settings: Settings, geocoder: Geocoding, remembered: Kept
) -> CallAccepted:
    """Forward a call; the answer carries the routing recommendation. A location given as an
    address alone is geocoded against the jurisdiction's address points."""
    return await handlers.receive_call(
        pool, psap, call.to_call(), settings.clock_tolerance_s, geocoder, remembered
    )


@router.post("/incidents", **{**_RECEIVE, "responses": error_responses(403, 409)})
async def post_incident(
    document: Annotated[eido.EidoDocument, Body(openapi_examples={"mntl": {"value": eido.example()}})],
    psap: Psap,
    pool: Pool,
    settings: Settings,
    geocoder: Geocoding,
    remembered: Kept,
) -> CallAccepted:
    """Forward a NENA EIDO; its `$id` and `lastUpdateTimeStamp` are the version of the call (a
    timestamp more than INTAKE_CLOCK_TOLERANCE_S ahead of intake's clock: 422 timestamp_in_future).
    A document whose sender (updatedByAgencyReference, the PSAP in agencyComponent) is not this
    PSAP (its id or `eido_agencies`) answers 403 sender_mismatch and is recorded."""
    return await handlers.receive_incident(
        pool, psap, document, settings.clock_tolerance_s, geocoder, remembered
    )


@router.get("/calls/{call_id}", responses=error_responses(404))
async def get_call(call_id: str, psap: Psap, pool: Pool) -> CallView:
    """A call's status and timeline (404 unless this PSAP owns it)."""
    return CallView.model_validate(await handlers.call_view(pool, psap, call_id))


@router.post(
    "/calls/{call_id}/cancel",
    status_code=202,
    description=_SIGNED,
    openapi_extra=_SIGNED_SECURITY,
    responses=error_responses(404, 409),
)
async def cancel(call_id: str, psap: Psap, pool: Pool, body: CancelRequest | None = None) -> CallCancelled:
    """Cancel a call; any community assignment is withdrawn."""
    status = await handlers.cancel_call(pool, psap, call_id, body.reason if body else None)
    return CallCancelled(call_id=call_id, status=status)


@router.post(
    "/calls/{call_id}/override",
    description=_SIGNED,
    openapi_extra=_SIGNED_SECURITY,
    responses=error_responses(404, 409),
)
async def override(call_id: str, body: OverrideRequest, psap: Psap, pool: Pool) -> OverrideAccepted:
    """Route the call differently from the recommendation; a reason code is required."""
    return await handlers.override_call(pool, psap, call_id, body)
