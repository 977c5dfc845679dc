"""PostgreSQL helpers: the asyncpg pool and per-schema migrations applied once and recorded."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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


_JSONB_VERSION = b"\x01"  # the first byte of jsonb's binary form; the JSON text follows


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + json.dumps(value).encode()


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def register_json(conn: asyncpg.Connection) -> None:
    """Make json and jsonb values Python values both ways (asyncpg's default is their text).

    The codecs are set by type name, with no round trip (they are built-in types); jsonb's is
    binary, so COPY takes it too. A value whose text is what a caller wants (to hash it, cache by
    it, or pass it on unread) is selected `col::text`, and text that must be stored exactly as
    given is sent as `$n::text::jsonb`: both bypass the codec.
    """
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float | None = 30
) -> asyncpg.Pool:
    """Open a pool whose connections decode json and jsonb (`register_json`); the caller closes it."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        reset=_keep_session,
        init=register_json,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, **options: Any) -> asyncpg.Connection:
    """Open one connection that decodes json and jsonb as the pools do; the caller closes it."""
    conn = await asyncpg.connect(dsn, **options)
    await register_json(conn)
    return conn


Row = TypeVar("Row")


@functools.cache
def columns(row: type[Any], table: str = "") -> str:
    """The select list of a row dataclass: its fields in order (qualified by `table` when named),
    so `as_rows(row, records)` can build each from its values alone."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + f.name for f in dataclasses.fields(row))


def as_rows(row: Callable[..., Row], records: Iterable[asyncpg.Record]) -> list[Row]:
    """Records selected with `columns(row)`, each as a `row`."""
    return [row(*r) for r in records]


def as_row(row: Callable[..., Row], record: asyncpg.Record | None) -> Row | None:
    """A record selected with `columns(row)` as a `row`, or None."""
    return None if record is None else row(*record)


class MigrationError(Exception):
    """A schema cannot be migrated as its files say: the message names the file and what to do."""


@dataclass(frozen=True)
class _File:
    version: str  # `<owner>/<name>.sql`, as recorded
    path: Path
    data: bytes  # read once, so what is checked is what runs

    @property
    def checksum(self) -> str:
        """sha256 of the file's bytes, before `{schema}` is filled in."""
        return hashlib.sha256(self.data).hexdigest()


def _migration_files(folders: Sequence[Path]) -> list[_File]:
    return [
        _File(f"{folder.parent.name}/{path.name}", path, path.read_bytes())
        for folder in folders
        for path in sorted(folder.glob("*.sql"))
    ]


async def _recorded(conn: asyncpg.Connection, schema: str) -> dict[str, str | None]:
    """The versions recorded in `<schema>.schema_migrations` with their checksums (None where a
    row predates checksums); empty when the table does not exist yet."""
    columns = {
        r["column_name"]
        for r in await conn.fetch(
            "SELECT attname AS column_name FROM pg_attribute"
            " WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            f"{schema}.schema_migrations",
        )
    }
    if not columns:
        return {}
    checksum = "checksum" if "checksum" in columns else "NULL::text"
    rows = await conn.fetch(f"SELECT version, {checksum} AS checksum FROM {schema}.schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


def _refuse_changed(schema: str, files: Sequence[_File], recorded: dict[str, str | None]) -> None:
    for f in files:
        if recorded.get(f.version) not in (None, f.checksum):
            raise MigrationError(
                f"{f.path} was changed after it was applied to schema {schema} (sha256 recorded"
                f" {recorded[f.version]}, now {f.checksum}): restore the applied file and put the"
                " change in a new migration"
            )


async def pending(pool: asyncpg.Pool, schema: str, folders: Sequence[Path]) -> list[str]:
    """The migrations `migrate` would apply to `schema`, changing nothing; MigrationError as `migrate`."""
    check_identifier(schema)
    files = _migration_files([PLATFORM_MIGRATIONS, *folders])
    async with pool.acquire() as conn:
        recorded = await _recorded(conn, schema)
    _refuse_changed(schema, files, recorded)
    return [f.version for f in files if f.version not in recorded]


async def migrate(pool: asyncpg.Pool, schema: str, folders: Sequence[Path]) -> list[str]:
    """Create `schema` and apply the platform and given migration folders in order; return new ones.

    Each file runs once, in its own transaction with the row that records it in
    `<schema>.schema_migrations` (its version and the sha256 of its bytes): a file that fails
    leaves nothing of itself, and the files before it stay applied. `{schema}` in a file is
    replaced by the schema name, so a file cannot hold statements that refuse a transaction
    (CREATE INDEX CONCURRENTLY). Before anything is applied, every recorded file is compared
    with its checksum: one changed since raises MigrationError naming it. A row recorded before
    checksums were kept gets the file's checksum now rather than a refusal, since what was
    applied then cannot be known; a recorded file that no longer exists is left alone.

    A session advisory lock on the schema, held across the files' transactions, serialises
    processes starting together: the one that waited finds the files recorded and applies none.
    """
    check_identifier(schema)
    files = _migration_files([PLATFORM_MIGRATIONS, *folders])
    lock = f"migrate:{schema}"
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock)
        try:
            async with conn.transaction():
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (version text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now(), checksum text)"
                )
                await conn.execute(
                    f"ALTER TABLE {schema}.schema_migrations ADD COLUMN IF NOT EXISTS checksum text"
                )
                recorded = await _recorded(conn, schema)
                _refuse_changed(schema, files, recorded)
                for f in files:
                    if f.version in recorded and recorded[f.version] is None:
                        await conn.execute(
                            f"UPDATE {schema}.schema_migrations SET checksum = $2 WHERE version = $1",
                            f.version,
                            f.checksum,
                        )
            for f in files:
                if f.version in recorded:
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(f.data.decode().replace("{schema}", schema))
                        await conn.execute(
                            f"INSERT INTO {schema}.schema_migrations (version, checksum) VALUES ($1, $2)",
                            f.version,
                            f.checksum,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{f.path} failed on schema {schema}: {exc}") from exc
                applied.append(f.version)
        finally:
            await _unlock(conn, lock)
    return applied


async def _unlock(conn: asyncpg.Connection, lock: str) -> None:
    # The pool's release does not drop advisory locks (see _keep_session), so a lock that cannot
    # be released here goes with its session instead of staying held by a pooled connection.
    try:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()
