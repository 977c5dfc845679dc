"""Matching's section of the jurisdiction file: skill rules, the language policy, score weights, the
time to commit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.events import SafetyQuestion
from shared.jurisdiction import Jurisdiction, Model

# The skills a community team may hold; rules may only name these.
Skill = Literal[
    "peer_support_specialist", "licensed_clinician", "social_worker", "emt", "medic", "youth", "substance_use"
]


class SkillNeed(Model):
    """Skills a call needs (every one of `required`) and would rather have (each of `preferred`)."""

    required: list[Skill] = Field(default_factory=list)
    preferred: list[Skill] = Field(default_factory=list)


class ScreenSkillRule(SkillNeed):
    """Skills needed when one safety screen question has one answer."""

    question: SafetyQuestion
    answer: Literal["yes", "no", "unknown"]


class ParallelOffers(Model):
    """Offer a call to the best `teams` free teams at once: the first to accept gets it, the others
    are withdrawn. With `below_s`, only once less than that much of the time to commit is left
    (a short budget); without it, from the first offer (the region asks for it)."""

    teams: int = Field(ge=2, le=10)
    below_s: float | None = Field(default=None, gt=0)


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
    # Seconds from the call's 202 within which a team must have accepted it; past them the call
    # goes back to its PSAP (`no_acceptance_in_time`) whatever attempts remain.
    commit_within: float = Field(default=120.0, gt=0)
    # None: one team at a time.
    parallel_offers: ParallelOffers | None = None

    @field_validator("incident_types")
    @classmethod
    def _upper_types(cls, v: dict[str, SkillNeed]) -> dict[str, SkillNeed]:
        return {k.upper(): need for k, need in v.items()}


def matching_rules(j: Jurisdiction) -> Matching | None:
    """The jurisdiction's matching section as matching's rules (None when the file has none)."""
    return None if j.matching is None else Matching.model_validate(j.matching)
