"""A draft rule set judged over the calls intake stored: how each would be routed beside how it was."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from services.intake import domain
from services.intake.repository import StoredCall
from services.intake.rules import TriageRules
from shared.events import Location, SafetyScreen, TriageDecision


class DraftError(ValueError):
    """A draft rule file that is not a rule set."""

    code = "invalid_draft"


@dataclass(frozen=True)
class Judged:
    """One stored call's route under the rules it was triaged by and under the draft."""

    call_id: str
    active: str
    draft: str
    active_version: str
    draft_version: str


def parse_draft(text: str) -> TriageRules:
    """A rule set from YAML: a triage section on its own, or a whole jurisdiction file's `triage`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DraftError(f"not YAML: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("triage"), dict):
        raw = raw["triage"]
    if not isinstance(raw, dict):
        raise DraftError("a draft is a mapping of triage rules (version, eligible_types, exclude, ...)")
    raw = {k: v for k, v in raw.items() if k != "shadow"}
    try:
        return TriageRules.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise DraftError(f"not a rule set: {problems}") from None


def judge(rows: Iterable[StoredCall], draft: TriageRules, timezone: str | None) -> list[Judged]:
    """Triage every stored call again with `draft`, on the facts triage had when it came in."""
    judged = []
    for row in rows:
        active = TriageDecision.model_validate_json(row.decision)
        facts = domain.TriageFacts(
            cautions=tuple(json.loads(row.cautions or "[]")),
            location=Location.model_validate_json(row.location),
            at=row.received_at,
            timezone=timezone,
            consent_non_police=row.consent_non_police,
            determinant=row.mpds_determinant,
            capacity=domain.carried_capacity(active, row.received_at),
        )
        safety = SafetyScreen.model_validate_json(row.safety)
        again = domain.triage(row.incident_type, safety, draft, facts)
        judged.append(
            Judged(row.id, str(active.route), str(again.route), active.rules_version, draft.version)
        )
    return judged
