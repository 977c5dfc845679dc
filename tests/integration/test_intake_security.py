"""PSAP request security and limits: signatures, replays, rotation, body size, JSON shape, rate limits."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake.settings import IntakeSettings
from shared import topics
from tests.integration.intake_harness import OLD_VALLEY_SECRET, Intake, native_call, running_intake
from tools.psap import bearer, sign

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


def call(external_id: str | None = None) -> bytes:
    """A valid native call body."""
    return json.dumps(native_call(external_id or f"SEC-{uuid.uuid4().hex[:8]}")).encode()


async def counts(intake: Intake) -> tuple[int, int]:
    """Calls stored, and access.recorded.v1 events written to the outbox."""
    conn = await intake.db()
    try:
        calls = await conn.fetchval("SELECT count(*) FROM intake.calls")
        denied = await conn.fetchval(
            "SELECT count(*) FROM intake.outbox WHERE topic = $1", topics.ACCESS_RECORDED
        )
    finally:
        await conn.close()
    return int(calls), int(denied)


def unsigned(intake: Intake, psap_id: str) -> dict[str, str]:
    """A PSAP's bearer token on a JSON body, with no signature."""
    return bearer(intake.psap(psap_id).token) | {"content-type": "application/json"}


BAD_AUTH: dict[str, Any] = {
    "tampered body": lambda i, b: (sign(i.psap("valley-ecc").signing_secret, b), b.replace(b"MNTL", b"EDP!")),
    "wrong secret": lambda i, b: (sign("not-the-valley-secret-000", b), b),
    "stale timestamp": lambda i, b: (
        sign(i.psap("valley-ecc").signing_secret, b, at=int(time.time()) - 301),
        b,
    ),
    "missing webhook-signature": lambda i, b: (
        {k: v for k, v in sign(i.psap("valley-ecc").signing_secret, b).items() if k != "webhook-signature"},
        b,
    ),
    "no signature at all": lambda i, b: ({}, b),
    "signature from another PSAP's secret": lambda i, b: (
        sign(i.psap("springfield-pd-psap").signing_secret, b),
        b,
    ),
}


@pytest.mark.parametrize("tried", list(BAD_AUTH))
async def test_bad_signatures_answer_401_without_saying_why_and_are_audited(intake: Intake, tried: str):
    before = await counts(intake)
    signature, body = BAD_AUTH[tried](intake, call())
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{intake.url}/v1/calls", content=body, headers=unsigned(intake, "valley-ecc") | signature
        )
    assert r.status_code == 401, f"{tried}: {r.status_code} {r.text[:200]}"
    assert r.json() == {"detail": "authentication failed", "code": "unauthenticated"}, tried
    calls, denied = await counts(intake)
    assert calls == before[0], f"{tried} stored a call"
    assert denied == before[1] + 1, f"{tried} was not recorded as an access event"


@pytest.mark.parametrize(
    ("tried", "headers"),
    [
        ("no token", {}),
        ("unknown token", {"Authorization": "Bearer not-a-real-token-000000"}),
        ("an agency's token", {"Authorization": "Bearer demo-agency-riverbend-8d2f4a61"}),
    ],
)
async def test_bad_tokens_answer_the_same_401(intake: Intake, tried: str, headers: dict[str, str]):
    body = call()
    async with httpx.AsyncClient(timeout=15) as http:
        signature = sign(intake.psap("valley-ecc").signing_secret, body)
        r = await http.post(f"{intake.url}/v1/calls", content=body, headers=headers | signature)
    assert r.status_code == 401 and r.json()["detail"] == "authentication failed", tried


async def test_the_audit_event_says_which_part_failed(intake: Intake):
    body = call()
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{intake.url}/v1/calls",
            content=body,
            headers=unsigned(intake, "valley-ecc") | sign("wrong-0123456789ab", body),
        )
    assert r.status_code == 401
    conn = await intake.db()
    try:
        raw = await conn.fetchval(
            "SELECT value FROM intake.outbox WHERE topic = $1 ORDER BY id DESC LIMIT 1",
            topics.ACCESS_RECORDED,
        )
    finally:
        await conn.close()
    data = json.loads(raw)["data"]
    assert data["outcome"] == "denied" and data["tenant_id"] == "valley-ecc"
    assert data["reason"].startswith("signature:") and data["path"] == "/v1/calls"


