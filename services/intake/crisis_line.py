"""Intake's 988 rule, no I/O: a call triage would send to a community team goes to the crisis line
instead when the caller consents and the screen says no imminent risk and no one needs to go."""

from __future__ import annotations

from shared.events import ReasonCode, Route, SafetyScreen, TriageDecision
from shared.jurisdiction import CrisisLine


def unmet(line: CrisisLine, incident_type: str, safety: SafetyScreen, consent: bool | None) -> list[str]:
    """What keeps a call from the line, as codes: `type`, `consent`, or each question whose answer
    is not the one the rule requires; empty when the call may go."""
    when = line.when
    missing = [] if not when.incident_types or incident_type in when.incident_types else ["type"]
    if consent is not True:
        missing.append("consent")
    missing += [q for q, answer in when.answers.items() if getattr(safety, q) != answer]
    return missing


def to_crisis_line(
    decision: TriageDecision,
    line: CrisisLine | None,
    incident_type: str,
    safety: SafetyScreen,
    consent: bool | None,
) -> TriageDecision:
    """The decision with route `988` when triage chose a community team and the line's rule holds
    (`safety` is the screen after EIDO cautions); otherwise unchanged, with the reason it was not
    transferred when a line exists. Any rule that sent the call elsewhere (a risk answered yes, an
    unknown, review, coverage) keeps it from the line: the line only ever replaces a team. No team
    free to take it now is no such rule: the line needs no team."""
    for_want_of_a_team = any(c.code == "no_community_capacity" for c in decision.codes)
    if line is None or (decision.route != Route.community and not for_want_of_a_team):
        return decision
    missing = unmet(line, incident_type, safety, consent)
    if missing:
        reason = f"not transferred to the 988 crisis line: {', '.join(missing)} not as its rule requires"
        code = ReasonCode(code="crisis_line_unmet", params={"unmet": ",".join(missing)})
        return decision.model_copy(
            update={"reasons": [*decision.reasons, reason], "codes": [*decision.codes, code]}
        )
    answers = ", ".join(f"{q} {a}" for q, a in line.when.answers.items())
    reason = (
        f"the caller consents and the screen answers {answers}: transferred to the 988 crisis line"
        f" ({line.agency}), which calls back within {line.follow_up_within:g} h"
    )
    code = ReasonCode(code="crisis_line_eligible", params={"agency": line.agency})
    return decision.model_copy(
        update={
            "route": Route.crisis_line,
            "reasons": [*decision.reasons, reason],
            "codes": [*decision.codes, code],
        }
    )
