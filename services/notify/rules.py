"""Notify's section of the jurisdiction file: the timers that watch an accepted assignment."""

from __future__ import annotations

from pydantic import Field

from shared.jurisdiction import Jurisdiction, Model


class Watch(Model):
    """How long an agency has for each step after it accepts, in minutes.

    `en_route_within_min` from the accept to en route; the team's ETA (its own with en route, else
    matching's travel estimate, else `eta_unknown_min`) plus `on_scene_margin_min` from en route to
    on scene; a safety check-in every `check_in_every_min` while on scene. A timer that runs out
    re-pages the agency, and `psap_after_min` later, still unanswered, its PSAP is told.
    """

    en_route_within_min: float = Field(default=5.0, gt=0, le=1440)
    on_scene_margin_min: float = Field(default=10.0, ge=0, le=1440)
    eta_unknown_min: float = Field(default=30.0, gt=0, le=1440)
    check_in_every_min: float = Field(default=20.0, gt=0, le=1440)
    psap_after_min: float = Field(default=5.0, gt=0, le=1440)


DEFAULT_WATCH = Watch()


def watch_rules(j: Jurisdiction) -> Watch:
    """The jurisdiction's watch section (the defaults when the file has none)."""
    return DEFAULT_WATCH if j.watch is None else Watch.model_validate(j.watch)
