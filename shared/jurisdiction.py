"""The jurisdiction file: one YAML file that describes a deployment."""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

Channel = Literal["kafka", "webhook", "sse"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
# The skills a community team may hold; rules may only name these.
Skill = Literal[
    "peer_support_specialist", "licensed_clinician", "social_worker", "emt", "medic", "youth", "substance_use"
]


class JurisdictionError(ValueError):
    """The file cannot be used; the message says where and why."""


def _resolve_secret(value: object) -> object:
    # `env:NAME` keeps secrets out of the file; a missing variable is an error, never an empty secret.
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    return value


Secret = Annotated[str, BeforeValidator(_resolve_secret), Field(min_length=16)]


class Model(BaseModel):
    """Strict base: an unknown key is a typo, and a typo in a deployment file is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(Model):
    """A WGS84 position."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Shift(Model):
    """Hours a team works on some weekdays, in the jurisdiction's time zone (end may pass midnight)."""

    days: list[Weekday]
    start: time
    end: time


class Psap(Model):
    """A 911 center that forwards calls."""

    id: str = Field(pattern=_ID)
    name: str
    token: Secret
    signing_secret: Secret | None = None
    callback_url: str | None = None
    local_codes: dict[str, str] = Field(default_factory=dict)
    # Secrets still accepted on PSAP requests while the PSAP rotates to `signing_secret`,
    # and this PSAP's own request rate limit (the `limits` package's notation, e.g. "600/minute").
    previous_signing_secrets: list[Secret] = Field(default_factory=list)
    rate_limit: str | None = None

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                limits.parse(v)
            except ValueError as exc:
                raise ValueError(f"rate_limit {v!r} is not like '600/minute'") from exc
        return v


class Webhook(Model):
    """An agency's signed webhook endpoint."""

    url: str
    secret: Secret
    # Webhooks never go to loopback or private addresses (SSRF) unless the deployment says so.
    allow_private: bool = False


class AgencyKafka(Model):
    """An agency's own broker principal (SCRAM), which may read only the agency's topic."""

    # Defaults to agency-<id>.
    username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,128}$")
    password: Secret


class Agency(Model):
    """A community crisis agency and how it is reached."""

    id: str = Field(pattern=_ID)
    name: str
    token: Secret
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["kafka"]))
    partitions: int = Field(default=1, ge=1, le=64)
    contracted_share: float = Field(default=1.0, gt=0, le=1)
    webhook: Webhook | None = None
    kafka: AgencyKafka | None = None

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> Agency:
        if "webhook" in self.channels and self.webhook is None:
            raise ValueError(f"agency {self.id} lists the webhook channel but has no webhook")
        return self


class Team(Model):
    """A team that can be sent to a call."""

    id: str = Field(pattern=_ID)
    agency: str
    name: str
    skills: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    home: Point
    radius_km: float = Field(default=15.0, gt=0)
    capacity: int = Field(default=1, ge=0)
    shifts: list[Shift] = Field(default_factory=list)
    # A coverage polygon (WGS84, at least three corners); when given it replaces the radius.
    area: list[Point] | None = Field(default=None, min_length=3)


class Oversight(Model):
    """An oversight body (or an operator with the admin role) that reads the trail."""

    id: str = Field(pattern=_ID)
    name: str
    token: Secret
    role: Literal["oversight", "admin"] = "oversight"


SafetyQuestion = Literal["weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress"]

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

    @field_validator("eligible_types")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [t.upper() for t in v]


class Triage(TriageRules):
    """Declarative triage rules, with an optional shadow rule set recorded beside them."""

    shadow: TriageRules | None = None


class Place(Model):
    """The jurisdiction itself."""

    id: str = Field(pattern=_ID)
    name: str
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class SkillNeed(Model):
    """Skills a call needs (every one of `required`) and would rather have (each of `preferred`)."""

    required: list[Skill] = Field(default_factory=list)
    preferred: list[Skill] = Field(default_factory=list)


class ScreenSkillRule(SkillNeed):
    """Skills needed when one safety screen question has one answer."""

    question: SafetyQuestion
    answer: Literal["yes", "no", "unknown"]


class Matching(Model):
    """Matching rules: skills by incident type and screen answer, language policy, score weights.

    Weights are in minutes of travel: a preferred skill is worth `preferred_skill_min` minutes of
    ETA, and an agency over its contracted share of current load pays up to `fairness_min`.
    """

    version: str
    incident_types: dict[str, SkillNeed] = Field(default_factory=dict)
    screen: list[ScreenSkillRule] = Field(default_factory=list)
    language: Literal["required", "preferred"] = "required"
    preferred_skill_min: float = Field(default=3.0, ge=0)
    language_min: float = Field(default=5.0, ge=0)
    fairness_min: float = Field(default=10.0, ge=0)

    @field_validator("incident_types")
    @classmethod
    def _upper_types(cls, v: dict[str, SkillNeed]) -> dict[str, SkillNeed]:
        return {k.upper(): need for k, need in v.items()}


class Jurisdiction(Model):
    """A whole deployment."""

    jurisdiction: Place
    triage: Triage
    psaps: list[Psap]
    agencies: list[Agency]
    teams: list[Team]
    oversight: list[Oversight] = Field(default_factory=list)
    matching: Matching | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Jurisdiction:
        agencies = {a.id for a in self.agencies}
        for team in self.teams:
            if team.agency not in agencies:
                raise ValueError(f"team {team.id} names unknown agency {team.agency}")
        for kind, ids in (
            ("psap", [p.id for p in self.psaps]),
            ("agency", [a.id for a in self.agencies]),
            ("team", [t.id for t in self.teams]),
            ("oversight", [o.id for o in self.oversight]),
        ):
            dupes = {i for i in ids if ids.count(i) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {sorted(dupes)}")
        tokens = [p.token for p in self.psaps] + [a.token for a in self.agencies]
        tokens += [o.token for o in self.oversight]
        if len(tokens) != len(set(tokens)):
            raise ValueError("every token must be unique: a token names one tenant and role")
        return self


def parse(text: str, source: str = "<string>") -> Jurisdiction:
    """Validate a jurisdiction document; JurisdictionError says what is wrong and where."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JurisdictionError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise JurisdictionError(f"{source}: expected a mapping at the top level")
    try:
        return Jurisdiction.model_validate(raw)
    except ValueError as exc:
        msg = re.sub(r"\n\s+For further information.*", "", str(exc))
        raise JurisdictionError(f"{source}: {msg}") from exc


def load_file(path: Path) -> Jurisdiction:
    """Read and validate a jurisdiction file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise JurisdictionError(f"cannot read {path}: {exc.strerror}") from exc
    return parse(text, str(path))
