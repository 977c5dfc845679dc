"""Intake's own settings (env prefix INTAKE_), built once in service.build."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    """Limits, rate limits, client clock tolerance, and delivery of callbacks and supervisor alerts."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", env_file=None, extra="ignore")

    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=2)
    max_json_items: int = Field(default=1000, ge=1)
    # Per PSAP, in the `limits` package's notation; a 429 carries Retry-After.
    rate_limit: str = "600/minute"
    callback_max_attempts: int = Field(default=8, ge=1)
    callback_retry_base_s: float = Field(default=1.0, gt=0)
    callback_retry_max_s: float = Field(default=300.0, gt=0)
    callback_timeout_s: float = Field(default=5.0, gt=0)
    callback_poll_s: float = Field(default=0.5, gt=0)
    # Alerts to a PSAP's supervisor channel about a callback that failed for good: bounded as well,
    # with the callbacks' backoff, so a supervisor channel that is down never queues without end.
    supervisor_max_attempts: int = Field(default=5, ge=1)
    # How far ahead of intake's clock a client's timestamp may be before it is refused (422).
    clock_tolerance_s: float = Field(default=300.0, ge=0)
    # The longest a kept credential or triage setting is used without reading it again, when no
    # NOTIFY came to say it changed (the bound on one lost with a connection that died unnoticed).
    kept_for_s: float = Field(default=5.0, gt=0, le=60)
