"""Audit keeps every event it accepted and verification never breaks on a stored row: numbers at
the edge of what JSON allows, text jsonb refuses, on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
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
from tests.integration.test_audit_service import ADMIN, REVIEWER, audit_running, publish, stored_count
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


async def test_a_row_flagged_or_edited_into_any_shape_never_fails_a_read(settings: Settings):
    """Tried: besides flagged rows, three rows an insider rewrote: an envelope and public view that
    are a JSON string, one whose header lost its subject and time and whose data became a list, and
    one whose id is a number. Before, shaping such a row for a trail, an event page or the CSV
    export indexed its keys and the whole answer was a 500, as the summary and shadow reports were
    (they read the string view's keys and the missing time); now each row is shown with what it
    holds (empty where a field is missing or not text), the reports leave out a row with no
    subject, type or time, and /verify names the first edited row."""
    fast = settings.model_copy(update={"audit_port": 0, "outbox_poll_interval_s": 0.1})
    odd = _odd_calls()
    await publish(fast, odd)
    async with audit_running(fast) as http:
        await eventually(lambda: stored_count(fast), lambda n: n >= len(odd), what="the trail")
        pool = await create_pool(fast.database_url.get_secret_value(), max_size=2)
        try:
            seqs = {
                r["subject"]: r["seq"]
                for r in await pool.fetch(
                    "SELECT subject, seq FROM audit.events WHERE type = 'calls.received.v1'"
                )
            }
            edits = {
                "n-1e17": "'\"not an event\"'::jsonb",
                "n-huge-double": "(public_event - 'subject' - 'time') || '{\"data\": [1, 2]}'::jsonb",
                "n-nul": "public_event || '{\"id\": 7}'::jsonb",
            }
            await tamper(
                pool,
                *(
                    f"UPDATE audit.events SET envelope = {sql.replace('public_event', 'envelope')},"
                    f" public_event = {sql} WHERE seq = {seqs[call]}"
                    for call, sql in edits.items()
                ),
            )
        finally:
            await pool.close()
        for token, phi in ((REVIEWER, "false"), (ADMIN, "true")):
            who = bearer(token)
            for call in ODD:
                trail = await http.get(f"/v1/audit/calls/{call}", params={"phi": phi}, headers=who)
                assert trail.status_code == 200, (call, phi, trail.text)
                [shown] = trail.json()["events"]
                assert shown["seq"] == seqs[call]
                if call == "n-1e17":
                    assert (shown["id"], shown["type"], shown["data"]) == ("", "", {})
                if call == "n-huge-double":
                    assert (shown["subject"], shown["time"], shown["data"]) == ("", "", {})
                    assert shown["type"] == "calls.received.v1"
                if call == "n-nul":
                    assert shown["id"] == "" and shown["subject"] == "n-nul"
            listed = await http.get("/v1/audit/events", params={"limit": 1000, "phi": phi}, headers=who)
            assert listed.status_code == 200, listed.text
            assert {seqs[c] for c in ODD} <= {e["seq"] for e in listed.json()["events"]}
        who = bearer(REVIEWER)
        for report in ("summary", "shadow"):
            answer = await http.get(f"/v1/reports/{report}", headers=who)
            assert answer.status_code == 200, (report, answer.text)
        # The flagged rows (header kept, data {}) and the row whose id became a number still count.
        summary = (await http.get("/v1/reports/summary", headers=who)).json()
        assert summary["funnel"]["received"] == 2, summary["funnel"]
        export = await http.get("/v1/audit/export", params={"format": "csv"}, headers=who)
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.text)))
        assert {int(r[0]) for r in rows[1:]} >= set(seqs.values())
        verified = await http.get("/v1/audit/verify", headers=who)
        assert verified.status_code == 200
        assert (verified.json()["ok"], verified.json()["first_bad_seq"]) == (
            False,
            min(seqs[c] for c in edits),
        ), verified.json()
