"""Run-folder state: the endpoints and processes recorded in run_dir/infra.json."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "infra.json"
STATE_VERSION = 1


class InfraError(Exception):
    """Local infrastructure could not be started, reused or stopped; the message says what to do."""


@dataclass(frozen=True)
class InfraEndpoints:
    """Where the services find PostgreSQL and the Kafka broker."""

    database_url: str
    kafka_bootstrap_servers: str
    broker: str
    # SASL_PLAINTEXT when the local broker was started secured (its clients must log in).
    kafka_security_protocol: str = "PLAINTEXT"
    # The CA file that verifies the local broker's TLS listener (SASL_SSL), else empty.
    kafka_ssl_cafile: str = ""


@dataclass(frozen=True)
class ProcessRecord:
    """One process started by `up`, recognised later by its pid and a marker in its command line."""

    component: str
    pid: int
    port: int
    marker: str
    log: str
    description: str
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> ProcessRecord | None:
        """Parse a record written by to_json; None when it is malformed."""
        if not isinstance(raw, dict):
            return None
        try:
            extra = raw.get("extra") or {}
            return cls(
                component=str(raw["component"]),
                pid=int(raw["pid"]),
                port=int(raw["port"]),
                marker=str(raw["marker"]),
                log=str(raw["log"]),
                description=str(raw["description"]),
                extra={str(k): str(v) for k, v in dict(extra).items()},
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class RunState:
    """Contents of run_dir/infra.json."""

    endpoints: InfraEndpoints | None = None
    components: dict[str, ProcessRecord] = field(default_factory=dict)


def state_path(run_dir: Path) -> Path:
    """Return the path of the state file of run_dir."""
    return run_dir / STATE_FILE


def read_state(run_dir: Path) -> RunState:
    """Read run_dir/infra.json; an empty state when it is missing or unreadable."""
    try:
        raw = json.loads(state_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunState()
    if not isinstance(raw, dict):
        return RunState()
    state = RunState()
    ep = raw.get("endpoints")
    if isinstance(ep, dict):
        try:
            state.endpoints = InfraEndpoints(
                database_url=str(ep["database_url"]),
                kafka_bootstrap_servers=str(ep["kafka_bootstrap_servers"]),
                broker=str(ep["broker"]),
                kafka_security_protocol=str(ep.get("kafka_security_protocol", "PLAINTEXT")),
                kafka_ssl_cafile=str(ep.get("kafka_ssl_cafile", "")),
            )
        except KeyError:
            state.endpoints = None
    comps = raw.get("components")
    if isinstance(comps, dict):
        for name, rec_raw in comps.items():
            rec = ProcessRecord.from_json(rec_raw)
            if rec is not None:
                state.components[str(name)] = rec
    return state


def write_state(run_dir: Path, state: RunState) -> None:
    """Write run_dir/infra.json atomically."""
    payload: dict[str, object] = {
        "version": STATE_VERSION,
        "endpoints": asdict(state.endpoints) if state.endpoints else None,
        "components": {name: rec.to_json() for name, rec in state.components.items()},
    }
    path = state_path(run_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def remove_state(run_dir: Path) -> None:
    """Delete run_dir/infra.json if present."""
    state_path(run_dir).unlink(missing_ok=True)


def read_endpoints(run_dir: Path) -> InfraEndpoints | None:
    """Return the endpoints recorded by the last successful `up` of run_dir, if any."""
    return read_state(run_dir).endpoints


def database_url(configured: str, run_dir: Path) -> str:
    """DATABASE_URL when it is set, else the PostgreSQL the last `up` of run_dir started (if any),
    else `configured` (the settings' default)."""
    endpoints = read_endpoints(run_dir)
    if "DATABASE_URL" not in os.environ and endpoints is not None:
        return endpoints.database_url
    return configured


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on path (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_record(path: Path, rec: ProcessRecord) -> None:
    """Write one process record next to its logs, so `down` finds it even without infra.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_record(path: Path) -> ProcessRecord | None:
    """Read a record written by write_record; None when missing or malformed."""
    try:
        return ProcessRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
