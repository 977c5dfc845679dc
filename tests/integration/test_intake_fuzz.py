"""A schemathesis fuzz run of intake's OpenAPI against intake on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.intake.settings import IntakeSettings
from tests.integration.intake_harness import Intake, running_intake

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings(rate_limit="100000/minute")) as running:
        yield running


async def test_fuzzing_the_openapi_finds_no_server_error(intake: Intake, tmp_path: Path):
    # The PSAP without a signing secret, so generated requests reach the routes' own validation;
    # the signed path is exercised by test_intake_security. The CLI runs in a child process, so
    # this process's event loop keeps serving intake meanwhile.
    token = intake.psap("university-psap").token
    cli = Path(sys.executable).parent / "schemathesis"
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "run",
        f"{intake.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        "--mode",
        "all",
        "--max-examples",
        "30",
        "--seed",
        "20261126",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=280)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "Tested: 8" in text and "No issues found" in text, text[-3000:]
    # The generated requests got past authentication: some of them created calls.
    conn = await intake.db()
    try:
        created = await conn.fetchval("SELECT count(*) FROM intake.calls WHERE psap_id = 'university-psap'")
    finally:
        await conn.close()
    assert created > 0
