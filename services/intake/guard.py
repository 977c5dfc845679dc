"""What every PSAP request passes before a route sees it: token, rate, signature, replay, JSON shape."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from fastapi import Request, Response
from limits import RateLimitItem, parse

from services.intake import bodyshape, repository, signatures
from services.intake.remembered import Remembered
from services.intake.settings import IntakeSettings
from shared.auth import Authenticator, Principal, bearer_token, token_digest
from shared.errors import ApiError
from shared.throttle import MovingWindow, retry_after

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def _unauthenticated() -> ApiError:
    # One answer for every authentication failure: which part failed goes to the audit trail only.
    return ApiError(401, "unauthenticated", "authentication failed")


@functools.lru_cache(maxsize=256)
def _rate(limit: str) -> RateLimitItem:
    """A rate in the `limits` package's notation ("600/minute"), parsed once."""
    return parse(limit)


class PsapGuard:
    """Admits a PSAP's request: a known token, within its rate, signed when the PSAP has a secret."""

    def __init__(
        self, pool: asyncpg.Pool, auth: Authenticator, settings: IntakeSettings, remembered: Remembered
    ) -> None:
        self._pool = pool
        self._remembered = remembered
        self._auth = auth
        self._settings = settings
        self._default_rate = _rate(settings.rate_limit)
        # Not the `limits` package's storage: it starts a thread for every request it counts.
        self._window = MovingWindow()

    async def _principal(self, request: Request) -> tuple[Principal, repository.CredentialRow]:
        """The PSAP and its row (signing secrets, rate), from its token: one query, or what intake kept."""
        try:
            token = bearer_token(request.headers.get("authorization"))
        except ApiError as exc:
            await self._auth.record(request, "denied", None, str(exc.detail))
            raise _unauthenticated() from None
        row = await self._remembered.credential(token_digest(token))
        if row is None:
            await self._auth.record(request, "denied", None, "unknown token")
            raise _unauthenticated()
        principal = Principal(tenant_id=row.tenant_id, role=row.role)
        if principal.role != "psap":
            await self._auth.record(request, "denied", principal, "not a PSAP credential")
            raise _unauthenticated()
        if row.psap_id is None:
            raise _unauthenticated()  # a credential without its PSAP: the jurisdiction is being reloaded
        return principal, row

    def _within_rate(self, psap: Principal, limit: str | None) -> None:
        rate = _rate(limit) if limit else self._default_rate
        wait_s = self._window.hit(psap.tenant_id, rate.amount, rate.get_expiry())
        if wait_s is None:
            return
        after = retry_after(wait_s)
        raise ApiError(
            429,
            "rate_limited",
            f"more than {rate} requests from this PSAP; retry after {after} s",
            headers={"Retry-After": after},
        )

    async def _signature(
        self, request: Request, psap: Principal, row: repository.CredentialRow, body: bytes
    ) -> str | None:
        """The verified webhook-id, or None when this PSAP does not sign (it has no secret)."""
        if not row.signing_secret:
            return None
        secrets = [row.signing_secret, *(row.previous_signing_secrets or [])]
        try:
            return signatures.verify(body, request.headers, secrets)
        except signatures.BadSignature as exc:
            await self._auth.record(request, "denied", psap, f"signature: {exc}")
            raise _unauthenticated() from None

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        """Run `endpoint` for an admitted PSAP; a replayed signed request gets its first answer."""
        psap, row = await self._principal(request)
        self._within_rate(psap, row.rate_limit)
        request.state.psap = psap
        if request.method in ("GET", "HEAD"):
            return await endpoint(request)
        body = await request.body()
        webhook_id = await self._signature(request, psap, row, body)
        if webhook_id is not None:
            seen = await repository.signed_response(self._pool, psap.tenant_id, webhook_id)
            if seen is not None:
                return Response(
                    bytes(seen.body),
                    status_code=seen.status,
                    media_type="application/json",
                    headers={"webhook-replayed": "true"},
                )
        try:
            bodyshape.check(
                body, max_depth=self._settings.max_json_depth, max_items=self._settings.max_json_items
            )
        except bodyshape.TooComplex as exc:
            raise ApiError(422, "too_complex", str(exc)) from None
        response = await endpoint(request)
        if webhook_id is not None and 200 <= response.status_code < 300:
            await repository.remember_response(
                self._pool, psap.tenant_id, webhook_id, response.status_code, bytes(response.body)
            )
        return response


async def forget_old_requests(pool: asyncpg.Pool, stop: asyncio.Event, keep_s: int = 3600) -> None:
    """Delete remembered signed requests far older than the 300 s tolerance: a replay of one of
    them fails on its timestamp before its id is looked up."""
    while not stop.is_set():
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await repository.forget_signed_requests(pool, keep_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=300)


async def current_psap(request: Request) -> Principal:
    """The PSAP the guard admitted (a FastAPI dependency; async, so no worker thread per request)."""
    psap: Principal = request.state.psap
    return psap
