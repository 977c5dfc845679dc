"""Each service against its own OpenAPI: a bounded schemathesis run finds no server error, no
undocumented status and no answer that breaks its schema."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.intake.service import build as build_intake
from services.intake.settings import IntakeSettings
from shared.runtime import Infra, ServiceParts
from tools.system import System

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _intake(infra: Infra) -> ServiceParts:
    # Generated requests come fast: above the PSAP's rate they would all meet the (documented) 429.
    return build_intake(infra, IntakeSettings(rate_limit="100000/minute"))


@pytest.fixture(scope="module")
async def system(stack) -> AsyncIterator[System]:
    async with System.start(stack, prefix="contract", builders={"intake": _intake}) as running:
        yield running


async def _schemathesis(
    system: System,
    service: str,
    tokens: dict[str, str],
    tmp: Path,
    *extra: str,
    secret: str | None = None,
    phases: str = "examples,coverage,fuzzing",
    examples: int = 25,
) -> str:
    """Run the schemathesis CLI against one service (in a child process, so this process's loop
    keeps serving the services meanwhile) with `tokens` by path part ("" for the rest) and POSTs
    signed with `secret`; its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.integration.contract_hooks"}
    env["CONTRACT_TOKENS"] = json.dumps(tokens)
    if secret:
        env["CONTRACT_SIGNING_SECRET"] = secret
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{system.url(service)}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(examples),
        "--seed",
        "20261126",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--generation-with-security-parameters",
        "false",
        "--request-timeout",
        "20",
        "--no-color",
        *extra,
        cwd=tmp,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=150)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-8000:]
    counts = re.search(r"Test cases:\s+(\d+) generated, (\d+) passed", text)
    assert counts is not None and counts[1] == counts[2], text[-4000:]
    assert int(counts[1]) >= 150, text[-4000:]
    return text


def _token(system: System, tenant: str) -> str:
    return system.token(tenant)["Authorization"].removeprefix("Bearer ")


async def test_intake_keeps_its_contract_with_signed_psap_requests(system: System, tmp_path: Path):
    psap = system.psap("valley-ecc")
    assert psap.signing_secret
    # No coverage phase here: over EIDO's large schema it alone makes a thousand cases.
    await _schemathesis(
        system,
        "intake",
        {"": psap.token},
        tmp_path,
        secret=psap.signing_secret,
        phases="examples,fuzzing",
        examples=50,
    )
    # Signed generated requests got past the guard: some of them created calls.
    async with system.pool(max_size=1) as pool:
        assert await pool.fetchval("SELECT count(*) FROM intake.calls WHERE psap_id = 'valley-ecc'") > 0


async def test_matching_keeps_its_contract(system: System, tmp_path: Path):
    tokens = {"": _token(system, "riverbend-crisis"), "/match": _token(system, "civilian-review-board")}
    await _schemathesis(system, "matching", tokens, tmp_path)


async def test_notify_keeps_its_contract(system: System, tmp_path: Path):
    # The stream never ends by itself; test_notify_stream covers it.
    extra = ("--exclude-path", "/v1/assignments/stream")
    await _schemathesis(system, "notify", {"": _token(system, "riverbend-crisis")}, tmp_path, *extra)


async def test_audit_keeps_its_contract(system: System, tmp_path: Path):
    await _schemathesis(system, "audit", {"": _token(system, "civilian-review-board")}, tmp_path)
