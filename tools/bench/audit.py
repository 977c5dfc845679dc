"""Benchmark of the audit trail: verification speed and per-call trail query time at scale.

python -m tools.bench.audit [--rows 10000000] [--chain-rows 1000000]

Builds a throw-away database: `--chain-rows` rows hashed and chained exactly as the service does
(computed here, copied in), then filler rows up to `--rows` made by SQL generate_series (their
hashes are not a valid chain: they exist so that queries run against a table of that size). It
reports how fast /v1/audit/verify's walk checks the chained rows, how long one call's trail
takes to read, and how long an inclusion proof in the chained tree takes. Never part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.audit import checkpoints, domain, handlers, repository
from services.audit.checkpoints import Checkpointer
from services.audit.settings import AuditSettings
from shared.db import create_pool, migrate
from shared.settings import Settings
from tools import infra
from tools.system import scratch_database


def echo(*parts: object, flush: bool = True) -> None:
    """A line of the benchmark's report on stdout (a command's output, not a service log)."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    if flush:
        sys.stdout.flush()


MIGRATIONS = Path(__file__).parents[2] / "services" / "audit" / "migrations"
TYPES = (
    "calls.received.v1",
    "assignments.offered.v1",
    "assignments.responded.v1",
    "assignments.status_changed.v1",
    "assignments.status_changed.v1",
)
EVENTS_PER_CALL = len(TYPES)


def _envelope(n: int, at: datetime) -> dict[str, Any]:
    call = f"call-{n // EVENTS_PER_CALL}"
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": TYPES[n % EVENTS_PER_CALL],
        "source": "/services/bench",
        "subject": call,
        "time": at.isoformat(),
        "datacontenttype": "application/json",
        "correlationid": call,
        "data": {
            "call_id": call,
            "agency_id": f"agency-{n % 7}",
            "assignment_id": f"{call}-a1",
            "team_id": "team-1",
            "location": {"lat": 44.05 + n % 100 / 1000, "lon": -123.08, "address": "100 W 10th Ave"},
            "callback_number": "+15415550123",
        },
    }


_JSON_COLUMNS = [repository.EVENT_COLUMNS.index(c) for c in ("envelope", "public_event")]


def _decoded(record: tuple[Any, ...]) -> tuple[Any, ...]:
    """A chained row with its JSON columns as values: COPY goes through the pool's jsonb codec,
    which writes them back as the same text (the service sends that text as it is)."""
    row = list(record)
    for i in _JSON_COLUMNS:
        row[i] = json.loads(row[i])
    return tuple(row)


async def _chain(conn: asyncpg.Connection, count: int, batch: int = 20000) -> None:
    """Append `count` valid rows as the service would, in COPY batches."""
    head = repository.ChainHead(0, domain.GENESIS, [])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for lo in range(0, count, batch):
        stamps = [start + timedelta(seconds=n) for n in range(lo, min(count, lo + batch))]
        records, nodes = repository.chain_rows(
            head, ((_envelope(lo + k, at), at, os.urandom(16), None) for k, at in enumerate(stamps))
        )
        await conn.copy_records_to_table(
            "events",
            schema_name="audit",
            records=map(_decoded, records),
            columns=list(repository.EVENT_COLUMNS),
        )
        await conn.copy_records_to_table(
            "tree_nodes", schema_name="audit", records=nodes, columns=["level", "idx", "hash"]
        )
        echo(f"  chained {min(count, lo + batch):>10,} rows", flush=True)
    await conn.execute(
        "UPDATE audit.chain_head SET seq = $1, hash = $2, frontier = $3", head.seq, head.hash, head.frontier
    )


