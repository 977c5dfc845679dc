"""Schemathesis hooks of the contract test: each request carries the right role's token, and a
PSAP's POST is signed over the exact bytes sent (set by tests/integration/test_openapi_contract.py)."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

from tools.psap import sign


def _bytes(body: Any) -> bytes:
    """The bytes a generated body goes as: none, raw bytes of a negative case, or JSON."""
    if type(body).__name__ == "NotSet":
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Add the operation's token and, for a signing PSAP's POST, the Standard Webhooks headers."""
    tokens: dict[str, str] = json.loads(os.environ["CONTRACT_TOKENS"])
    token = next((t for part, t in tokens.items() if part and part in case.operation.path), tokens[""])
    headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    secret = os.environ.get("CONTRACT_SIGNING_SECRET")
    if secret and case.method.upper() == "POST":
        body = _bytes(case.body)
        # The body goes as these bytes, so the signature is over what intake receives.
        kwargs["data"] = body
        headers |= sign(secret, body)
    case.headers = headers
