"""The 988 route: which calls triage transfers to the crisis line, and the file section that says so."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.intake.capacity import Capacity
from services.intake.crisis_line import to_crisis_line
from services.intake.domain import TriageFacts, triage
from services.intake.eido import EXTENSION_KEY, EidoDocument, normalise
from services.intake.eido import example as eido_example
from services.intake.rules import Triage
from services.jurisdiction import parse
from services.matching.crisis_line import HandBack, Offer, next_step
from shared.events import Answer, Location, Route, SafetyScreen
from shared.jurisdiction import CrisisLine, JurisdictionError

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"
RULES = Triage(
    version="v-988",
    eligible_types=["MNTL", "WELFARE"],
    exclude={"weapon": "police", "violence": "police", "medical": "ems", "self_harm_imminent": "ems"},
)
LINE = CrisisLine.model_validate(
    {
        "agency": "lane-988",
        "when": {
            "answers": {
                "weapon": False,  # YAML's unquoted no
                "violence": "no",
                "self_harm_imminent": "no",
                "in_person_needed": "no",
            },
        },
    }
)
SAFE = SafetyScreen(
    weapon=Answer.no,
    violence=Answer.no,
    medical=Answer.no,
    self_harm_imminent=Answer.no,
    crime_in_progress=Answer.no,
    in_person_needed=Answer.no,
)


def decide(screen: SafetyScreen, consent: bool | None = True, incident_type: str = "MNTL", line=LINE):
    decision = triage(incident_type, screen, RULES, TriageFacts(consent_non_police=consent))
    return to_crisis_line(decision, line, incident_type, screen, consent)


def test_no_community_team_free_now_does_not_keep_a_call_from_the_line():
    """Tried: the capacity rule sends a community call no free team covers to review; a call the
    line may take still goes to it (the line needs no team), and one it may not still goes to review."""
    at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    facts = TriageFacts(
        consent_non_police=True,
        at=at,
        location=Location(lat=44.05, lon=-123.09),
        capacity=Capacity.none_free(at),
    )
    decision = triage("MNTL", SAFE, RULES, facts)
    assert decision.route == Route.review and "no_community_capacity" in [c.code for c in decision.codes]
    assert to_crisis_line(decision, LINE, "MNTL", SAFE, True).route == Route.crisis_line
    needed = SAFE.model_copy(update={"in_person_needed": Answer.yes})
    kept = to_crisis_line(triage("MNTL", needed, RULES, facts), LINE, "MNTL", needed, True)
    assert kept.route == Route.review and kept.codes[-1].code == "crisis_line_unmet"


def test_consent_and_no_risk_and_no_one_needed_goes_to_988_and_says_why():
    decision = decide(SAFE)
    assert decision.route == Route.crisis_line
    assert decision.model_dump(mode="json")["route"] == "988"
    assert decision.codes[-1].code == "crisis_line_eligible"
    assert decision.codes[-1].params == {"agency": "lane-988"}
    assert "transferred to the 988 crisis line (lane-988)" in decision.reasons[-1]
    assert decision.rules_version == "v-988"


@pytest.mark.parametrize("question", ["weapon", "violence", "medical", "self_harm_imminent"])
def test_any_risk_answered_yes_is_never_988(question):
    decision = decide(SAFE.model_copy(update={question: Answer.yes}))
    assert decision.route in (Route.police, Route.ems)
    assert all(c.code != "crisis_line_eligible" for c in decision.codes)


def test_someone_needing_to_go_keeps_the_team_and_says_what_was_unmet():
    decision = decide(SAFE.model_copy(update={"in_person_needed": Answer.yes}))
    assert decision.route == Route.community
    assert decision.codes[-1].code == "crisis_line_unmet"
    assert decision.codes[-1].params == {"unmet": "in_person_needed"}


@pytest.mark.parametrize("consent", [None, False])
def test_missing_or_declined_consent_is_never_988(consent):
    decision = decide(SAFE, consent=consent)
    assert decision.route != Route.crisis_line
    assert "consent" in decision.codes[-1].params.get("unmet", "consent")


def test_an_unanswered_question_the_rule_names_is_not_an_answer():
    decision = decide(SAFE.model_copy(update={"in_person_needed": Answer.unknown}))
    assert decision.route == Route.community
    assert decision.codes[-1].params == {"unmet": "in_person_needed"}


def test_only_the_types_the_rule_names_go_and_no_line_changes_nothing():
    typed = LINE.model_copy(update={"when": LINE.when.model_copy(update={"incident_types": ["WELFARE"]})})
    assert decide(SAFE, line=typed).codes[-1].params == {"unmet": "type"}
    assert decide(SAFE, incident_type="WELFARE", line=typed).route == Route.crisis_line
    plain = decide(SAFE, line=None)
    assert plain.route == Route.community and all(c.code.startswith("crisis") is False for c in plain.codes)


def test_an_eido_carries_the_in_person_answer_and_a_caution_raised_yes_keeps_it_from_988():
    doc = eido_example()
    doc[EXTENSION_KEY]["safetyScreen"]["inPersonNeeded"] = "no"
    call = normalise(EidoDocument.model_validate(doc))
    assert call.safety.in_person_needed == Answer.no
    screen = call.safety.model_copy(update={"medical": Answer.no})
    assert decide(screen, consent=call.consent_non_police).route == Route.crisis_line
    raised = screen.model_copy(update={"weapon": Answer.yes})  # as a WEAPON caution raises it
    assert decide(raised, consent=call.consent_non_police).route == Route.police


def _with_line(section: dict[str, Any], teams_extra: list[dict[str, Any]] | None = None) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["agencies"].append(
        {
            "id": "lane-988",
            "name": "Lane 988",
            "token": "demo-agency-lane-988-0123456789",
            "channels": ["kafka"],
        }
    )
    data["teams"] += teams_extra or []
    data["crisis_line"] = section
    return yaml.safe_dump(data)


ANSWERS = {"weapon": "no", "self_harm_imminent": "no", "in_person_needed": "no"}


def test_the_section_loads_with_unquoted_yaml_answers_and_a_default_follow_up():
    text = _with_line({"agency": "lane-988", "when": {"answers": ANSWERS}}).replace("'no'", "no")
    j = parse(text, "city.yaml")
    assert j.crisis_line is not None and j.crisis_line.follow_up_within == 24
    assert j.crisis_line.when.answers["weapon"] == "no"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"agency": "nobody", "when": {"answers": ANSWERS}}, "crisis_line names unknown agency nobody"),
        ({"agency": "lane-988", "when": {"answers": {"weapon": "no"}}}, "self_harm_imminent: no"),
        (
            {"agency": "lane-988", "when": {"answers": {**ANSWERS, "in_person_needed": "unknown"}}},
            "in_person_needed",
        ),
        ({"agency": "lane-988", "when": {"answers": {**ANSWERS, "mood": "no"}}}, "mood"),
        ({"agency": "lane-988", "when": {"answers": ANSWERS, "consent": False}}, "consent"),
        ({"agency": "lane-988", "when": {"answers": ANSWERS}, "follow_up_within": 0}, "follow_up_within"),
        ({"agency": "lane-988", "when": {"answers": ANSWERS}, "callback": 3}, "callback"),
        ({"agency": "lane-988"}, "when"),
    ],
)
def test_mistakes_in_the_section_are_refused_with_where_and_why(section, message):
    with pytest.raises(JurisdictionError) as err:
        parse(_with_line(section), "city.yaml")
    assert message in str(err.value) and str(err.value).startswith("city.yaml")


def test_the_crisis_line_agency_sends_no_teams():
    team = {"id": "phone-1", "agency": "lane-988", "name": "Phones", "home": {"lat": 44.0, "lon": -123.0}}
    with pytest.raises(JurisdictionError, match="crisis_line agency lane-988 has teams"):
        parse(_with_line({"agency": "lane-988", "when": {"answers": ANSWERS}}, teams_extra=[team]))


@dataclass(frozen=True)
class Earlier:
    status: str
    reason: str | None = None


def test_the_center_is_offered_a_988_call_once_and_its_no_goes_back_to_the_psap():
    assert next_step("lane-988", []) == Offer("lane-988")
    assert next_step(None, []) == HandBack("no_crisis_line", "the jurisdiction names no 988 crisis line")
    assert next_step("lane-988", [], paused=True) == HandBack(
        "crisis_line_paused", "the 988 center lane-988 has paused itself"
    )
    assert next_step("lane-988", [Earlier("withdrawn", "agency_paused")]) == HandBack(
        "crisis_line_paused", "the 988 center lane-988 paused itself while offered the call"
    )
    declined = next_step("lane-988", [Earlier("declined", "no_staff")])
    assert isinstance(declined, HandBack) and declined.reason == "crisis_line_declined"
    assert "no_staff" in declined.detail
    assert next_step("lane-988", [Earlier("expired")]) == HandBack(
        "crisis_line_no_answer", "the 988 center lane-988 did not answer by the deadline"
    )
