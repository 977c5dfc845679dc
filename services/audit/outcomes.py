"""Every behavioural-health call's fate, exactly once: the outcome codes and the rule that picks one. Pure.

The report, the simulator's own count and the fault checker all classify through `outcome`, so the
three can only disagree about what happened, never about how to count it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from services.audit.stories import CallStory

# Each outcome with what it means; every behavioural-health call has exactly one of them.
OUTCOMES: dict[str, str] = {
    "served_without_police": "a community team cleared it; no backup request, no law enforcement disposition",
    "served_with_police": "cleared after a backup request or with a law enforcement disposition",
    "in_progress": "a community team holds the call and has not cleared it yet",
    "awaiting_team": "routed to a community team; none holds it yet and it was not handed back",
    "transferred_to_988": "the 988 crisis center took the call (reason: its follow-up: not_scheduled,"
    " open, overdue, closed or closed_late)",
    "awaiting_988": "routed to the 988 crisis line; its center has not taken it and it was not handed back",
    "handed_back": "no community team (or 988 center) took the call; it went back to the PSAP (reason:"
    " matching's code)",
    "cancelled_by_psap": "the PSAP cancelled the call before a team cleared it",
    "overridden": "the call-taker routed away from triage's recommendation (reason: the override's code)",
    "coverage_gap": (
        "triage's coverage rule, or no team free to take it, kept the call from community teams"
        " (reason: hours, area or capacity)"
    ),
    "not_eligible": "triage kept the call from community teams (reason: the rule: type or a safety answer)",
    "review_resolved": "sent to review and decided by a person or a newer version (reason: how, where to)",
    "review_pending": "sent to review, undecided, its deadline not yet passed",
    "review_unresolved_past_deadline": "sent to review and still undecided after its deadline",
}

# Triage's codes that keep a call from community teams, by outcome.
COVERAGE_CODES = {
    "outside_coverage_hours": "hours",
    "outside_coverage_area": "area",
    "no_community_capacity": "capacity",
}
EXCLUSION_CODES = (
    "type_not_eligible",
    "type_routed",
    "determinant_routed",
    "safety_yes",
    "safety_unknown",
    "consent_declined",
    "no_coordinates",
    "no_incident_type",
)
_DISPOSITIONS = Path(__file__).with_name("dispositions.json")


@dataclass(frozen=True)
class Outcome:
    """One call's fate: the outcome code, its reason code, and the route triage first recommended."""

    code: str
    reason: str
    recommended: str | None = None
    override_reason: str | None = None

    @property
    def key(self) -> str:
        """`code:reason`, as the report's breakdown counts it."""
        return f"{self.code}:{self.reason}"


@cache
def dispositions() -> dict[str, dict[str, Any]]:
    """The EIDO disposition registry, each code classified: does it say law enforcement acted?"""
    codes: dict[str, dict[str, Any]] = json.loads(_DISPOSITIONS.read_text())["codes"]
    return codes


def police_disposition(code: str | None) -> bool:
    """Whether a cleared call's disposition involves law enforcement (an unknown code does not)."""
    return bool(code) and bool(dispositions().get(code or "", {}).get("law_enforcement"))


def _exclusion(story: CallStory) -> str:
    """The rule that kept the call from community teams: the first exclusion that sent it where it went."""
    found = [c for c in story.codes if c.get("code") in EXCLUSION_CODES]
    decisive = [c for c in found if c.get("params", {}).get("route") == story.route] or found
    if not decisive:
        return "other"
    first = decisive[0]
    params = first.get("params", {})
    if first["code"] in ("type_not_eligible", "type_routed"):
        # The rule that routed the type (a type or prefix the rules name, or "fallback").
        return f"type:{params['rule']}" if params.get("rule") else "type"
    if first["code"] == "determinant_routed":
        return f"determinant:{params.get('rule', '')}"
    question = params.get("question")
    return f"{first['code']}:{question}" if question else first["code"]


def _coverage(story: CallStory) -> str | None:
    """hours, area, capacity (or two joined by `_and_`) when coverage alone kept the call from
    community, else None."""
    if any(c.get("code") in EXCLUSION_CODES for c in story.codes):
        return None
    missed = [COVERAGE_CODES[c["code"]] for c in story.codes if c.get("code") in COVERAGE_CODES]
    return "_and_".join(sorted(set(missed))) if missed else None


def follow_up_state(story: CallStory) -> str:
    """Where a transferred call's follow-up stands: not_scheduled (none seen yet), open, overdue
    (open past its due time), closed, or closed_late (closed after its due time)."""
    if story.follow_up_outcome is not None:
        return "closed_late" if story.follow_up_late or story.follow_up_overdue else "closed"
    if story.follow_up_overdue:
        return "overdue"
    return "open" if story.follow_up_due is not None else "not_scheduled"


def _transferred(story: CallStory) -> Outcome | None:
    """The 988 center took the call and kept it: the transfer is its fate, whatever came after."""
    if story.route == "988" and story.last_team_step == "accepted":
        return Outcome("transferred_to_988", follow_up_state(story), story.recommended)
    return None


