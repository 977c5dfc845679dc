"""Whether agencies show life: the signs notify reads, the sweep that finds the silent, and the
event (`agencies.reachability.v1`) that tells matching to skip or take back their teams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.notify import domain, webhooks
from services.notify.feed import FeedWaker
from services.notify.settings import NotifySettings
from shared import events, topics
from shared.envelope import new_event, utcnow
from shared.kafka import client_options
from shared.outbox import enqueue
from shared.settings import Settings

log = structlog.get_logger(__name__)
SERVICE = "notify"
# A sign of life of one agency is recorded at most this often by one process.
RECORD_EVERY_S = 1.0
PING_TYPE = "agency.ping.v1"


def agency_of_group(group: str, prefix: str) -> str | None:
    """The agency a consumer group belongs to (`<prefix><agency>.<anything>`), or None."""
    if not group.startswith(prefix):
        return None
    agency, dot, _ = group[len(prefix) :].partition(".")
    return agency if dot and agency else None


def ping_body(msg_id: str, agency_id: str, at: datetime) -> bytes:
    """A liveness ping as a webhook sees it: a CloudEvent like every message, of kind `ping`,
    naming no call (an agency answers it 2xx and does nothing else)."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": msg_id,
            "source": "careroute/notify",
            "type": PING_TYPE,
            "time": at.isoformat(),
            "datacontenttype": "application/json",
            "data": {"kind": "ping", "agency_id": agency_id, "sent_at": at.isoformat()},
        }
    ).encode()


def _changed(
    agency_id: str, now_reachable: bool, row: asyncpg.Record, at: datetime
) -> events.AgencyReachability:
    return events.AgencyReachability(
        agency_id=agency_id,
        reachable=now_reachable,
        last_seen_at=row["last_seen_at"],
        sign=row["last_sign"],
        timeout_s=row["liveness_timeout_s"],
        at=at,
    )