async def _fill(conn: asyncpg.Connection, first: int, last: int, batch: int = 1_000_000) -> None:
    """Filler rows `first..last` by generate_series: same shape, not a valid chain."""
    for lo in range(first, last + 1, batch):
        hi = min(last, lo + batch - 1)
        await conn.execute(
            """
            INSERT INTO audit.events (seq, event_id, type, subject, agency_id, source, event_time,
                recorded_at, envelope, prev_hash, row_hash, public_event, nonce)
            SELECT g, u, t, s, a, '/services/bench', ts, ts, e, '\\x00'::bytea, sha256(g::text::bytea),
                e, '\\x00'::bytea
            FROM (
                SELECT g, gen_random_uuid() AS u, 'call-' || ((g - 1) / $3) AS s,
                    'agency-' || ((g - 1) % 7) AS a,
                    (ARRAY['calls.received.v1', 'assignments.offered.v1', 'assignments.responded.v1',
                           'assignments.status_changed.v1',
                           'assignments.status_changed.v1'])[(g - 1) % $3 + 1] AS t,
                    timestamptz '2026-01-01' + g * interval '1 second' AS ts
                FROM generate_series($1::bigint, $2::bigint) g
            ) r, LATERAL (
                SELECT jsonb_build_object('id', u, 'type', t, 'subject', s, 'source', '/services/bench',
                    'data', jsonb_build_object('call_id', s, 'agency_id', a, 'location',
                        jsonb_build_object('lat', 44.05, 'lon', -123.08))) AS e
            ) j
            """,
            lo,
            hi,
            EVENTS_PER_CALL,
        )
        echo(f"  filled  {hi:>10,} rows", flush=True)


async def bench(database_url: str, rows: int, chain_rows: int, samples: int, keep: bool) -> dict[str, Any]:
    """Build the trail, measure, drop the database (unless `keep`); returns the figures."""
    async with scratch_database(database_url, f"bench_audit_{uuid.uuid4().hex[:8]}", keep=keep) as url:
        pool = await create_pool(url, max_size=2, command_timeout=None)
        assert pool is not None
        try:
            await migrate(pool, "audit", [MIGRATIONS])
            t = time.perf_counter()
            async with pool.acquire() as conn:
                await _chain(conn, chain_rows)
                if rows > chain_rows:
                    await _fill(conn, chain_rows + 1, rows)
                await conn.execute("ANALYZE audit.events")
            built_s = time.perf_counter() - t
            checkpointer = Checkpointer(pool, AuditSettings())
            await checkpointer.start()
            t = time.perf_counter()
            verdict = await handlers.verify(pool, checkpointer, 1, chain_rows)
            verify_s = time.perf_counter() - t
            assert verdict["ok"] and verdict["checked"] == chain_rows, verdict
            calls = rows // EVENTS_PER_CALL
            timings = []
            async with pool.acquire() as conn:
                for _ in range(samples):
                    call = f"call-{random.randrange(calls)}"
                    t = time.perf_counter()
                    trail = await repository.events_of_call(conn, call)
                    timings.append((time.perf_counter() - t) * 1000)
                    assert trail, call
            timings.sort()
            proof_ms = []
            async with pool.acquire() as conn:
                for _ in range(samples):
                    seq = random.randrange(1, chain_rows + 1)
                    t = time.perf_counter()
                    proof = await checkpoints.inclusion(conn, seq, chain_rows)
                    proof_ms.append((time.perf_counter() - t) * 1000)
                    assert len(proof) <= chain_rows.bit_length(), seq
            proof_ms.sort()
            return {
                "rows": rows,
                "chained_rows": chain_rows,
                "build_s": round(built_s, 1),
                "verify_s": round(verify_s, 2),
                "verify_events_per_s": round(chain_rows / verify_s),
                "trail_query_ms": {
                    "samples": samples,
                    "p50": round(statistics.median(timings), 2),
                    "p99": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
                    "max": round(timings[-1], 2),
                },
                "inclusion_proof_ms": {
                    "tree_size": chain_rows,
                    "p50": round(statistics.median(proof_ms), 2),
                    "max": round(proof_ms[-1], 2),
                },
                "table_size": await pool.fetchval(
                    "SELECT pg_size_pretty(pg_total_relation_size('audit.events'))"
                ),
            }
        finally:
            await pool.close()


def main() -> None:
    """Parse arguments, run the benchmark, print the figures as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the table")
    parser.add_argument("--chain-rows", type=int, default=1_000_000, help="of which a valid hash chain")
    parser.add_argument("--samples", type=int, default=200, help="per-call trail queries to time")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    settings = Settings()
    url = infra.database_url(settings.database_url.get_secret_value(), settings.run_dir)
    chain_rows = min(args.chain_rows, args.rows)
    echo(
        f"audit benchmark: {args.rows:,} rows ({chain_rows:,} chained) in {url.rpartition('@')[2]}",
        flush=True,
    )
    figures = asyncio.run(bench(url, args.rows, chain_rows, args.samples, args.keep))
    echo(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
