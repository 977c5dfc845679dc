"""Matching's own settings (env prefix MATCHING_), read by matching alone."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MatchingSettings(BaseSettings):
    """The offer deadline, the travel speed, how many teams a call is offered to, and how often the
    roster is read again."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", env_file=None, extra="ignore")

    offer_timeout_s: int = Field(
        default=120, description="acknowledgement deadline matching writes into an offer (notify decides it)"
    )
    offer_floor_s: float = Field(
        default=15.0,
        ge=1,
        description="shortest offer deadline: with less left of the call's time to commit it is handed back",
    )
    speed_kmh: float = Field(default=40.0, description="speed used to turn distance into an ETA")
    max_attempts: int = Field(default=3, ge=1, description="attempts per call before it is handed back")
    roster_refresh_s: float = Field(
        default=1.0,
        ge=0,
        description="how often the whole roster's status is read again (others' changes; 0 = every call)",
    )
    capacity_every_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="the capacity snapshot intake answers 202s by is published at least this often",
    )
    capacity_min_interval_s: float = Field(
        default=5.0,
        ge=0.1,
        description="and at most this often, however often teams change",
    )
