"""Shadow and draft differences: which decision of a call is compared, the table, a draft's parsing."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from services.audit import domain, shadow
from services.intake import drafts
from services.intake.repository import StoredCall
from shared.envelope import Envelope
from tests.audit_scenario import ELIGIBLE, received, updated


def public(events: list[Envelope]) -> list[dict[str, Any]]:
    return [domain.redact(json.loads(e.to_bytes())) for e in events]


def with_shadow(event: Envelope, route: str) -> Envelope:
    data = dict(event.data)
    data["shadow_decision"] = {"route": route, "reasons": [], "rules_version": "draft", "codes": []}
    return event.model_copy(update={"data": data})


def test_a_calls_last_rule_decision_is_compared_and_an_override_is_not_a_rule_decision():
    trail = [
        with_shadow(received("c1", "review", ELIGIBLE), "community"),
        with_shadow(updated("c1", "police", 60, previous="review"), "community"),
        with_shadow(received("c2", "community", ELIGIBLE), "community"),
        with_shadow(updated("c2", "police", 60, previous="community", override="safety_concern"), "police"),
        received("c3", "community", ELIGIBLE),
    ]
    compared = shadow.from_trail(public(trail))
    assert [(c.call_id, c.active, c.other) for c in compared] == [
        ("c1", "police", "community"),
        ("c2", "community", "community"),
    ]
    table = shadow.differences(compared)
    assert table == {
        "compared": 2,
        "differ": 1,
        "active_versions": ["t"],
        "other_versions": ["draft"],
        "pairs": [{"active": "police", "other": "community", "calls": 1, "call_ids": ["c1"]}],
    }
    text = shadow.render(table)
    assert text.splitlines()[0] == (
        "2 calls compared, 1 routed differently by the shadow rules (draft) than by the rules in force (t)"
    )
    assert text.splitlines()[2].split() == ["police", "community", "1", "c1"]


RULES = {"version": "d1", "eligible_types": ["MNTL", "EDP"], "exclude": {"weapon": "police"}}


def test_a_draft_is_a_triage_section_or_a_jurisdiction_files_triage():
    assert drafts.parse_draft(json.dumps(RULES)).version == "d1"
    whole = drafts.parse_draft(json.dumps({"jurisdiction": {}, "triage": {**RULES, "shadow": RULES}}))
    assert whole.eligible_types == ["MNTL", "EDP"]
    for text in ("[1, 2]", "version: [", json.dumps({"version": "x"})):
        with pytest.raises(drafts.DraftError):
            drafts.parse_draft(text)


def test_a_draft_triages_each_stored_call_on_the_facts_it_came_in_with():
    stored = StoredCall(
        id="c1",
        incident_type="EDP",
        safety=json.dumps({"weapon": "no"}),
        location=json.dumps({"lat": 44.05, "lon": -123.09}),
        consent_non_police=None,
        cautions="[]",
        mpds_determinant=None,
        received_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
        decision=json.dumps({"route": "police", "reasons": [], "rules_version": "v1"}),
    )
    [judged] = drafts.judge([stored], drafts.parse_draft(json.dumps(RULES)), "America/Los_Angeles")
    # EDP is eligible under the draft, and it excludes only on the weapon question, answered "no"
    assert (judged.call_id, judged.active, judged.draft, judged.active_version) == (
        "c1",
        "police",
        "community",
        "v1",
    )
    knife = replace(stored, cautions=json.dumps(["KNIFE"]))
    [armed] = drafts.judge([knife], drafts.parse_draft(json.dumps(RULES)), None)
    assert armed.draft == "police"


def test_a_draft_reads_the_determinant_the_cad_sent():
    stored = StoredCall(
        id="c1",
        incident_type="PSYCH",
        safety=json.dumps(dict.fromkeys(("weapon", "violence", "medical"), "no")),
        location=json.dumps({"lat": 44.05, "lon": -123.09}),
        consent_non_police=None,
        cautions="[]",
        mpds_determinant="25-A-1",
        received_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
        decision=json.dumps({"route": "police", "reasons": [], "rules_version": "v1"}),
    )
    draft = drafts.parse_draft(json.dumps({**RULES, "determinants": {"25-A": "community"}}))
    [judged] = drafts.judge([stored], draft, None)
    assert judged.draft == "community"
