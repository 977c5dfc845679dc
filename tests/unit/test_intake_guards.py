"""JSON shape limits and Standard Webhooks signatures, as intake checks them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from services.intake import bodyshape, signatures
from tools.psap import sign, verify


def test_nesting_and_array_limits():
    bodyshape.check(b'{"a": [1, 2, 3], "b": {"c": "[[[[[[[[["}}', max_depth=3, max_items=3)
    with pytest.raises(bodyshape.TooComplex, match="deeper"):
        bodyshape.check(b"[" * 33 + b"]" * 33, max_depth=32, max_items=10)
    with pytest.raises(bodyshape.TooComplex, match="more than 3"):
        bodyshape.check(b"[1,2,3,4]", max_depth=5, max_items=3)
    # Escaped quotes do not end a string early.
    bodyshape.check(b'{"a": "x\\"[[[["}', max_depth=1, max_items=1)


def test_a_signature_from_the_spec_verifies_and_rotation_accepts_an_old_secret():
    body = b'{"hello": "world"}'
    headers = sign("old-secret-0123456789", body)
    assert signatures.verify(body, headers, ["new-secret-0123456789", "old-secret-0123456789"])
    with pytest.raises(signatures.BadSignature):
        signatures.verify(body, headers, ["new-secret-0123456789"])


@pytest.mark.parametrize(
    ("tried", "mutate"),
    [
        ("tampered body", lambda h, b: (h, b + b" ")),
        ("stale timestamp", lambda h, b: (sign("s" * 20, b, at=int(time.time()) - 301), b)),
        ("future timestamp", lambda h, b: (sign("s" * 20, b, at=int(time.time()) + 301), b)),
        ("missing header", lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b)),
        ("garbage signature", lambda h, b: (h | {"webhook-signature": "v1,@@@ v2 ,,"}, b)),
        ("body not UTF-8", lambda h, b: (sign("s" * 20, b"\xff"), b"\xff")),
    ],
)
def test_bad_signatures_are_refused(tried, mutate):
    body = b"{}"
    headers, body = mutate(sign("s" * 20, body), body)
    with pytest.raises(signatures.BadSignature):
        signatures.verify(body, headers, ["s" * 20])


def test_our_callback_signatures_verify_with_an_independent_implementation():
    body = b'{"unitStatus": "EnRoute"}'
    headers = signatures.sign("psap-secret-0123456789", "cb_1", datetime.now(UTC), body)
    assert verify("psap-secret-0123456789", headers, body)
    assert not verify("another-secret-0123456", headers, body)
