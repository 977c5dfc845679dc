"""Matching's own settings (env prefix MATCHING_); the offer deadline and speed live in shared Settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MatchingSettings(BaseSettings):
    """How many teams a call is offered to, and how often the roster is read again."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", env_file=None, extra="ignore")

    max_attempts: int = Field(default=3, ge=1, description="offers per call before it is handed back")
    roster_refresh_s: float = Field(
        default=1.0,
        ge=0,
        description="how often the whole roster's status is read again (others' changes; 0 = every call)",
    )
