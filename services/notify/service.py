"""Notify's composition root."""

from __future__ import annotations

from pathlib import Path

from services import topology
from services.notify import api, console, delivery, feed, handlers, repository
from services.notify.jobs import Expirer, FollowUpWatch, Repager, Watcher
from services.notify.liveness import Liveness
from services.notify.repository import SCHEMA
from services.notify.settings import NotifySettings
from services.notify.webhooks import WebhookSender
from shared.http import make_app
from shared.kafka import ensure_topics
from shared.runtime import Infra, ServiceParts
from shared.topics import agency_topic


def build(infra: Infra, settings: NotifySettings | None = None) -> ServiceParts:
    """Notify: delivery to agencies, their answers, status reports and check-ins, offer deadlines and
    the timers that watch accepted assignments."""
    s = infra.settings
    ns = settings or NotifySettings()
    waker = feed.FeedWaker(infra.pool)
    liveness = Liveness(infra.pool, s, ns, waker)
    consumer = infra.consumer(SCHEMA, "notify", topology.handlers("notify", handlers))
    app = make_app(
        "notify",
        {"database": infra.db_ready, "broker": infra.broker_ready, "consumer": consumer.is_running},
        max_body_bytes=s.max_body_bytes,
        description="Delivery to agencies, their answers and status reports.",
    )
    app.state.pool = infra.pool
    app.state.auth = infra.authenticator(SCHEMA)
    app.state.waker = waker
    app.state.settings = ns
    app.state.liveness = liveness
    app.include_router(api.router)
    app.include_router(api.follow_up_router)
    app.include_router(api.registries)
    app.include_router(api.agency_router)
    app.include_router(console.router)

    async def create_agency_topics() -> None:
        for agency in await repository.agencies(infra.pool):
            await ensure_topics(
                s,
                [s.topic(agency_topic(agency.id))],
                partitions=agency.partitions,
                service="notify",
            )

    return ServiceParts(
        name="notify",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        app=app,
        consumer=consumer,
        on_dead_letter=handlers.on_dead_letter,
        background=[
            waker.run,
            Repager(infra.pool, ns).run,
            Expirer(infra.pool, ns).run,
            Watcher(infra.pool, ns).run,
            FollowUpWatch(infra.pool, ns).run,
            WebhookSender(infra.pool, ns, on_delivered=liveness.seen).run,
            liveness.run,
        ],
        on_start=create_agency_topics,
        on_stop=waker.close,
        on_published=delivery.on_published,
    )
