"""Start detached processes, recognise them later, and stop them without leaving any behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Popen objects of processes this interpreter started: kept so they are reaped (no zombie
# lingers as "alive") and so Python does not warn about a still-running child being collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn_detached(
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start argv in its own session with stdout and stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name in parentheses may itself contain spaces or parentheses.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None


def cmdline(pid: int) -> str | None:
    """Return the command line of pid joined by spaces, or None when /proc cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def pid_alive(pid: int) -> bool:
    """Return True if pid is a running (not zombie) process."""
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")


def is_ours(pid: int, marker: str) -> bool:
    """Return True if pid runs and its command line contains marker (so a reused pid is ignored)."""
    if not pid_alive(pid):
        return False
    line = cmdline(pid)
    # Without /proc (e.g. macOS) the pid is all there is to go on.
    return line is None or marker in line


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        # Our processes lead their own session, so their group also holds any children.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to timeout seconds for pid to exit; return True if it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_process(pid: int, marker: str, *, grace: float) -> bool:
    """SIGTERM pid (and its group), wait grace seconds, then SIGKILL; return True if it was ours."""
    if not is_ours(pid, marker):
        _CHILDREN.pop(pid, None)
        return False
    _signal(pid, signal.SIGTERM)
    if not wait_gone(pid, grace):
        _signal(pid, signal.SIGKILL)
        if not wait_gone(pid, 10.0):
            raise OSError(f"process {pid} did not exit after SIGKILL")
    _CHILDREN.pop(pid, None)
    return True


def kill_now(pid: int) -> None:
    """SIGKILL pid and its group and reap it; used when a start-up fails."""
    if pid_alive(pid):
        _signal(pid, signal.SIGKILL)
        wait_gone(pid, 10.0)
    _CHILDREN.pop(pid, None)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool],
    interval: float = 0.2,
) -> str:
    """Poll check until it holds: 'ok', or 'exited' when alive() turns False, or 'timeout'."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return "ok"
        if not alive():
            return "exited"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(interval)


def run_logged(argv: Sequence[str], log: Path, *, cwd: Path, timeout: float, **popen: Any) -> int:
    """Run a command to completion, its output appended to `log`; -1 when it timed out."""
    with log.open("ab") as out:
        try:
            return subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
                check=False,
                **popen,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1


def log_tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = data.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"
