"""Which webhook URLs notify may call, and the signature headers it sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from services.notify.webhooks import AddressRefused, check_url, signed_headers


def resolver(addresses: list[str]):
    async def resolve(host: str, port: int) -> list[str]:
        return addresses

    return resolve


async def test_a_public_endpoint_is_allowed_and_pinned_to_the_address_that_was_checked():
    target = await check_url("https://hooks.example.org/careroute?a=1", False, resolver(["93.184.216.34"]))
    assert target.url == "https://93.184.216.34:443/careroute?a=1"
    assert (target.host, target.sni_hostname) == ("hooks.example.org", "hooks.example.org")
    v6 = await check_url("http://hooks.example.org:8080/x", False, resolver(["2606:2800:220:1::1"]))
    assert (v6.url, v6.host, v6.sni_hostname) == (
        "http://[2606:2800:220:1::1]:8080/x",
        "hooks.example.org:8080",
        None,
    )


@pytest.mark.parametrize(
    ("url", "addresses", "allow"),
    [
        ("http://intranet.example/hook", ["10.0.0.7"], False),
        ("http://metadata.example/hook", ["169.254.169.254"], False),
        ("http://mixed.example/hook", ["93.184.216.34", "127.0.0.1"], False),
        ("ftp://files.example/hook", ["93.184.216.34"], True),
        ("file:///etc/passwd", [], True),
        ("http://nothing.example/hook", [], True),
        ("http:///no-host", ["93.184.216.34"], True),
    ],
)
async def test_private_addresses_and_other_schemes_are_refused(url, addresses, allow):
    with pytest.raises(AddressRefused):
        await check_url(url, allow, resolver(addresses))


async def test_a_private_address_is_allowed_when_the_jurisdiction_says_so():
    await check_url("http://127.0.0.1:9000/hook", True, resolver(["127.0.0.1"]))


def test_the_signature_follows_the_standard_webhooks_scheme():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"a": 1}'
    headers = signed_headers(secret, "msg_1", body, datetime.now(UTC))
    Webhook(secret).verify(body, headers)  # the reference library accepts it
    digest = hmac.new(b"k" * 32, f"msg_1.{headers['webhook-timestamp']}.".encode() + body, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest.digest()).decode()
