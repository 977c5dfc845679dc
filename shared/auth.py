"""Bearer tokens bound to one tenant and role, stored as SHA-256 digests in each service's schema."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared import events, topics
from shared.db import check_identifier
from shared.envelope import Envelope, new_event, utcnow
from shared.errors import ApiError
from shared.outbox import enqueue
from shared.throttle import FailureThrottle, Summary, retry_after

ROLES = ("psap", "agency", "oversight", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant (PSAP, agency, oversight body) and its role."""

    tenant_id: str
    role: str


@dataclass(frozen=True)
class Credential:
    """A token as the jurisdiction file gives it."""

    token: str
    tenant_id: str
    role: str


def token_digest(token: str) -> bytes:
    """The stored form of a token: its SHA-256 digest, so a database dump leaks no credential."""
    return hashlib.sha256(token.encode()).digest()


async def replace_credentials(
    conn: asyncpg.Connection, schema: str, credentials: Iterable[Credential]
) -> None:
    """Make `credentials` the exact set this schema accepts (inside the caller's transaction)."""
    s = check_identifier(schema)
    await conn.execute(f"DELETE FROM {s}.credentials")
    await conn.executemany(
        f"INSERT INTO {s}.credentials (token_sha256, tenant_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (token_sha256) DO UPDATE SET tenant_id = excluded.tenant_id, role = excluded.role",
        [(token_digest(c.token), c.tenant_id, c.role) for c in credentials],
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header, or ApiError 401 saying what is wrong."""
    if not authorization:
        raise ApiError(401, "unauthenticated", "missing Authorization: Bearer token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise ApiError(401, "unauthenticated", "Authorization must be 'Bearer <token>'")
    return token


# Reads by these roles are themselves audit events (who looked at what, and when).
AUDITED_ROLES = ("oversight", "admin")


class Authenticator:
    """Resolves `Authorization: Bearer ...` to a Principal using one schema's credentials.

    Every failed authentication, and every request by an oversight body or admin, is published
    as `access.recorded.v1` through the schema's outbox (the schema is named after its service).
    """

    def __init__(self, pool: asyncpg.Pool, schema: str, throttle: FailureThrottle | None = None) -> None:
        self._pool = pool
        self._schema = check_identifier(schema)
        self._throttle = throttle or FailureThrottle()

    async def record(
        self, request: Request, outcome: str, principal: Principal | None, reason: str | None
    ) -> None:
        """Publish one access event (in its own small transaction).

        A failed authentication (no principal) past the client's burst is not written one by one:
        it answers 429 with Retry-After and is counted into one summary event when its window ends.
        """
        client = request.client.host if request.client else None
        if outcome != "allowed" and principal is None:
            wait = self._throttle.failure(client or "unknown", request.url.path[:500])
            if wait is not None:
                raise ApiError(
                    429,
                    "too_many_failed_attempts",
                    "too many failed authentications from this address; retry later",
                    {"Retry-After": retry_after(wait)},
                )
        await self._write(
            self._access(request.method, request.url.path[:500], outcome, principal, reason, client)
        )

    async def flush(self) -> None:
        """Record the summaries of throttled failures whose window has ended."""
        await self._write()

    def _summary(self, s: Summary) -> Envelope:
        reason = f"throttled: {s.count} more failed authentications within {s.window_s:g} s"
        return self._access("*", s.last_path, "denied", None, reason, s.client, s.count)

    async def _write(self, *access: Envelope) -> None:
        """Write access events, and the summaries of windows that ended meanwhile, in one transaction."""
        batch = [*access, *[self._summary(s) for s in self._throttle.ended()]]
        if not batch:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            for event in batch:
                await enqueue(conn, self._schema, event)

    def _access(
        self,
        method: str,
        path: str,
        outcome: str,
        principal: Principal | None,
        reason: str | None,
        client: str | None,
        count: int | None = None,
    ) -> Envelope:
        payload = events.AccessRecorded(
            service=self._schema,
            outcome="allowed" if outcome == "allowed" else "denied",
            method=method,
            path=path,
            tenant_id=principal.tenant_id if principal else None,
            role=principal.role if principal else None,
            reason=reason,
            client=client,
            at=utcnow(),
            count=count,
        )
        subject = principal.tenant_id if principal else "anonymous"
        return new_event(topics.ACCESS_RECORDED, self._schema, subject, payload)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller's principal, or ApiError 401 for a missing, malformed or unknown token."""
        row = await self._pool.fetchrow(
            f"SELECT tenant_id, role FROM {self._schema}.credentials WHERE token_sha256 = $1",
            token_digest(bearer_token(authorization)),
        )
        if row is None:
            raise ApiError(401, "unauthenticated", "unknown token")
        await self.flush()
        return Principal(tenant_id=row["tenant_id"], role=row["role"])

    async def admit(self, request: Request, roles: tuple[str, ...]) -> Principal:
        """The caller's principal if its role is one of `roles`: 401 without valid credentials, 403
        for another role; each refusal, and each read by an audited role, is recorded."""
        try:
            principal = await self.authenticate(request.headers.get("authorization"))
        except ApiError as exc:
            await self.record(request, "denied", None, str(exc.detail))
            raise
        if principal.role not in roles:
            await self.record(request, "denied", principal, "role not allowed here")
            raise ApiError(403, "forbidden", f"this endpoint is for: {', '.join(roles)}")
        if principal.role in AUDITED_ROLES:
            await self.record(request, "allowed", principal, None)
        return principal

    def require(self, *roles: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
        """A FastAPI dependency admitting only callers with one of `roles` (403 for the others)."""

        async def dependency(request: Request) -> Principal:
            return await self.admit(request, roles)

        return dependency


# The bearer scheme as OpenAPI declares it (the docs' Authorize button, client generators). It never
# refuses a request itself: Authenticator.admit decides, with the project's codes and audit records.
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="A token bound to one tenant and role (psap, agency, oversight, admin)",
    auto_error=False,
)
BearerHeader = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


Admit = Callable[[Request, HTTPAuthorizationCredentials | None], Coroutine[Any, Any, Principal]]


def require(*roles: str) -> Admit:
    """A FastAPI dependency admitting only callers with one of `roles`, by the app's Authenticator
    (`app.state.auth`), declared in OpenAPI as needing the bearer scheme."""

    async def dependency(request: Request, _: BearerHeader) -> Principal:
        authenticator: Authenticator = request.app.state.auth
        return await authenticator.admit(request, roles)

    return dependency
