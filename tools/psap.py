"""A PSAP's CAD as intake sees it: its bearer token, Standard Webhooks signatures, and its requests.

The signatures are written from the Standard Webhooks spec (HMAC-SHA256 over `id.timestamp.body`),
not with the library intake verifies them with, so a test signed here checks intake against the
spec. The simulator, the demo, the fault suite and the tests all send PSAP requests through here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Generator, Mapping
from typing import Any

import httpx

from shared.jurisdiction import Psap

# careroute's EIDO triage extension, as a CAD declares and carries it (intake's documented format).
EIDO_EXTENSION_ID = "urn:careroute:eido:extension:triage:1"
EIDO_EXTENSION_KEY = "careRouteTriage"


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: `whsec_<base64>` as the spec writes it, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:] + "==", validate=False)
        except binascii.Error:
            pass
    return secret.encode()


def _mac(secret: str, msg_id: str, stamp: str, body: bytes) -> str:
    digest = hmac.new(signing_key(secret), f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign(secret: str, body: bytes, msg_id: str | None = None, at: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers a CAD sends with `body` (a fresh id and now by default)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(at if at is not None else int(time.time()))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{_mac(secret, msg_id, stamp, body)}",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """Whether `secret` signed `body` within `tolerance_s` (how a PSAP checks intake's callbacks)."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance_s:
        return False
    expected = _mac(secret, msg_id, stamp, body)
    for part in headers.get("webhook-signature", "").split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(expected, sig):
            return True
    return False


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def signed_headers(psap: Psap, body: bytes, *, secret: str | None = None, **signing: Any) -> dict[str, str]:
    """Bearer token, JSON content type and, when the PSAP signs, a signature over `body`
    (`secret`, `msg_id` and `at` change what it is signed with, as tests of refusals need)."""
    headers = {**bearer(psap.token), "content-type": "application/json"}
    if psap.signing_secret:
        headers |= sign(secret or psap.signing_secret, body, **signing)
    return headers


class PsapAuth(httpx.Auth):
    """httpx auth of a PSAP: its bearer token and, when it has a signing secret, a fresh signature
    over every request that has a body."""

    def __init__(self, token: str, secret: str | None) -> None:
        self._token = token
        self._secret = secret

    @classmethod
    def of(cls, psap: Psap) -> PsapAuth:
        """The auth of a PSAP of a jurisdiction."""
        return cls(psap.token, psap.signing_secret)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the headers and send."""
        request.headers.update(bearer(self._token))
        if self._secret and request.method not in ("GET", "HEAD"):
            request.headers.update(sign(self._secret, request.read()))
        yield request


class PsapClient:
    """One PSAP's requests to intake over a caller's httpx.AsyncClient: calls, updates, cancels, status."""

    def __init__(self, http: httpx.AsyncClient, intake_url: str, psap: Psap) -> None:
        self.http = http
        self.url = intake_url.rstrip("/")
        self.psap = psap
        self.auth = PsapAuth.of(psap)

    async def post(self, path: str, document: Any, **signing: Any) -> httpx.Response:
        """POST `document` (JSON, or bytes as they are) to intake's `path`, signed as the PSAP signs
        (`signing` as for `signed_headers`)."""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        headers = signed_headers(self.psap, body, **signing)
        return await self.http.post(f"{self.url}{path}", content=body, headers=headers)

    async def call(self, body: Any) -> httpx.Response:
        """POST /v1/calls: a call in careroute's native form."""
        return await self.http.post(f"{self.url}/v1/calls", json=body, auth=self.auth)

    async def incident(self, eido: Any) -> httpx.Response:
        """POST /v1/incidents: a call, or a newer version of one, as an EIDO document."""
        return await self.http.post(f"{self.url}/v1/incidents", json=eido, auth=self.auth)

    async def cancel(self, call_id: str, reason: str | None = None) -> httpx.Response:
        """POST /v1/calls/{id}/cancel."""
        body = None if reason is None else {"reason": reason}
        return await self.http.post(f"{self.url}/v1/calls/{call_id}/cancel", json=body, auth=self.auth)

    async def override(self, call_id: str, route: str, reason_code: str) -> httpx.Response:
        """POST /v1/calls/{id}/override: the call-taker routes the call and says why."""
        body = {"route": route, "reason_code": reason_code}
        return await self.http.post(f"{self.url}/v1/calls/{call_id}/override", json=body, auth=self.auth)

    async def status(self, call_id: str) -> httpx.Response:
        """GET /v1/calls/{id}: the call's status and timeline as its PSAP sees them."""
        return await self.http.get(f"{self.url}/v1/calls/{call_id}", auth=self.auth)


def pidf_point(lat: float, lon: float) -> str:
    """A minimal PIDF-LO document locating a caller at one WGS84 point (what a CAD would send)."""
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml">'
        "<tuple id='t'><status><gp:geopriv><gp:location-info><gml:Point>"
        f"<gml:pos>{lat} {lon}</gml:pos></gml:Point></gp:location-info>"
        "</gp:geopriv></status></tuple></presence>"
    )
