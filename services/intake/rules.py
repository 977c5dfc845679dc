"""Intake's section of the jurisdiction file: the triage rules, their coverage and caution words."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.events import SafetyQuestion
from shared.jurisdiction import Jurisdiction, Model, Point, Shift

# EIDO caution words (cautionComponent registry or internal text, upper case) and the safety question
# each answers "yes".
DEFAULT_CAUTION_FLAGS: dict[str, SafetyQuestion] = {
    "WEAPON": "weapon",
    "FIREARM": "weapon",
    "GUN": "weapon",
    "KNIFE": "weapon",
    "ARMED": "weapon",
    "VIOLEN": "violence",
    "ASSAULT": "violence",
    "HOSTILE": "violence",
    "THREAT": "violence",
    "MEDICAL": "medical",
    "OVERDOSE": "medical",
    "SUICID": "self_harm_imminent",
}


class Area(Model):
    """A circle a community response covers."""

    center: Point
    radius_km: float = Field(gt=0)


class Coverage(Model):
    """When and where community teams take calls; outside of it, `outside` decides."""

    hours: list[Shift] = Field(default_factory=list)
    areas: list[Area] = Field(default_factory=list)
    outside: Literal["police", "review"] = "review"


class TriageRules(Model):
    """One declarative rule set (the active one, or the shadow one evaluated beside it)."""

    version: str
    eligible_types: list[str]
    exclude: dict[SafetyQuestion, Literal["police", "ems", "review"]]
    unknown_means: Literal["eligible", "review"] = "review"
    # All optional: per-question meaning of "unknown", caution words, coverage, consent.
    unknown: dict[SafetyQuestion, Literal["eligible", "review", "police", "ems"]] = Field(
        default_factory=dict
    )
    caution_flags: dict[str, SafetyQuestion] = Field(default_factory=lambda: dict(DEFAULT_CAUTION_FLAGS))
    coverage: Coverage | None = None
    declined_consent_means: Literal["police", "review"] = "review"
    # The incident types oversight counts as behavioural health (empty: the eligible types).
    behavioural_health_types: list[str] = Field(default_factory=list)
    # How long a call sent to review may wait for a person's decision before it is reported late.
    review_deadline_min: float = Field(default=30, gt=0)

    @field_validator("eligible_types", "behavioural_health_types")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [t.upper() for t in v]


class Triage(TriageRules):
    """Declarative triage rules, with an optional shadow rule set recorded beside them."""

    shadow: TriageRules | None = None


def triage_rules(j: Jurisdiction) -> Triage:
    """The jurisdiction's triage section as intake's rules."""
    return Triage.model_validate(j.triage)
