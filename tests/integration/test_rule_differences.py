"""What another rule set would change: the shadow differences drawn from audit's trail (report and
command), and a draft rule file evaluated over intake's stored calls, on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from services.audit import shadow
from services.cli import app as cli
from services.intake.settings import IntakeSettings
from shared import events, topics
from shared.envelope import Envelope, new_event
from shared.settings import Settings
from tests.audit_scenario import ELIGIBLE, received
from tests.integration.intake_harness import SHADOW, Intake, native_call, running_intake
from tests.integration.test_audit_service import REVIEWER, audit_running, publish, stored_count
from tests.support import eventually
from tools.psap import bearer

pytestmark = pytest.mark.integration


@pytest.fixture
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


async def careroute(settings: Settings, *args: str) -> Any:
    """The command as an operator runs it, on this test's database (in a thread: it runs its own loop)."""
    env = {"DATABASE_URL": settings.database_url.get_secret_value()}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_a_draft_rule_file_over_intakes_stored_calls_gives_the_shadow_table(
    intake: Intake, tmp_path: Path
):
    """Four calls: one both rule sets route alike, a crime in progress (police; the draft drops
    that exclusion), an unanswered weapon question (review; the draft trusts unknowns) and a type
    the rules in force send to review that the draft calls eligible."""
    calls = {
        "same": native_call("DRAFT-SAME"),
        "crime": native_call("DRAFT-CRIME", crime_in_progress="yes"),
        "unknown": native_call("DRAFT-UNKNOWN", weapon="unknown"),
        "type": native_call("DRAFT-TYPE", incident_type="NONEMERG"),
    }
    ids: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=15) as http:
        for name, body in calls.items():
            r = await intake.post(http, "/v1/calls", "valley-ecc", body)
            assert r.status_code == 202, r.text
            ids[name] = r.json()["call_id"]
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(SHADOW))
    ran = await careroute(intake.settings, "rules", "evaluate", str(draft))
    assert ran.exit_code == 0, ran.output
    lines = ran.output.splitlines()
    assert lines[0].startswith("4 calls compared, 3 routed differently by the draft rules (2026-12-draft)")
    by_pair = {tuple(line.split()[:3]): line.split()[3:] for line in lines[2:]}
    assert by_pair == {
        ("police", "community", "1"): [ids["crime"]],
        ("review", "community", "2"): sorted([ids["unknown"], ids["type"]]),
    }
    # The shadow decisions intake recorded on each call (the same rules) say exactly the same.
    published = [(await intake.events(topics.CALLS_RECEIVED, call_id, 1))[0] for call_id in ids.values()]
    recorded = shadow.differences(shadow.from_trail(published))
    assert [(p["active"], p["other"], p["call_ids"]) for p in recorded["pairs"]] == [
        ("review", "community", sorted([ids["unknown"], ids["type"]])),
        ("police", "community", [ids["crime"]]),
    ]
    # Another PSAP's calls, and a period with none of them, compare nothing.
    other = await careroute(intake.settings, "rules", "evaluate", str(draft), "--psap", "springfield-pd-psap")
    assert other.exit_code == 0 and other.output.startswith("0 calls compared"), other.output
    mine = await careroute(intake.settings, "rules", "evaluate", str(draft), "--psap", "valley-ecc")
    assert mine.output.splitlines()[0].startswith("4 calls compared, 3 routed differently")
    empty = await careroute(intake.settings, "rules", "evaluate", str(draft), "--to", "2020-01-01T00:00:00Z")
    assert empty.exit_code == 0 and empty.output.startswith("0 calls compared, 0 routed differently")


async def test_a_draft_that_is_not_a_rule_set_or_a_bad_period_is_refused(intake: Intake, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    for text, said in [
        ("version: x\neligible_types: [MNTL]\n", "exclude"),
        ("- a list\n", "a mapping of triage rules"),
        ("version: [unclosed\n", "not YAML"),
    ]:
        bad.write_text(text)
        ran = await careroute(intake.settings, "rules", "evaluate", str(bad))
        assert ran.exit_code == 2 and said in ran.output, ran.output
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(SHADOW))
    for args in (["--from", "yesterday"], ["--from", "2026-02-01", "--to", "2026-01-01"]):
        ran = await careroute(intake.settings, "rules", "evaluate", str(good), *args)
        assert ran.exit_code == 2, ran.output
    missing = await careroute(intake.settings, "rules", "evaluate", str(tmp_path / "nowhere.yaml"))
    assert missing.exit_code == 2


def _with_shadow(call: str, route: str, shadow_route: str) -> Envelope:
    event = received(call, route, ELIGIBLE)
    data = json.loads(event.to_bytes())["data"]
    data["shadow_decision"] = {"route": shadow_route, "reasons": [], "rules_version": "draft", "codes": []}
    payload = events.CallReceived.model_validate(data)
    return new_event(topics.CALLS_RECEIVED, "intake", call, payload).model_copy(update={"time": event.time})


async def test_the_shadow_report_and_command_count_differences_by_pair_of_routes(settings: Settings):
    fast = settings.model_copy(update={"audit_port": 0, "outbox_poll_interval_s": 0.1})
    trail = [
        _with_shadow("s1", "community", "community"),
        _with_shadow("s2", "police", "community"),
        _with_shadow("s3", "police", "community"),
        _with_shadow("s4", "review", "community"),
        _with_shadow("s5", "community", "review"),
        received("s6", "community", ELIGIBLE),  # recorded before any shadow rule set: not compared
    ]
    await publish(fast, trail)
    async with audit_running(fast) as http:
        await eventually(lambda: stored_count(fast), lambda n: n >= len(trail), what="the trail")
        r = await http.get(
            "/v1/reports/shadow", params={"from": "2026-11-01T00:00:00Z"}, headers=bearer(REVIEWER)
        )
        assert r.status_code == 200, r.text
        report = r.json()
        assert (report["compared"], report["differ"]) == (5, 4)
        assert [(p["active"], p["other"], p["calls"], p["call_ids"]) for p in report["pairs"]] == [
            ("police", "community", 2, ["s2", "s3"]),
            ("community", "review", 1, ["s5"]),
            ("review", "community", 1, ["s4"]),
        ]
        refused = await http.get(
            "/v1/reports/shadow",
            params={"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            headers=bearer(REVIEWER),
        )
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_range"
        assert (await http.get("/v1/reports/shadow")).status_code == 401
    ran = await careroute(fast, "rules", "shadow", "--from", "2026-11-01T00:00:00Z")
    assert ran.exit_code == 0, ran.output
    assert ran.output.splitlines()[0].startswith("5 calls compared, 4 routed differently by the shadow rules")
    assert "police     community       2  s2 s3" in ran.output
