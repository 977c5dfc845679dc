"""Audit's composition root."""

from __future__ import annotations

from pathlib import Path

from services.audit import api, handlers
from services.audit.repository import SCHEMA
from shared.auth import Authenticator
from shared.http import make_app
from shared.runtime import Infra, ServiceParts
from shared.topics import REGISTRY


def build(infra: Infra) -> ServiceParts:
    """Audit: every topic into the hash-chained trail, and the oversight API."""
    consumer = infra.consumer(SCHEMA, "audit", {t: handlers.on_any_event for t in REGISTRY})
    app = make_app(
        "audit",
        {"database": infra.db_ready, "broker": infra.broker_ready, "consumer": consumer.is_running},
        max_body_bytes=infra.settings.max_body_bytes,
        description="The append-only, hash-chained trail and the oversight API.",
    )
    app.include_router(api.router(infra.pool, Authenticator(infra.pool, SCHEMA)))
    return ServiceParts(
        name="audit",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        app=app,
        consumer=consumer,
    )
