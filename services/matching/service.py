"""Matching's composition root."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from services import topology
from services.matching import api, handlers
from services.matching.capacity import CapacityPublisher, CapacityTiming
from services.matching.matcher import Matcher, MatchingConfig
from services.matching.repository import SCHEMA
from services.matching.settings import MatchingSettings
from shared.http import make_app
from shared.runtime import Infra, ServiceParts


def build(infra: Infra, matching: MatchingSettings | None = None) -> ServiceParts:
    """Matching: the roster, the choice of a team, offers and hand-back (notify decides deadlines)."""
    s = infra.settings
    own = matching or MatchingSettings()
    matcher = Matcher(
        MatchingConfig(
            offer_timeout_s=own.offer_timeout_s,
            offer_floor_s=own.offer_floor_s,
            speed_kmh=own.speed_kmh,
            max_attempts=own.max_attempts,
            roster_refresh_s=own.roster_refresh_s,
        )
    )
    capacity = CapacityPublisher(
        infra.pool,
        matcher.roster.changed,
        CapacityTiming(every_s=own.capacity_every_s, min_interval_s=own.capacity_min_interval_s),
    )
    consumer = infra.consumer(SCHEMA, "matching", topology.handlers("matching", handlers, matcher))
    app = make_app(
        "matching",
        {"database": infra.db_ready, "broker": infra.broker_ready, "consumer": consumer.is_running},
        max_body_bytes=s.max_body_bytes,
        description="The roster, team choice, offers and hand-back.",
    )
    app.state.pool = infra.pool
    app.state.auth = infra.authenticator(SCHEMA)
    app.state.matcher = matcher
    app.include_router(api.router)
    return ServiceParts(
        name="matching",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        app=app,
        consumer=consumer,
        background=[capacity.run],
        on_dead_letter=partial(handlers.on_dead_letter, matcher),
    )