class Liveness:
    """Records agencies' signs of life and publishes when one goes silent past its timeout or
    comes back; a background job of notify, and the hook notify's routes and webhooks call."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, own: NotifySettings, waker: FeedWaker) -> None:
        self._pool = pool
        self._settings = settings
        self._own = own
        self._waker = waker
        self._recorded: dict[str, float] = {}

    async def seen(self, agency_id: str, sign: events.LifeSign, *, force: bool = False) -> None:
        """An agency showed life: record it, and if it was unreachable it is reachable again now.

        Call it outside any transaction that holds the agency's row (it takes the row itself)."""
        clock = time.monotonic()
        if not force and clock - self._recorded.get(agency_id, float("-inf")) < RECORD_EVERY_S:
            return
        self._recorded[agency_id] = clock
        async with self._pool.acquire() as conn, conn.transaction():
            was = await conn.fetchval(
                "SELECT reachable FROM notify.agencies WHERE id = $1 FOR NO KEY UPDATE", agency_id
            )
            row = await conn.fetchrow(
                "UPDATE notify.agencies SET last_seen_at = now(), last_sign = $2, reachable = true"
                " WHERE id = $1 RETURNING last_seen_at, last_sign, liveness_timeout_s",
                agency_id,
                sign,
            )
            if row is not None and was is False and row["liveness_timeout_s"] is not None:
                payload = _changed(agency_id, True, row, utcnow())
                await enqueue(
                    conn, SERVICE, new_event(topics.AGENCIES_REACHABILITY, SERVICE, agency_id, payload)
                )
                log.info("agency reachable again", agency_id=agency_id, sign=sign)

    @staticmethod
    async def state(pool: asyncpg.Pool, agency_id: str) -> dict[str, object]:
        """An agency's liveness as its heartbeat answers it."""
        row = await pool.fetchrow(
            "SELECT id AS agency_id, reachable, liveness_timeout_s, last_seen_at, last_sign"
            " FROM notify.agencies WHERE id = $1",
            agency_id,
        )
        assert row is not None
        return dict(row)

    async def sweep(self) -> list[str]:
        """Mark every watched agency silent past its timeout unreachable, and say so; their ids."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, last_seen_at, last_sign, liveness_timeout_s FROM notify.agencies"
                " WHERE reachable AND liveness_timeout_s IS NOT NULL"
                " AND coalesce(last_seen_at, watched_since)"
                " < now() - make_interval(secs => liveness_timeout_s)"
                " FOR UPDATE SKIP LOCKED"
            )
            now = utcnow()
            for row in rows:
                await conn.execute("UPDATE notify.agencies SET reachable = false WHERE id = $1", row["id"])
                payload = _changed(row["id"], False, row, now)
                await enqueue(
                    conn, SERVICE, new_event(topics.AGENCIES_REACHABILITY, SERVICE, row["id"], payload)
                )
                log.warning("agency unreachable", agency_id=row["id"], last_seen_at=row["last_seen_at"])
        return [r["id"] for r in rows]

    async def _streams(self) -> None:
        for agency_id in self._waker.connected():
            await self.seen(agency_id, "stream")

    async def _groups(self, admin: AIOKafkaAdminClient) -> None:
        """Agencies with a consumer connected in one of their groups on the broker."""
        prefix = self._settings.topic(topics.AGENCY_TOPIC_PREFIX)
        groups = [str(g[0]) for g in await admin.list_consumer_groups() if str(g[0]).startswith(prefix)]
        if not groups:
            return
        live: set[str] = set()
        for response in await admin.describe_consumer_groups(groups):
            for group in response.groups:
                # (error_code, group_id, state, protocol_type, protocol, members, ...)
                agency = agency_of_group(str(group[1]), prefix)
                if agency is not None and group[0] == 0 and group[5]:
                    live.add(agency)
        for agency_id in sorted(live):
            await self.seen(agency_id, "kafka_group")

    async def _pings(self, http: httpx.AsyncClient) -> None:
        """Webhook agencies not heard from for a third of their timeout are sent a signed ping;
        a 2xx is a sign of life (a webhook-only agency would otherwise never be heard from again)."""
        rows = await self._pool.fetch(
            "SELECT id, webhook_url, webhook_secret, webhook_allow_private FROM notify.agencies"
            " WHERE liveness_timeout_s IS NOT NULL AND webhook_url IS NOT NULL"
            " AND webhook_disabled_at IS NULL"
            " AND 'webhook' = ANY(channels) AND coalesce(last_seen_at, '-infinity')"
            " < now() - make_interval(secs => liveness_timeout_s / 3.0)"
        )
        for row in rows:
            msg_id = str(uuid.uuid4())
            body = ping_body(msg_id, row["id"], datetime.now(UTC))
            try:
                target = await webhooks.check_url(row["webhook_url"], row["webhook_allow_private"])
                headers = webhooks.signed_headers(row["webhook_secret"], msg_id, body, datetime.now(UTC))
                answer = await http.post(target.url, content=body, headers={**headers, "host": target.host})
            except (webhooks.AddressRefused, httpx.HTTPError, OSError) as exc:
                log.info("liveness ping failed", agency_id=row["id"], error=type(exc).__name__)
                continue
            if domain.webhook_verdict(answer.status_code) == "delivered":
                await self.seen(row["id"], "webhook")

    async def check(self, http: httpx.AsyncClient, admin: AIOKafkaAdminClient | None) -> list[str]:
        """One pass: read every sign of life, then mark the silent unreachable; their ids.

        Nothing is read (no broker call, no ping) while no agency is watched: a deployment that
        sets no liveness timeout pays one query per pass."""
        watched = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM notify.agencies WHERE liveness_timeout_s IS NOT NULL)"
        )
        if not watched:
            return []
        await self._streams()
        if admin is not None:
            try:
                await self._groups(admin)
            except KafkaError as exc:
                log.warning("cannot read agencies' consumer groups", error=repr(exc))
        await self._pings(http)
        return await self.sweep()

    async def run(self, stop: asyncio.Event) -> None:
        """The background job: a pass every NOTIFY_LIVENESS_CHECK_S."""
        admin: AIOKafkaAdminClient | None = AIOKafkaAdminClient(**client_options(self._settings, SERVICE))
        try:
            assert admin is not None
            await admin.start()
        except KafkaError as exc:
            log.warning("liveness reads no consumer groups: no admin client", error=repr(exc))
            admin = None
        try:
            async with httpx.AsyncClient(
                timeout=self._own.webhook_timeout_s, follow_redirects=False, trust_env=False
            ) as http:
                while not stop.is_set():
                    await self.check(http, admin)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._own.liveness_check_s)
        finally:
            if admin is not None:
                await admin.close()
