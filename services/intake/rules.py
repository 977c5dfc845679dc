"""Intake's section of the jurisdiction file: the triage rules, their coverage and caution words."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

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


# Where triage may send a call.
RouteName = Literal["community", "police", "ems", "fire", "review"]
Elsewhere = Literal["police", "ems", "fire", "review"]
# An incident type as the rules name it (upper case), or a prefix of types ending in `*`.
_TYPE_RULE = r"^[A-Z0-9][A-Z0-9._-]{0,63}\*?$"


def _type_rule(key: str) -> str:
    key = key.strip().upper()
    if not re.fullmatch(_TYPE_RULE, key):
        raise ValueError(f"{key!r} is not an incident type or a type prefix such as 'F*'")
    return key


class TriageRules(Model):
    """One declarative rule set (the active one, or the shadow one evaluated beside it)."""

    version: str
    eligible_types: list[str]
    # Incident types, and type prefixes ending in `*`, and the route each takes (`eligible_types`
    # are community); an exact type beats a prefix and a longer prefix a shorter one. A type that
    # no rule names takes `fallback`.
    routes: dict[str, RouteName] = Field(default_factory=dict)
    fallback: Elsewhere = "police"
    exclude: dict[SafetyQuestion, Elsewhere]
    unknown_means: Literal["eligible", "review"] = "review"
    # All optional: per-question meaning of "unknown", caution words, coverage, consent.
    unknown: dict[SafetyQuestion, Literal["eligible", "review", "police", "ems", "fire"]] = Field(
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

    @field_validator("routes")
    @classmethod
    def _route_keys(cls, v: dict[str, RouteName]) -> dict[str, RouteName]:
        routes: dict[str, RouteName] = {}
        for key, route in v.items():
            rule = _type_rule(key)
            if rule in routes:
                raise ValueError(f"incident type {rule} is routed twice")
            routes[rule] = route
        return routes

    @model_validator(mode="after")
    def _one_route_per_type(self) -> TriageRules:
        for t in self.eligible_types:
            if self.routes.get(t, "community") != "community":
                raise ValueError(f"incident type {t} is eligible and also routed to {self.routes[t]}")
        return self


class Triage(TriageRules):
    """Declarative triage rules, with an optional shadow rule set recorded beside them."""

    shadow: TriageRules | None = None


def triage_rules(j: Jurisdiction) -> Triage:
    """The jurisdiction's triage section as intake's rules."""
    return Triage.model_validate(j.triage)