async def test_a_replayed_webhook_id_answers_the_original_response_and_creates_nothing(intake: Intake):
    secret = intake.psap("valley-ecc").signing_secret
    body = call("REPLAY-1")
    headers = unsigned(intake, "valley-ecc") | sign(secret, body, msg_id="msg_replay_1")
    async with httpx.AsyncClient(timeout=15) as http:
        first = await http.post(f"{intake.url}/v1/calls", content=body, headers=headers)
        assert first.status_code == 202 and first.json()["outcome"] == "created"
        before = await counts(intake)
        replay = await http.post(f"{intake.url}/v1/calls", content=body, headers=headers)
        # The same id, freshly signed over another call: still a replay of the first request.
        other = call("REPLAY-2")
        again = await http.post(
            f"{intake.url}/v1/calls",
            content=other,
            headers=unsigned(intake, "valley-ecc") | sign(secret, other, msg_id="msg_replay_1"),
        )
    for r in (replay, again):
        assert r.status_code == 202 and r.json() == first.json()
        assert r.headers["webhook-replayed"] == "true"
    assert (await counts(intake))[0] == before[0]


async def test_a_previous_secret_is_accepted_during_rotation(intake: Intake):
    body = call()
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{intake.url}/v1/calls",
            content=body,
            headers=unsigned(intake, "valley-ecc") | sign(OLD_VALLEY_SECRET, body),
        )
    assert r.status_code == 202, r.text


async def test_a_psap_without_a_signing_secret_needs_only_its_token(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{intake.url}/v1/calls", content=call(), headers=unsigned(intake, "university-psap")
        )
    assert r.status_code == 202, r.text


async def test_oversized_bodies_answer_413_with_or_without_content_length(intake: Intake):
    big = b'{"narrative": "' + b"x" * (256 * 1024) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 16 * 1024):
            yield big[start : start + 16 * 1024]

    async with httpx.AsyncClient(timeout=30) as http:
        sized = await http.post(
            f"{intake.url}/v1/incidents", content=big, headers=unsigned(intake, "university-psap")
        )
        chunked = await http.post(
            f"{intake.url}/v1/incidents", content=chunks(), headers=unsigned(intake, "university-psap")
        )
    assert sized.status_code == 413 and sized.json()["code"] == "body_too_large"
    assert chunked.status_code == 413 and chunked.json()["code"] == "body_too_large"
    assert "content-length" not in chunked.request.headers


@pytest.mark.parametrize(
    ("tried", "body"),
    [
        ("nested 40 deep", b'{"$id": "x", "vendor": ' + b"[" * 40 + b"]" * 40 + b"}"),
        ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("an array of 5000 items", b'{"$id": "x", "agencyComponent": [' + b",".join([b"{}"] * 5000) + b"]}"),
    ],
)
async def test_deep_or_wide_json_answers_422(intake: Intake, tried: str, body: bytes):
    async with httpx.AsyncClient(timeout=30) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", body)
    assert r.status_code == 422 and r.json()["code"] == "too_complex", (
        f"{tried}: {r.status_code} {r.text[:200]}"
    )


async def test_the_rate_limit_answers_429_with_retry_after(intake: Intake):
    # The test PSAP may send 3 requests a minute; the fourth is refused, never silently dropped.
    answers = []
    async with httpx.AsyncClient(timeout=15) as http:
        for n in range(4):
            answers.append(
                await http.post(
                    f"{intake.url}/v1/calls",
                    content=call(f"RATE-{n}"),
                    headers=unsigned(intake, "rate-test-psap"),
                )
            )
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited" and 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_without_triage_rules_a_call_answers_503_not_configured_and_stores_nothing(intake: Intake):
    """Until `careroute load` puts triage rules in force there is nothing to triage with: the
    operator's to fix, not the PSAP's, and no call is stored."""
    conn = await intake.db()
    try:
        version = await conn.fetchval(
            "UPDATE intake.triage_rules SET active = false WHERE active RETURNING version"
        )
        assert version is not None
        try:
            stored_before, _ = await counts(intake)
            async with httpx.AsyncClient(timeout=15) as http:
                r = await intake.post(http, "/v1/calls", "valley-ecc", call())
            assert r.status_code == 503
            assert r.json() == {
                "detail": "no triage rules loaded: run `careroute load`",
                "code": "not_configured",
            }
            assert (await counts(intake))[0] == stored_before
        finally:
            await conn.execute("UPDATE intake.triage_rules SET active = true WHERE version = $1", version)
    finally:
        await conn.close()
