"""Intake's section of the jurisdiction file: the triage rules, their coverage and caution words."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, PrivateAttr, ValidationError, create_model, field_validator, model_validator

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


# An MPDS (ProQA) determinant as a CAD sends it (`25-D-1`, `25D01`, `25-B-3S`: protocol, level,
# number, suffix), or as a rule names it, where a prefix is enough: `25` (a protocol), `25-B`.
_DETERMINANT = re.compile(r"^(\d{1,2})(?:-?([A-EOΩ])(?:-?(\d{1,2})([A-Z])?)?)?$")


def determinant_parts(code: str) -> tuple[str, ...] | None:
    """A determinant or a prefix of one as its parts, numbers without leading zeros; None if it is
    neither (`25D01` and `25-D-1` are the same determinant)."""
    found = _DETERMINANT.fullmatch(code.strip().upper())
    if found is None:
        return None
    protocol, level, number, suffix = found.groups()
    parts = [str(int(protocol))]
    if level:
        parts.append(level)
    if number:
        parts.append(str(int(number)))
    if suffix:
        parts.append(suffix)
    return tuple(parts)


def determinant_text(parts: tuple[str, ...]) -> str:
    """The one spelling of a determinant's parts: `25-B-3`, `25-B-3S`, `25-B`, `25`."""
    return "-".join(parts[:3]) + "".join(parts[3:])


def _type_rule(key: str) -> str:
    key = key.strip().upper()
    if not re.fullmatch(_TYPE_RULE, key):
        raise ValueError(f"{key!r} is not an incident type or a type prefix such as 'F*'")
    return key


class Geocoding(Model):
    """How sure a geocoded civic address must be (0-1) for triage to take its position."""

    min_score: float = Field(default=0.8, ge=0, le=1)


class TriageRules(Model):
    """One declarative rule set (the active one, or the shadow one evaluated beside it)."""

    version: str
    eligible_types: list[str]
    # Incident types, and type prefixes ending in `*`, and the route each takes (`eligible_types`
    # are community); an exact type beats a prefix and a longer prefix a shorter one. A type that
    # no rule names takes `fallback`.
    routes: dict[str, RouteName] = Field(default_factory=dict)
    fallback: Elsewhere = "police"
    # MPDS determinants (or prefixes: a protocol, a protocol and level) and their route. When the
    # call's determinant matches one, the most specific decides in place of the type's rules.
    determinants: dict[str, RouteName] = Field(default_factory=dict)
    exclude: dict[SafetyQuestion, Elsewhere]
    unknown_means: Literal["eligible", "review"] = "review"
    # All optional: per-question meaning of "unknown", caution words, coverage, consent.
    unknown: dict[SafetyQuestion, Literal["eligible", "review", "police", "ems", "fire"]] = Field(
        default_factory=dict
    )
    caution_flags: dict[str, SafetyQuestion] = Field(default_factory=lambda: dict(DEFAULT_CAUTION_FLAGS))
    coverage: Coverage | None = None
    declined_consent_means: Literal["police", "review"] = "review"
    # The incident types oversight counts as behavioural health (empty: those routed to community).
    behavioural_health_types: list[str] = Field(default_factory=list)
    # How long a call sent to review may wait for a person's decision before it is reported late.
    review_deadline_min: float = Field(default=30, gt=0)
    geocoding: Geocoding = Field(default_factory=Geocoding)
    # Where a call goes that community teams would take but none covering it can take now (by
    # matching's last capacity snapshot); `community` offers it regardless, to wait or be handed back.
    no_capacity: RouteName = "review"

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

    @field_validator("determinants")
    @classmethod
    def _determinant_keys(cls, v: dict[str, RouteName]) -> dict[str, RouteName]:
        rules: dict[str, RouteName] = {}
        for key, route in v.items():
            parts = determinant_parts(str(key))
            if parts is None:
                raise ValueError(f"{key!r} is not an MPDS determinant or a prefix such as '25' or '25-B'")
            rule = determinant_text(parts)
            if rule in rules:
                raise ValueError(f"determinant {rule} is routed twice")
            rules[rule] = route
        return rules

    @model_validator(mode="after")
    def _one_route_per_type(self) -> TriageRules:
        for t in self.eligible_types:
            if self.routes.get(t, "community") != "community":
                raise ValueError(f"incident type {t} is eligible and also routed to {self.routes[t]}")
        return self


class PsapRuleSet(Model):
    """A PSAP's own rule set: its `version`, and any field of a rule set, which replaces the
    jurisdiction's (what it does not give it inherits); its own draft beside it, if any."""

    version: str
    shadow: TriageRules | None = None


if TYPE_CHECKING:
    PsapRules = PsapRuleSet
else:
    # Every rule field, optional: built from TriageRules so that a new rule is one a PSAP may set too.
    PsapRules = create_model(
        "PsapRules",
        __base__=PsapRuleSet,
        __doc__=PsapRuleSet.__doc__,
        **{
            name: (field.annotation | None, None)
            for name, field in TriageRules.model_fields.items()
            if name != "version"
        },
    )


class Triage(TriageRules):
    """Declarative triage rules, with an optional shadow rule set recorded beside them and the
    rule sets of PSAPs that have their own."""

    shadow: TriageRules | None = None
    per_psap: dict[str, PsapRules] = Field(default_factory=dict)
    # Each PSAP's rule set as in force (its own fields over the jurisdiction's), built once.
    _by_psap: dict[str, TriageRules] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _psap_rule_sets(self) -> Triage:
        inherited = self.model_dump(include=set(TriageRules.model_fields))
        for psap_id, own in self.per_psap.items():
            given = own.model_dump(exclude_none=True, exclude={"shadow"})
            merged = {**inherited, **given}
            if "eligible_types" in given and "routes" not in given:
                # The PSAP's own eligible types are its decision: an inherited route of one gives way.
                eligible = {t.upper() for t in given["eligible_types"]}
                merged["routes"] = {k: r for k, r in inherited["routes"].items() if k not in eligible}
            try:
                self._by_psap[psap_id] = TriageRules.model_validate(merged)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                why = first["msg"].removeprefix("Value error, ")
                where = "".join(f"{part}: " for part in first["loc"][:1])
                raise ValueError(f"the rules of PSAP {psap_id}: {where}{why}") from None
        return self

    def for_psap(self, psap_id: str) -> TriageRules:
        """The rule set in force for one PSAP: its own, else the jurisdiction's."""
        return self._by_psap.get(psap_id, self)

    def shadow_for(self, psap_id: str) -> TriageRules | None:
        """The draft evaluated beside a PSAP's rules: its own shadow, else the jurisdiction's."""
        own = self.per_psap.get(psap_id)
        return own.shadow if own is not None and own.shadow is not None else self.shadow


def triage_rules(j: Jurisdiction) -> Triage:
    """The jurisdiction's triage section as intake's rules."""
    return Triage.model_validate(j.triage)
