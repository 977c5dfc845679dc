"""Every behavioural-health call's fate, exactly once: the four counts the summary got wrong, each
call's outcome, and a small period whose report is worked out by hand."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.audit import domain, outcomes, reports
from services.audit.stories import stories
from shared.envelope import Envelope
from shared.registries import DISPOSITIONS
from tests.audit_scenario import (
    ELIGIBLE,
    T0,
    cancelled,
    decided,
    follow_up,
    offered,
    received,
    responded,
    status,
    unassigned,
    updated,
)

TYPE = {"code": "type_eligible", "params": {"incident_type": "MNTL"}}


def public(events: list[Envelope]) -> list[dict[str, Any]]:
    return [domain.redact(json.loads(e.to_bytes())) for e in events]


def fates(events: list[Envelope], now_s: float | None = None) -> dict[str, str]:
    now = T0 + timedelta(seconds=now_s) if now_s is not None else None
    return {call: o.key for call, o in outcomes.outcomes(stories(public(events)), now).items()}


def served(call: str, disposition: str, backup: bool = False) -> list[Envelope]:
    steps = [
        received(call, "community", ELIGIBLE),
        offered(call, 1, "agency-a", 10),
        responded(call, 1, "agency-a", 20, "accepted"),
        status(call, 1, "agency-a", 300, "on_scene"),
    ]
    if backup:
        steps.append(status(call, 1, "agency-a", 400, "backup_requested"))
    return [*steps, status(call, 1, "agency-a", 900, "cleared", disposition)]


def test_a_call_cleared_as_transported_by_law_enforcement_is_not_cleared_without_police():
    """Tried: before, every cleared call counted as cleared without police (the dispositions are
    registry codes, none holds the word "police"), and there was no plain count of cleared calls."""
    events = [*served("p1", "18"), *served("p2", "33", backup=True), *served("p3", "03")]
    funnel = reports.summary(public(events))["funnel"]
    assert (funnel["cleared"], funnel["cleared_without_police"], funnel["cleared_with_police"]) == (3, 1, 2)
    assert fates(events) == {
        "p1": "served_without_police:disposition:18",
        "p2": "served_with_police:backup_requested",
        "p3": "served_with_police:disposition:03",
    }


def test_an_overridden_eligible_call_keeps_its_recommendation_and_the_override_reason():
    """Tried: before, the override's decision replaced triage's reasons, so the call was no longer
    behavioural health and dropped out of every count."""
    events = [
        received("o1", "community", ELIGIBLE),
        updated("o1", "police", 30, previous="community", override="safety_concern"),
    ]
    report = reports.summary(public(events))
    assert report["outcomes"]["behavioural_health"] == 1
    assert report["outcomes"]["reasons"]["overridden"] == {"safety_concern": 1}
    assert report["overrides"] == {"community:safety_concern": 1}
    found = outcomes.outcomes(stories(public(events)), None)["o1"]
    assert (found.recommended, found.override_reason) == ("community", "safety_concern")


def test_an_override_away_from_community_is_the_outcome_not_the_hand_back_it_causes():
    events = [
        received("o2", "community", ELIGIBLE),
        offered("o2", 1, "agency-a", 10),
        updated("o2", "police", 30, previous="community", override="caller_declined"),
        unassigned("o2", "withdrawn_by_psap_update", 31),
    ]
    assert fates(events) == {"o2": "overridden:caller_declined"}


def test_a_call_kept_from_community_by_the_coverage_rule_is_a_coverage_gap():
    """Tried: before, it was counted as "not eligible: other"."""
    hours = {"code": "outside_coverage_hours", "params": {"route": "review"}}
    area = {"code": "outside_coverage_area", "params": {"route": "police"}}
    weapon = {"code": "safety_yes", "params": {"question": "weapon", "route": "police"}}
    events = [
        decided("g1", "review", [TYPE, hours]),
        decided("g2", "police", [TYPE, area]),
        decided("g3", "police", [TYPE, hours, area]),
        decided("g4", "police", [TYPE, weapon, hours]),  # a weapon keeps it away in any hour
    ]
    assert fates(events, now_s=10**6) == {
        "g1": "coverage_gap:hours",
        "g2": "coverage_gap:area",
        "g3": "coverage_gap:area_and_hours",
        "g4": "not_eligible:safety_yes:weapon",
    }
    gaps = reports.summary(public(events))["coverage_gaps_by_hour_utc"]
    assert gaps == {"3": 3}


def test_a_call_kept_from_community_for_want_of_a_free_team_is_a_capacity_gap():
    """Tried: without its code in the taxonomy it was a review pending, then unresolved, as if a
    person owed it a decision that a council should read as a shortage of teams."""
    full = {"code": "no_community_capacity", "params": {"route": "review"}}
    events = [
        decided("c1", "review", [TYPE, full]),
        decided("c2", "review", [TYPE, full]),
        updated("c2", "police", 60, previous="review", override="no_team_free"),
    ]
    assert fates(events, now_s=10**6) == {
        "c1": "coverage_gap:capacity",
        "c2": "review_resolved:override:police",
    }


def test_a_call_sent_to_review_is_resolved_or_unresolved_past_its_deadline():
    """Tried: before, a call in review had no deadline and no resolution and was counted nowhere
    (its route not community, its reasons no safety answer)."""
    unknown = {"code": "safety_unknown", "params": {"question": "weapon", "route": "review"}}
    deadline = (T0 + timedelta(minutes=15)).isoformat()
    events = [
        decided("r1", "review", [TYPE, unknown], review_deadline=deadline),
        decided("r2", "review", [TYPE, unknown], review_deadline=deadline),
        updated("r2", "police", 120, previous="review", override="safety_concern"),
        decided("r3", "review", [TYPE, unknown], review_deadline=deadline),
        updated("r3", "community", 60, previous="review"),
        offered("r3", 1, "agency-a", 70),
    ]
    assert fates(events, now_s=600)["r1"] == "review_pending:safety_unknown:weapon"
    assert fates(events, now_s=901) == {
        "r1": "review_unresolved_past_deadline:safety_unknown:weapon",
        "r2": "review_resolved:override:police",
        "r3": "awaiting_team:offered",
    }


def test_every_behavioural_call_has_exactly_one_outcome_and_a_small_period_adds_up_by_hand():
    """Nine calls worked out by hand: four served (two with police), one handed back, one cancelled,
    one overridden, one coverage gap, one past its review deadline; one call not behavioural."""
    hours = {"code": "outside_coverage_hours", "params": {"route": "review"}}
    unknown = {"code": "safety_unknown", "params": {"question": "violence", "route": "review"}}
    other = {"code": "type_not_eligible", "params": {"route": "police"}}
    events = [
        *served("h1", "18"),
        *served("h2", "41"),
        *served("h3", "16", backup=True),
        *served("h4", "33"),
        received("h5", "community", ELIGIBLE),
        unassigned("h5", "all_busy", 5),
        received("h6", "community", ELIGIBLE),
        offered("h6", 1, "agency-a", 10),
        decided("h7", "review", [TYPE, hours]),
        decided("h8", "review", [TYPE, unknown], review_deadline=(T0 + timedelta(minutes=5)).isoformat()),
        decided("h9", "police", [other]),
        received("h10", "community", ELIGIBLE),
        updated("h10", "police", 30, previous="community", override="dispatcher_judgement"),
        cancelled("h6", 40),
    ]
    report = reports.summary(public(events), now=T0 + timedelta(hours=1))
    totals = report["outcomes"]["totals"]
    assert report["funnel"]["received"] == 10
    assert report["outcomes"]["behavioural_health"] == 9 == sum(totals.values())
    assert {k: n for k, n in totals.items() if n} == {
        "served_without_police": 2,
        "served_with_police": 2,
        "handed_back": 1,
        "cancelled_by_psap": 1,
        "overridden": 1,
        "coverage_gap": 1,
        "review_unresolved_past_deadline": 1,
    }
    assert report["outcomes"]["reasons"]["served_with_police"] == {
        "backup_requested": 1,
        "disposition:33": 1,
    }
    assert report["funnel"]["cleared"] == 4 and report["funnel"]["cleared_without_police"] == 2
    assert set(totals) == set(outcomes.OUTCOMES)


CRISIS = {"code": "crisis_line_eligible", "params": {"agency": "lane-988"}}


def to_988(call: str, *after: Envelope) -> list[Envelope]:
    """A call triage routed 988 and the center took, then `after`."""
    return [
        decided(call, "988", [TYPE, CRISIS]),
        offered(call, 1, "lane-988", 5),
        responded(call, 1, "lane-988", 20, "accepted"),
        *after,
    ]


def test_a_988_transfer_is_its_own_outcome_by_its_follow_up_and_the_summary_counts_follow_ups():
    """Tried: before, a call the 988 center took counted as in_progress with a community team for
    ever (its route no community, its accept a team's), and a declined one as any hand-back; the
    follow-ups were counted nowhere. Each transfer is counted once, so the outcomes still sum up."""
    scheduled = follow_up("f1", "scheduled", 21)
    events = [
        *to_988("f0"),  # accepted, its follow-up not seen yet
        *to_988("f1", scheduled),
        *to_988("f2", follow_up("f2", "scheduled", 21), follow_up("f2", "overdue", 3700, overdue_at=T0)),
        *to_988(
            "f3",
            follow_up("f3", "scheduled", 21),
            follow_up("f3", "closed", 900, outcome="reached", closed_at=T0, late=False),
        ),
        *to_988(
            "f4",
            follow_up("f4", "scheduled", 21),
            follow_up("f4", "overdue", 3700, overdue_at=T0),
            follow_up("f4", "closed", 3800, outcome="unreachable", closed_at=T0, late=True),
        ),
        *to_988("f5", cancelled("f5", 60)),  # the PSAP's cancel after the transfer does not undo it
        decided("f6", "988", [TYPE, CRISIS]),
        offered("f6", 1, "lane-988", 5),
        decided("f7", "988", [TYPE, CRISIS]),
        offered("f7", 1, "lane-988", 5),
        responded("f7", 1, "lane-988", 20, "declined"),
        unassigned("f7", "crisis_line_declined", 21),
    ]
    assert fates(events) == {
        "f0": "transferred_to_988:not_scheduled",
        "f1": "transferred_to_988:open",
        "f2": "transferred_to_988:overdue",
        "f3": "transferred_to_988:closed",
        "f4": "transferred_to_988:closed_late",
        "f5": "transferred_to_988:not_scheduled",
        "f6": "awaiting_988:offered",
        "f7": "handed_back:crisis_line_declined",
    }
    report = reports.summary(public(events))
    totals = report["outcomes"]["totals"]
    assert report["outcomes"]["behavioural_health"] == 8 == sum(totals.values())
    assert totals["transferred_to_988"] == 6 and totals["awaiting_988"] == 1 and totals["handed_back"] == 1
    # Diverted from police like a community call: in the funnel's eligible, offered and accepted.
    funnel = report["funnel"]
    assert (funnel["eligible"], funnel["offered"], funnel["accepted"]) == (8, 8, 6)
    assert report["follow_ups"] == {
        "transferred": 6,
        "open": 1,
        "overdue": 1,
        "closed": 1,
        "closed_late": 1,
        "by_outcome": {"reached": 1, "unreachable": 1},
    }


def test_a_behavioural_type_a_rule_routes_elsewhere_is_not_eligible_by_that_rule():
    od = {"code": "type_routed", "params": {"incident_type": "OD", "rule": "OD", "route": "ems"}}
    fallback = {"code": "type_not_eligible", "params": {"route": "police", "rule": "fallback"}}
    determinant = {"code": "determinant_routed", "params": {"rule": "25-B-6", "route": "police"}}
    events = [
        decided("t1", "ems", [od], behavioural_health=True),
        decided("t2", "police", [fallback], behavioural_health=True),
        decided("t3", "police", [fallback], behavioural_health=False),
        decided("t4", "police", [TYPE, determinant], behavioural_health=True),
    ]
    assert fates(events) == {
        "t1": "not_eligible:type:OD",
        "t2": "not_eligible:type:fallback",
        "t4": "not_eligible:determinant:25-B-6",
    }


def test_the_disposition_classification_covers_the_registry_exactly():
    classified = outcomes.dispositions()
    assert {code: d["description"] for code, d in classified.items()} == DISPOSITIONS
    assert all(isinstance(d["law_enforcement"], bool) and d["why"] for d in classified.values())
    assert outcomes.police_disposition("33") and outcomes.police_disposition("03")
    assert not outcomes.police_disposition("18") and not outcomes.police_disposition("")


def test_docs_outcomes_md_is_the_generated_table():
    doc = Path(__file__).parents[2] / "docs" / "outcomes.md"
    assert doc.read_text() == outcomes.table(), (
        "docs/outcomes.md is stale: run `python -m services.audit.outcomes > docs/outcomes.md`"
    )
