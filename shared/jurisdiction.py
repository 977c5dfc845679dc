"""The jurisdiction file: one YAML file that describes a deployment."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from shared.events import SafetyQuestion
from shared.geometry import doubled_area, in_polygon

Channel = Literal["kafka", "webhook", "sse"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
# PSAPs and agencies may be named as EIDO names agencies, by domain name (`psap.metro.example.gov`).
_DOMAIN_ID = r"^[a-z0-9][a-z0-9-]{0,62}(\.[a-z0-9][a-z0-9-]{0,62})*$"
DomainId = Annotated[str, Field(pattern=_DOMAIN_ID, max_length=128)]


J = TypeVar("J", bound="Jurisdiction")


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

    def covers(self, local: datetime) -> bool:
        """Whether the shift works at `local`, a wall-clock moment in the jurisdiction's time zone
        (the caller converts to it): its weekday and time of day decide, nothing else."""
        today, yesterday = WEEKDAYS[local.weekday()], WEEKDAYS[(local.weekday() - 1) % 7]
        at = local.time()
        if self.start <= self.end:
            return today in self.days and self.start <= at < self.end
        # An overnight shift: the evening part belongs to its start day, the early hours to the next.
        return (today in self.days and at >= self.start) or (yesterday in self.days and at < self.end)


def works_at(shifts: Sequence[Shift], local: datetime) -> bool:
    """Whether a team with these shifts works at `local` (wall-clock, the jurisdiction's zone); a
    team with no shifts always does."""
    return not shifts or any(s.covers(local) for s in shifts)


# The names reports give calls in no zone; a zone may not take them.
UNZONED = "unzoned"
UNLOCATED = "unlocated"
_ZONE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Zone(Model):
    """A named area the oversight reports count calls by: a polygon ring of [lon, lat] corners, in
    GeoJSON's order, closed or not (the last corner joins the first either way)."""

    name: str = Field(pattern=_ZONE_NAME)
    polygon: list[tuple[float, float]] = Field(max_length=10_000)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in (UNZONED, UNLOCATED):
            raise ValueError(f"zone name {v!r} is reserved for calls in no zone")
        return v

    @field_validator("polygon")
    @classmethod
    def _ring(cls, ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for lon, lat in ring:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"corner [{lon}, {lat}] is not [lon, lat] in degrees")
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring = ring[:-1]  # kept open: the ring closes itself
        if len(set(ring)) < 3:
            raise ValueError("a zone's polygon needs at least three distinct corners")
        if doubled_area([(lat, lon) for lon, lat in ring]) == 0:
            raise ValueError("a zone's polygon encloses no area (its corners are on one line)")
        return ring

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a position lies inside the zone."""
        return in_polygon(lat, lon, [(la, lo) for lo, la in self.polygon])


class Psap(Model):
    """A 911 center that forwards calls."""

    id: DomainId
    name: str
    token: Secret
    signing_secret: Secret | None = None
    callback_url: str | None = None
    # Where an alert goes when a status callback fails for good (signed as the callbacks are).
    supervisor_url: str | None = None
    local_codes: dict[str, str] = Field(default_factory=dict)
    # Secrets still accepted on PSAP requests while the PSAP rotates to `signing_secret`,
    # and this PSAP's own request rate limit (the `limits` package's notation, e.g. "600/minute").
    previous_signing_secrets: list[Secret] = Field(default_factory=list)
    rate_limit: str | None = None
    # The agency identifiers its CAD writes as an EIDO's sender (updatedByAgencyReference, the PSAP
    # in agencyComponent) besides its id; a document naming another sender is refused.
    eido_agencies: list[DomainId] = Field(default_factory=list)

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

    id: DomainId
    name: str
    token: Secret
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["kafka"]))
    partitions: int = Field(default=1, ge=1, le=64)
    contracted_share: float = Field(default=1.0, gt=0, le=1)
    webhook: Webhook | None = None
    kafka: AgencyKafka | None = None
    # Seconds without a sign of life (a stream open, a webhook answering 2xx, a consumer in one of
    # its groups, a request of its own) after which its teams are skipped; None: never.
    liveness_timeout_s: int | None = Field(default=None, ge=10, le=86_400)

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


def _yaml_answer(value: object) -> object:
    # YAML reads an unquoted `no` as false: the file means the answer "no".
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


# The answer a question must have: "unknown" never qualifies a call for the line.
Required = Annotated[Literal["yes", "no"], BeforeValidator(_yaml_answer)]


class CrisisScreen(Model):
    """Which answers mean: the caller consents, is at no imminent risk, and needs no one to go."""

    # The caller's consent to a response without police (`consent_non_police` natively,
    # `consentToNonPoliceResponse` in EIDO) must be given: a 988 transfer is never made without it.
    consent: Literal[True] = True
    # Every question named must have exactly this answer (after EIDO cautions raised theirs).
    answers: dict[SafetyQuestion, Required] = Field(min_length=1)
    # Incident types (EIDO common registry, upper case) that may go to the line; empty: any type
    # triage would send to a community team.
    incident_types: list[str] = Field(default_factory=list)

    @field_validator("answers")
    @classmethod
    def _no_imminent_risk(cls, v: dict[SafetyQuestion, str]) -> dict[SafetyQuestion, str]:
        for question in ("self_harm_imminent", "in_person_needed"):
            if v.get(question) != "no":
                raise ValueError(
                    f"answers must require {question}: no (a call at imminent risk, or one someone"
                    " must go to, is never transferred to a phone line)"
                )
        return v

    @field_validator("incident_types")
    @classmethod
    def _upper_types(cls, v: list[str]) -> list[str]:
        return [t.strip().upper() for t in v]


class CrisisLine(Model):
    """The jurisdiction's 988 crisis center: an agency of the file (its channels and token), which
    accepts or declines a transferred call like any agency and then owes the caller a call back."""

    agency: DomainId
    when: CrisisScreen
    # Hours after the center accepts a call by which its follow-up call must be closed.
    follow_up_within: float = Field(default=24, gt=0, le=24 * 14)


class Jurisdiction(Model):
    """A whole deployment: what every service shares, and the sections the services own.

    `triage` is intake's section, `matching` matching's and `watch` notify's: each service
    validates its own, and `services.jurisdiction.Deployment` composes the whole file from them,
    so shared code never needs a service's rules.
    """

    jurisdiction: Place
    triage: Any
    psaps: list[Psap]
    agencies: list[Agency]
    teams: list[Team]
    oversight: list[Oversight] = Field(default_factory=list)
    matching: Any = None
    # Notify's section: the timers that watch an accepted assignment.
    watch: Any = None
    # Named areas the oversight reports count calls by (the first listed wins where two overlap).
    zones: list[Zone] = Field(default_factory=list)
    # The 988 center calls may be transferred to, if any.
    crisis_line: CrisisLine | None = None

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
            ("zone", [z.name for z in self.zones]),
        ):
            dupes = {i for i in ids if ids.count(i) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {sorted(dupes)}")
        # An agency's topic and consumer groups are named `agency.<id>.`: one id that continues
        # another at a dot would let the one agency use the other's groups.
        for a in self.agencies:
            for b in self.agencies:
                if b.id.startswith(f"{a.id}."):
                    raise ValueError(
                        f"agency id {b.id} continues agency id {a.id}: their topics and groups would overlap"
                    )
        tokens = [p.token for p in self.psaps] + [a.token for a in self.agencies]
        tokens += [o.token for o in self.oversight]
        if len(tokens) != len(set(tokens)):
            raise ValueError("every token must be unique: a token names one tenant and role")
        return self

    @model_validator(mode="after")
    def _crisis_line_agency(self) -> Jurisdiction:
        line = self.crisis_line
        if line is None:
            return self
        if line.agency not in {a.id for a in self.agencies}:
            raise ValueError(f"crisis_line names unknown agency {line.agency}")
        staffed = sorted(t.id for t in self.teams if t.agency == line.agency)
        if staffed:
            raise ValueError(
                f"crisis_line agency {line.agency} has teams {staffed}: the 988 center takes calls by"
                " phone, its agency sends no teams"
            )
        return self


# Keys whose values are secrets wherever they appear in the file.
_SECRET_KEYS = frozenset({"token", "signing_secret", "previous_signing_secrets", "secret", "password"})


def _shown(error: ErrorDetails) -> bool:
    # A rejected scalar is worth showing ("unknown skill 'psychic'"), but never one under a secret's
    # key, an unknown key's value (a misspelt `tokn:` is still a token), nor a mapping or a list,
    # which may hold secrets: pydantic would print a whole PSAP, or the whole file, as the input.
    keys = [part for part in error["loc"] if isinstance(part, str)]
    value = error["input"]
    return (
        isinstance(value, str | int | float | bool | None)
        and error["type"] != "extra_forbidden"
        and not _SECRET_KEYS.intersection(keys)
    )


def _describe(exc: ValidationError) -> str:
    """Pydantic's own report of the errors, each input that could be or hold a secret left out."""
    count = exc.error_count()
    lines = [f"{count} validation error{'' if count == 1 else 's'} for {exc.title}"]
    for error in exc.errors(include_url=False):
        if error["loc"]:
            lines.append(".".join(str(part) for part in error["loc"]))
        value = error["input"]
        shown = f"input_value={_short_repr(value)}, " if _shown(error) else ""
        lines.append(f"  {error['msg']} [type={error['type']}, {shown}input_type={type(value).__name__}]")
    return "\n".join(lines)


def _short_repr(value: object) -> str:
    # As pydantic shortens a long input.
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML's own message quotes the offending line, which may be a token's: say where, not what.
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return " ".join(p for p in (exc.context, exc.problem) if p) + where
    return type(exc).__name__


def parse_as(model: type[J], text: str, source: str = "<string>") -> J:
    """Validate a jurisdiction document as `model`; JurisdictionError says what is wrong and where."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JurisdictionError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(raw, dict):
        raise JurisdictionError(f"{source}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise JurisdictionError(f"{source}: {_describe(exc)}") from exc


def load_file_as(model: type[J], path: Path) -> J:
    """Read and validate a jurisdiction file as `model`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise JurisdictionError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_as(model, text, str(path))
