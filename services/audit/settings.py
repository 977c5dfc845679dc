"""Audit's own settings (env prefix AUDIT_): the signing key and when to sign checkpoints."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    """How audit signs its tree heads."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_", env_file=None, extra="ignore")

    signing_key: SecretStr | None = Field(
        default=None,
        description="base64 of a 32-byte Ed25519 seed; unset: a dev key generated and kept in the database",
    )
    log_origin: str = Field(default="careroute.local/audit", description="checkpoint origin and key name")
    checkpoint_every: int = Field(default=1000, ge=1, description="sign a checkpoint after this many events")
    checkpoint_interval_s: float = Field(default=60.0, gt=0, description="or after this many seconds")
    gather_ms: int = Field(
        default=500,
        ge=0,
        le=5000,
        description="how long a fetch of the trail's consumer may wait to fill (0: at the first record)",
    )
