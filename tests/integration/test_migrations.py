"""Migrations on real PostgreSQL: each file once, in its own transaction, checked against its
checksum at every start, safe for replicas starting together, and `careroute migrate`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from services.cli import app as cli
from services.loader import MIGRATIONS
from services.topology import TOPOLOGY
from shared import runtime
from shared.db import PLATFORM_MIGRATIONS, MigrationError, create_pool, migrate, pending
from shared.http import make_app
from shared.settings import SERVICE_NAMES, Settings
from tools.infra import free_port

pytestmark = pytest.mark.integration

SCHEMA = "audit"  # a service's name, so the runtime can run it
PLATFORM = [f"shared/{p.name}" for p in sorted(PLATFORM_MIGRATIONS.glob("*.sql"))]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A service's migrations folder (recorded as `svc/<file>`) with two files."""
    path = tmp_path / "svc" / "migrations"
    path.mkdir(parents=True)
    (path / "001_first.sql").write_text("CREATE TABLE {schema}.first (id int PRIMARY KEY);\n")
    (path / "002_second.sql").write_text("CREATE TABLE {schema}.second (id int PRIMARY KEY);\n")
    return path


async def recorded(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch(f"SELECT version, checksum FROM {SCHEMA}.schema_migrations ORDER BY version")
    return {r["version"]: r["checksum"] for r in rows}


async def tables(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", SCHEMA)
    return {r["tablename"] for r in rows}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_each_file_is_applied_once_and_recorded_with_the_sha256_of_its_bytes(pool, folder):
    assert await migrate(pool, SCHEMA, [folder]) == [*PLATFORM, "svc/001_first.sql", "svc/002_second.sql"]
    assert await migrate(pool, SCHEMA, [folder]) == []
    got = await recorded(pool)
    assert got["svc/001_first.sql"] == sha256(folder / "001_first.sql")
    assert got["shared/001_platform.sql"] == sha256(PLATFORM_MIGRATIONS / "001_platform.sql")
    assert {"first", "second", "outbox"} <= await tables(pool)


async def test_a_new_migration_is_applied_after_the_recorded_ones(pool, folder):
    await migrate(pool, SCHEMA, [folder])
    (folder / "003_third.sql").write_text("ALTER TABLE {schema}.first ADD COLUMN name text;\n")
    assert await pending(pool, SCHEMA, [folder]) == ["svc/003_third.sql"]
    assert await migrate(pool, SCHEMA, [folder]) == ["svc/003_third.sql"]
    assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.first WHERE name IS NULL") == 0
    assert await pending(pool, SCHEMA, [folder]) == []


async def test_an_edited_applied_migration_is_refused_naming_the_file(pool, folder):
    await migrate(pool, SCHEMA, [folder])
    edited = folder / "001_first.sql"
    edited.write_text("CREATE TABLE {schema}.first (id bigint PRIMARY KEY);\n")
    (folder / "003_third.sql").write_text("CREATE TABLE {schema}.third (id int);\n")
    for step in (migrate, pending):
        with pytest.raises(MigrationError, match=re.escape(f"{edited} was changed after it was applied")):
            await step(pool, SCHEMA, [folder])
    assert "third" not in await tables(pool)  # refused before anything new is applied


async def test_a_failing_migration_leaves_nothing_of_itself_and_earlier_files_stay_applied(pool, folder):
    (folder / "003_fails.sql").write_text(
        "CREATE TABLE {schema}.half (id int);\nINSERT INTO {schema}.missing VALUES (1);\n"
    )
    (folder / "004_after.sql").write_text("CREATE TABLE {schema}.after (id int);\n")
    with pytest.raises(MigrationError, match=r"003_fails\.sql failed on schema audit: .*missing"):
        await migrate(pool, SCHEMA, [folder])
    assert list(await recorded(pool)) == sorted([*PLATFORM, "svc/001_first.sql", "svc/002_second.sql"])
    assert {"first", "second"} <= await tables(pool)
    assert not {"half", "after"} & await tables(pool)
    (folder / "003_fails.sql").write_text("CREATE TABLE {schema}.half (id int);\n")  # fixed, never applied
    assert await migrate(pool, SCHEMA, [folder]) == ["svc/003_fails.sql", "svc/004_after.sql"]


async def test_rows_recorded_before_checksums_get_them_instead_of_a_refusal(pool, folder):
    await pool.execute(f"CREATE SCHEMA {SCHEMA}")
    await pool.execute(
        f"CREATE TABLE {SCHEMA}.schema_migrations (version text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await pool.execute(f"CREATE TABLE {SCHEMA}.first (id int PRIMARY KEY)")
    await pool.execute(f"INSERT INTO {SCHEMA}.schema_migrations (version) VALUES ('svc/001_first.sql')")
    assert "svc/001_first.sql" not in await pending(pool, SCHEMA, [folder])
    assert await migrate(pool, SCHEMA, [folder]) == [*PLATFORM, "svc/002_second.sql"]
    assert (await recorded(pool))["svc/001_first.sql"] == sha256(folder / "001_first.sql")
    (folder / "001_first.sql").write_text("-- edited after its checksum was recorded\n")
    with pytest.raises(MigrationError, match=r"001_first\.sql was changed"):
        await migrate(pool, SCHEMA, [folder])


async def test_replicas_starting_together_apply_each_file_once(database_url, folder):
    # A slow file keeps the first replica inside its migrations while the others arrive.
    (folder / "003_slow.sql").write_text("SELECT pg_sleep(0.5);\nCREATE TABLE {schema}.slow (id int);\n")
    pools = [await create_pool(database_url, max_size=1) for _ in range(3)]
    try:
        runs = await asyncio.gather(*(migrate(p, SCHEMA, [folder]) for p in pools))
        assert sorted(v for run in runs for v in run) == sorted(
            [*PLATFORM, "svc/001_first.sql", "svc/002_second.sql", "svc/003_slow.sql"]
        )
        assert sorted(len(run) for run in runs) == [0, 0, len(PLATFORM) + 3]
    finally:
        for p in pools:
            await p.close()


async def test_a_service_does_not_start_on_an_edited_applied_migration(settings: Settings, pool, folder):
    await migrate(pool, SCHEMA, [folder])
    edited = folder / "002_second.sql"
    edited.write_text("CREATE TABLE {schema}.second (id bigint PRIMARY KEY);\n")

    def build(infra: runtime.Infra) -> runtime.ServiceParts:
        return runtime.ServiceParts(name=SCHEMA, schema=SCHEMA, migrations=folder, app=make_app(SCHEMA, {}))

    refused = re.escape(f"audit: {edited} was changed after it was applied")
    with pytest.raises(runtime.StartupError, match=refused):
        await asyncio.wait_for(
            runtime.run(
                settings.model_copy(update={"audit_port": free_port()}),
                [SCHEMA],
                {SCHEMA: build},
                topology=TOPOLOGY,
                stop=asyncio.Event(),
            ),
            60,
        )


def careroute_migrate(database_url: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"DATABASE_URL": database_url, "CAREROUTE_RUN_DIR": str(tmp_path / "run")}
    result = CliRunner().invoke(cli, ["migrate", *args], env=env)
    return result.exit_code, result.output


async def test_careroute_migrate_applies_what_is_pending_and_check_says_so(pool, database_url, tmp_path):
    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "--check")
    every = sum(len(PLATFORM) + len(list(MIGRATIONS[s].glob("*.sql"))) for s in SERVICE_NAMES)
    assert code == 1, out
    assert "intake   pending shared/001_platform.sql" in out and f"{every} migrations pending" in out
    assert not await pool.fetchval("SELECT to_regnamespace('intake') IS NOT NULL")  # nothing changed

    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "notify")
    assert code == 0, out
    notify = len(PLATFORM) + len(list(MIGRATIONS["notify"].glob("*.sql")))
    assert "notify   applied notify/001_assignments.sql" in out and f"{notify} migrations applied" in out
    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "--check", "notify")
    assert (code, out.strip()) == (0, "every schema is up to date")

    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path)
    assert code == 0 and f"{every - notify} migrations applied" in out and "notify " not in out, out
    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "--check")
    assert (code, out.strip()) == (0, "every schema is up to date")

    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "police")
    assert code == 2 and "unknown service 'police'" in out


async def test_careroute_migrate_check_fails_on_an_edited_applied_migration(pool, database_url, tmp_path):
    await pool.execute("CREATE SCHEMA matching")
    await pool.execute(
        "CREATE TABLE matching.schema_migrations (version text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now(), checksum text)"
    )
    await pool.execute(
        "INSERT INTO matching.schema_migrations VALUES ('matching/001_roster.sql', now(), 'not-its-sha256')"
    )
    code, out = await asyncio.to_thread(careroute_migrate, database_url, tmp_path, "--check", "matching")
    assert code == 1 and "001_roster.sql was changed after it was applied to schema matching" in out
