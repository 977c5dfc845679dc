"""A private PostgreSQL for one test, started with the project's starter, that the test may crash."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg

from tools.infra import free_port, postgres
from tools.infra.state import ProcessRecord


class PrivatePostgres:
    """A cluster under `folder` on a free port: stop it immediately, start it, hold it in startup.

    Durable (every commit flushed, as deployed): with commits acknowledged before their WAL is
    written, an immediate stop loses the last ones, and the test would see that instead.
    """

    def __init__(self, folder: Path) -> None:
        # Under the test run folder rather than pytest's: other pytest runs on the machine prune
        # and re-create /tmp/pytest-of-<user>, which the cluster's own OS user must traverse.
        self.folder = folder
        self.port = free_port()
        self.url = postgres.database_url(self.port)
        self.record: ProcessRecord | None = None

    def start(self) -> None:
        """Start (or restart) the cluster and wait until it answers SELECT 1."""
        self.record = postgres.start(self.folder, self.port, durable=True)

    @property
    def _data_dir(self) -> str:
        assert self.record is not None
        return self.record.extra["data_dir"]

    def _pg_ctl(self, *args: str) -> None:
        assert self.record is not None
        user = self.record.extra.get("os_user") or None
        # PostgreSQL refuses to run as root: as root, pg_ctl runs as the cluster's own user.
        gid = pwd.getpwnam(user).pw_gid if user else None
        subprocess.run(
            [str(Path(self.record.extra["bin_dir"]) / "pg_ctl"), "-D", self._data_dir, *args],
            check=True,
            capture_output=True,
            timeout=60,
            cwd=self.folder,
            user=user,
            group=gid,
            extra_groups=[] if user else None,
        )

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend killed, no checkpoint (recovery at next start)."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def start_held_in_startup(self) -> None:
        """Start the cluster in recovery that never ends by itself (standby.signal, hot standby off):
        it listens, and every connection is refused with 57P03 as during a crash recovery."""
        data = Path(self._data_dir)
        signal = data / "standby.signal"
        signal.touch()
        stat = data.stat()
        os.chown(signal, stat.st_uid, stat.st_gid)
        options = f"-p {self.port} -k '' {postgres.SERVER_OPTIONS} -c hot_standby=off"
        log = str(self.folder / "log" / "postgres.log")
        self._pg_ctl("start", "-W", "-l", log, "-o", options)

    def promote(self, timeout_s: float = 30) -> None:
        """End the held recovery: the cluster takes connections again (pg_ctl refuses to promote
        until crash recovery has finished and the cluster waits as a standby)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._pg_ctl("promote", "-w")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        """Stop the cluster if it runs (whichever start gave it its current pid) and remove it."""
        running = postgres.discovered(self.folder)
        if running is not None:
            postgres.stop(running)
        shutil.rmtree(self.folder, ignore_errors=True)

    async def wait_refusing_with_57p03(self, timeout_s: float = 30) -> asyncpg.PostgresError:
        """Wait until a connection attempt is refused with SQLSTATE 57P03; that real error."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                conn = await asyncpg.connect(self.url, timeout=2)
            except asyncpg.CannotConnectNowError as exc:
                return exc
            except OSError:
                pass
            else:
                await conn.close()
                raise AssertionError("the cluster took a connection while it should be starting up")
            if time.monotonic() > deadline:
                raise AssertionError("the cluster never started listening")
            await asyncio.sleep(0.05)
