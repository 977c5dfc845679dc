"""Intake's composition root: builds its HTTP app and consumer from the runtime's resources."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from services import topology
from services.intake import api, callbacks, handlers
from services.intake.geocode import Geocoder
from services.intake.guard import PsapGuard, forget_old_requests
from services.intake.remembered import Remembered
from services.intake.repository import SCHEMA
from services.intake.settings import IntakeSettings
from shared.http import make_app
from shared.runtime import Infra, ServiceParts


def build(infra: Infra, settings: IntakeSettings | None = None) -> ServiceParts:
    """Intake: calls in over HTTP, triage, and status kept for the PSAP."""
    settings = settings or IntakeSettings()
    consumer = infra.consumer(SCHEMA, "intake", topology.handlers("intake", handlers))

    app = make_app(
        "intake",
        {"database": infra.db_ready, "broker": infra.broker_ready, "consumer": consumer.is_running},
        max_body_bytes=settings.max_body_bytes,
        description="Calls in from 911 centers, triage, and call status.",
        security_schemes=api.SECURITY_SCHEMES,
    )
    app.state.pool = infra.pool
    app.state.settings = settings
    app.state.geocoder = Geocoder()
    remembered = app.state.remembered = Remembered(infra.pool, settings.kept_for_s)
    app.state.guard = PsapGuard(infra.pool, infra.authenticator(SCHEMA), settings, remembered)
    app.include_router(api.router)
    sender = callbacks.CallbackSender(infra.pool, settings)
    alerts = callbacks.AlertSender(infra.pool, settings)
    return ServiceParts(
        name="intake",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        app=app,
        consumer=consumer,
        background=[sender.run, alerts.run, partial(forget_old_requests, infra.pool), remembered.run],
    )
