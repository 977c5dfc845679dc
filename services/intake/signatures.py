"""Standard Webhooks signatures (HMAC-SHA256 over `id.timestamp.body`): PSAP requests in, callbacks out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class BadSignature(ValueError):
    """The request's signature is missing, stale, malformed or made with no secret we hold."""


def key(secret: str) -> bytes:
    """The HMAC key of a secret: `whsec_<base64>` as the spec writes it, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:] + "==", validate=False)
        except binascii.Error:
            pass
    return secret.encode()


def verify(body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> str:
    """Return the webhook-id when one of `secrets` signed `body` within 300 s; BadSignature otherwise.

    Several secrets are accepted so a PSAP can rotate; the library compares in constant time and
    enforces the 300 s tolerance both ways.
    """
    wanted = {h: headers.get(h, "") for h in SIGNATURE_HEADERS}
    if not all(wanted.values()):
        raise BadSignature("missing signature headers")
    if len(wanted["webhook-id"]) > 256 or len(wanted["webhook-signature"]) > 4096:
        raise BadSignature("signature headers too long")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadSignature("body is not UTF-8") from None
    for secret in secrets:
        try:
            Webhook(key(secret)).verify(text, wanted, json_parse=False)
            return wanted["webhook-id"]
        except (WebhookVerificationError, ValueError):
            # ValueError covers a malformed `v1,<base64>` pair: as bad as a wrong signature.
            continue
    raise BadSignature("no valid signature")


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`."""
    signature = Webhook(key(secret)).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
