"""Audit's composition root."""

from __future__ import annotations

from pathlib import Path

from services import topology
from services.audit import api, dashboard, handlers
from services.audit.checkpoints import Checkpointer
from services.audit.repository import SCHEMA
from services.audit.settings import AuditSettings
from shared.http import make_app
from shared.runtime import Infra, ServiceParts


def build(infra: Infra, audit_settings: AuditSettings | None = None) -> ServiceParts:
    """Audit: every topic into the hash-chained trail, signed checkpoints, and the oversight API."""
    settings = audit_settings or AuditSettings()
    # The trail is on no call's path: reading it in fuller fetches spares a broker round trip, a
    # transaction and a commit per event at low rates, for a trail at most gather_ms later.
    consumer = infra.consumer(
        SCHEMA,
        "audit",
        topology.handlers("audit", handlers),
        batch_handler=handlers.on_events,
        gather_ms=settings.gather_ms,
    )
    checkpointer = Checkpointer(infra.pool, settings)
    app = make_app(
        "audit",
        {"database": infra.db_ready, "broker": infra.broker_ready, "consumer": consumer.is_running},
        max_body_bytes=infra.settings.max_body_bytes,
        description="The append-only, hash-chained trail, its signed checkpoints and the oversight API.",
    )
    app.state.pool = infra.pool
    app.state.auth = infra.authenticator(SCHEMA)
    app.state.checkpointer = checkpointer
    app.include_router(api.router)
    app.include_router(api.reports_router)
    app.include_router(dashboard.router)
    return ServiceParts(
        name="audit",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        app=app,
        consumer=consumer,
        background=[checkpointer.run],
        on_start=checkpointer.start,
    )