def _ended(story: CallStory) -> Outcome | None:
    """A team cleared the call, or the PSAP cancelled it: what happened before matters no more."""
    recommended, overridden = story.recommended, story.override[0] if story.override else None
    if story.cleared_disposition is not None:
        disposition = story.cleared_disposition or "none"
        if story.backups:
            return Outcome("served_with_police", "backup_requested", recommended, overridden)
        if police_disposition(story.cleared_disposition):
            return Outcome("served_with_police", f"disposition:{disposition}", recommended, overridden)
        return Outcome("served_without_police", f"disposition:{disposition}", recommended, overridden)
    if story.cancelled:
        stage = "after_accept" if story.last_team_step == "accepted" else "before_a_team"
        return Outcome("cancelled_by_psap", stage, recommended, overridden)
    return None


def _teams(story: CallStory) -> Outcome | None:
    """Where community teams left a call they were given: handed back, held, or still waiting."""
    recommended, overridden = story.recommended, story.override[0] if story.override else None
    if story.last_team_step == "handed_back":
        return Outcome("handed_back", story.handed_back[-1], recommended, overridden)
    if story.last_team_step == "accepted":
        stage = "on_scene" if story.on_scene_at else "accepted"
        return Outcome("in_progress", stage, recommended, overridden)
    if story.route in ("community", "988"):
        stage = "offered" if story.offers else "not_offered"
        code = "awaiting_team" if story.route == "community" else "awaiting_988"
        return Outcome(code, stage, recommended, overridden)
    return None


def outcome(story: CallStory, now: datetime | None) -> Outcome:
    """The one outcome of a call, as of `now` (None: no review deadline is judged passed).

    A transfer the 988 center took comes first: a later clearance or cancel does not undo it. An
    override away from community comes before the hand-back it causes: the call-taker decided,
    not a shortage of teams.
    """
    transferred = _transferred(story)
    if transferred is not None:
        return transferred
    ended = _ended(story)
    if ended is not None:
        return ended
    recommended = story.recommended
    if story.override is not None and story.route not in ("community", "988"):
        reason, was = story.override
        if was == "review":
            return Outcome("review_resolved", f"override:{story.route}", recommended, reason)
        return Outcome("overridden", reason, was, reason)
    teams = _teams(story)
    if teams is not None:
        return teams
    gap = _coverage(story)
    if gap is not None:
        return Outcome("coverage_gap", gap, recommended)
    if story.review_resolved is not None:
        return Outcome("review_resolved", story.review_resolved, recommended)
    if story.route == "review":
        deadline = story.review_deadline
        past = deadline is not None and now is not None and now > deadline
        code = "review_unresolved_past_deadline" if past else "review_pending"
        return Outcome(code, _exclusion(story), recommended)
    return Outcome("not_eligible", _exclusion(story), recommended)


def outcomes(calls: Mapping[str, CallStory], now: datetime | None) -> dict[str, Outcome]:
    """The outcome of every behavioural-health call among `calls`, by call id."""
    return {call: outcome(story, now) for call, story in calls.items() if story.behavioural}


def breakdown(found: Iterable[Outcome]) -> dict[str, dict[str, int]]:
    """Outcome code -> reason code -> calls, every outcome code present (zero when none)."""
    counts: dict[str, Counter[str]] = {code: Counter() for code in OUTCOMES}
    for o in found:
        counts[o.code][o.reason] += 1
    return {code: dict(sorted(c.items())) for code, c in counts.items()}


def table() -> str:
    """docs/outcomes.md: the outcome codes and the disposition registry's classification, as Markdown."""
    lines = [
        "# Outcomes of behavioural-health calls",
        "",
        "Generated by `python -m services.audit.outcomes > docs/outcomes.md`; do not edit by hand.",
        "",
        "Every behavioural-health call (its incident type is one the jurisdiction file's triage rules",
        "call behavioural health) has exactly one outcome, with a reason code; the outcomes of a period",
        "sum to its behavioural-health calls. They are picked in this order: a transfer the 988 crisis",
        "center took, then what community teams did (cleared, cancelled, handed back, holding it,",
        "routed and waiting; a 988 center's decline is a hand-back too), then the call-taker's",
        "override, then triage's coverage rule, then review, then the rule that kept it from them.",
        "",
        "| outcome | meaning |",
        "|---------|---------|",
        *[f"| `{code}` | {meaning} |" for code, meaning in OUTCOMES.items()],
        "",
        "## Which EIDO dispositions involve law enforcement",
        "",
        "A cleared call counts as served with police when a backup was requested or its disposition",
        "(NENA-STA-021 CommonDispositionCode) is marked here; `services/audit/dispositions.json` holds",
        "this table and `GET /v1/reports/dispositions` serves it.",
        "",
        "| code | disposition | law enforcement | why |",
        "|------|-------------|-----------------|-----|",
        *[
            f"| {code} | {d['description']} | {'yes' if d['law_enforcement'] else 'no'} | {d['why']} |"
            for code, d in dispositions().items()
        ],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
