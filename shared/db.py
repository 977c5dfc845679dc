"""PostgreSQL helpers: the asyncpg pool and per-schema migrations applied once and recorded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import asyncpg

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_identifier(name: str) -> str:
    """Return `name` if it is a plain lower-case SQL identifier, else raise ValueError."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection without the default reset query.

    asyncpg still rolls back an open transaction and drops local listeners before this runs. The
    default query (UNLISTEN, RESET ALL, advisory unlock) is one more round trip per acquisition,
    and our code leaves no session state behind: settings are SET LOCAL, advisory locks are
    transaction-scoped or unlocked in `finally`, and listeners are removed before release.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; the caller (the runtime) closes it."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=30, reset=_keep_session
    )
    assert pool is not None
    return pool


def _migration_files(folders: Sequence[Path]) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for folder in folders:
        for path in sorted(folder.glob("*.sql")):
            files.append((f"{folder.parent.name}/{path.name}", path))
    return files


async def migrate(pool: asyncpg.Pool, schema: str, folders: Sequence[Path]) -> list[str]:
    """Create `schema` and apply the platform and given migration folders in order; return new ones.

    Each file runs once, in its own transaction, recorded in `<schema>.schema_migrations`; `{schema}`
    in a file is replaced by the schema name. An advisory lock serialises processes starting together.
    """
    check_identifier(schema)
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        for version, path in _migration_files([PLATFORM_MIGRATIONS, *folders]):
            if version in done:
                continue
            await conn.execute(path.read_text().replace("{schema}", schema))
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
