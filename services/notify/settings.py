"""Notify's own settings (env prefix NOTIFY_): deadlines, re-paging, webhooks and the SSE stream."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    """How often notify re-pages, how hard it tries a webhook, and how the SSE stream behaves."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", env_file=None, extra="ignore")

    repage_every_s: float = Field(default=30.0, gt=0, description="re-send an unanswered offer this often")
    repage_max: int = Field(
        default=5,
        ge=0,
        description="re-pages of one offer at most (bounds the work, records and audit events per offer)",
    )
    expiry_interval_s: float = Field(
        default=1.0, gt=0, description="how often offers past their deadline are expired"
    )
    watch_interval_s: float = Field(
        default=1.0, gt=0, description="how often the timers watching accepted assignments are fired"
    )
    repage_check_s: float = Field(default=1.0, gt=0, description="how often to look for offers to re-page")
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="one webhook request's time limit")
    webhook_retry_for_s: float = Field(default=120.0, gt=0, description="give up on a message after this")
    webhook_backoff_base_s: float = Field(default=0.5, gt=0)
    webhook_backoff_max_s: float = Field(default=30.0, gt=0)
    webhook_poll_s: float = Field(default=0.5, gt=0, description="how often the sender looks for work")
    sse_ping_s: float = Field(default=15.0, gt=0, description="keep-alive comment on an idle stream")
    sse_wait_s: float = Field(default=5.0, gt=0, description="longest wait before re-reading the feed")
    follow_up_check_s: float = Field(
        default=30.0, gt=0, description="how often open 988 follow-ups past their due time are reported"
    )
    sse_replay_s: float = Field(
        default=3600.0, ge=0, description="a stream opened without Last-Event-ID replays this much"
    )
    liveness_check_s: float = Field(
        default=5.0,
        gt=0,
        description="how often notify reads agencies' signs of life and marks the silent unreachable",
    )
