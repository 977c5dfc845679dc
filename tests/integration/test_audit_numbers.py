"""Audit keeps every event it accepted and verification never breaks on a stored row: numbers at
the edge of what JSON allows, text jsonb refuses, on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from services.audit.note import VerifierKey
from services.cli import app as cli
from shared import events, topics
from shared.db import connect, create_pool
from shared.envelope import Envelope, new_event
from shared.settings import Settings
from tests.audit_scenario import received
from tests.integration.test_audit_service import REVIEWER, audit_running, publish, stored_count
from tests.integration.test_audit_trail import tamper
from tests.support import eventually
from tools.psap import bearer

pytestmark = pytest.mark.integration

# A double PostgreSQL's jsonb hands back as the integer 100000000000000000; an integer no double
# holds, in a field no model declares; a NUL, which jsonb refuses; a double near the top of the range.
ODD: dict[str, dict[str, Any]] = {
    "n-1e17": {"location": {"lat": 44.05, "lon": -123.09, "uncertainty_m": 1e17}},
    "n-31-digits": {"cad_reference": 10**30 + 7},
    "n-nul": {"cad_note": "before\u0000after"},
    "n-huge-double": {"cad_score": 1.5e300},
}


def _odd_calls() -> list[Envelope]:
    calls = []
    for call, extra in ODD.items():
        base = json.loads(received(call, "community", ["eligible"]).to_bytes())["data"]
        payload = events.CallReceived.model_validate({**base, **extra})
        calls.append(new_event(topics.CALLS_RECEIVED, "intake", call, payload))
    return calls


async def _flags(settings: Settings) -> dict[str, str | None]:
    conn = await connect(settings.database_url.get_secret_value())
    try:
        rows = await conn.fetch("SELECT subject, flag FROM audit.events WHERE type = 'calls.received.v1'")
        return {r["subject"]: r["flag"] for r in rows}
    finally:
        await conn.close()


async def test_odd_numbers_and_text_reach_the_trail_and_it_still_verifies(settings: Settings, tmp_path):
    """Tried: a float jsonb turns into a 17-digit integer, a 31-digit integer, a NUL and
    1.5e300, each in a call's event. Before, the 31-digit integer was refused by the
    encoder and dead-lettered (the call missing from the trail) and the 1e17 row made /verify answer
    500 and /export stop. Now every event is stored, the unencodable ones flagged, and every read
    and the offline verifier succeed."""
    fast = settings.model_copy(update={"audit_port": 0, "outbox_poll_interval_s": 0.1})
    odd = _odd_calls()
    await publish(fast, odd)
    async with audit_running(fast) as http:
        await eventually(lambda: stored_count(fast), lambda n: n >= len(odd), what="the trail")
        await asyncio.sleep(0.3)
        assert await stored_count(fast) == len(odd)
        flags = await _flags(fast)
        assert flags == {
            "n-1e17": None,
            "n-31-digits": "not_canonical",
            "n-nul": "not_canonical",
            "n-huge-double": None,
        }
        who = bearer(REVIEWER)
        for call in ODD:
            trail = await http.get(f"/v1/audit/calls/{call}", headers=who)
            assert trail.status_code == 200, (call, trail.text)
            assert [e["type"] for e in trail.json()["events"]] == ["calls.received.v1"]
        verified = (await http.get("/v1/audit/verify", headers=who)).json()
        assert verified["ok"], verified
        listed = await http.get("/v1/audit/events", params={"limit": 1000}, headers=who)
        assert listed.status_code == 200
        export = await http.get("/v1/audit/export", headers=who)
        lines = export.text.splitlines()
        # Every row, each read since adding its access event: nothing stops the export early.
        assert [json.loads(line)["seq"] for line in lines] == list(range(1, len(lines) + 1))
        assert len(lines) >= verified["head_seq"]
        assert "before" not in export.text and "after" not in export.text
        (tmp_path / "key").write_text(
            VerifierKey.decode((await http.get("/v1/audit/key", headers=who)).json()["verifier_key"]).encode()
        )
        (tmp_path / "export.jsonl").write_text(export.text)
        ran = CliRunner().invoke(
            cli, ["verify", "--key", str(tmp_path / "key"), "--export", str(tmp_path / "export.jsonl")]
        )
        assert ran.exit_code == 0, ran.output

        # The flagged row still commits to what audit received: an insider's edit of it is found.
        pool = await create_pool(fast.database_url.get_secret_value(), max_size=2)
        assert pool is not None
        try:
            seq = await pool.fetchval("SELECT seq FROM audit.events WHERE subject = 'n-31-digits'")
            await tamper(pool, f"UPDATE audit.events SET raw = raw || '\\x00'::bytea WHERE seq = {seq}")
        finally:
            await pool.close()
        edited = (await http.get("/v1/audit/verify", headers=who)).json()
        assert (edited["ok"], edited["first_bad_seq"]) == (False, seq), edited
