"""up / down / status of the local PostgreSQL and Kafka broker of one run folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared import settings
from tools.infra import kafka_apache, postgres, tansu
from tools.infra.ports import HOST, ensure_port_free, kafka_error
from tools.infra.procs import is_ours, stop_process
from tools.infra.state import (
    InfraEndpoints,
    InfraError,
    ProcessRecord,
    RunState,
    locked,
    read_record,
    read_state,
    remove_state,
    write_state,
)

KAFKA_PORT_ENV = "CAREROUTE_KAFKA_PORT"
BROKER_SLOT = "broker"
PG_SLOT = "postgres"
_LOCK = ".infra.lock"


def choose_broker(requested: str | None) -> str:
    """The broker to start (settings.choose_broker), an unknown name as an InfraError."""
    try:
        return settings.choose_broker(requested)
    except settings.UnknownBroker as exc:
        raise InfraError(str(exc)) from exc


def _alive(rec: ProcessRecord | None) -> bool:
    return rec is not None and is_ours(rec.pid, rec.marker)


def _stop(rec: ProcessRecord) -> bool:
    if rec.component == postgres.COMPONENT:
        return postgres.stop(rec)
    grace = kafka_apache.STOP_GRACE if rec.component == kafka_apache.COMPONENT else tansu.STOP_GRACE
    return stop_process(rec.pid, rec.marker, grace=grace)


def _live_postgres(run_dir: Path, state: RunState, port: int) -> ProcessRecord | None:
    candidates = (state.components.get(PG_SLOT), postgres.discovered(run_dir / "pg"))
    rec = next((c for c in candidates if c is not None and _alive(c)), None)
    if rec is None:
        return None
    if rec.port != port:
        raise InfraError(
            f"PostgreSQL from {run_dir} already runs on port {rec.port}, not {port}; "
            f"set CAREROUTE_PG_PORT={rec.port} or run `careroute infra down` first"
        )
    return rec


def _protocol(rec: ProcessRecord) -> str:
    return rec.extra.get("security_protocol", "PLAINTEXT")


def _live_broker(
    run_dir: Path, state: RunState, broker: str, port: int, protocol: str
) -> ProcessRecord | None:
    component = kafka_apache.COMPONENT if broker == "apache" else tansu.COMPONENT
    candidates = [
        state.components.get(BROKER_SLOT),
        read_record(run_dir / kafka_apache.COMPONENT / "process.json"),
        read_record(run_dir / tansu.COMPONENT / "process.json"),
    ]
    for rec in candidates:
        if rec is not None and _alive(rec):
            if rec.component != component or rec.port != port or _protocol(rec) != protocol:
                raise InfraError(
                    f"{rec.description} already runs from {run_dir}; run `careroute infra down` "
                    f"first to switch to {broker} ({protocol}) on port {port}"
                )
            return rec
    return None


def _check_ports(broker: str, pg_port: int | None, kafka_port: int | None) -> None:
    if pg_port is not None:
        ensure_port_free(pg_port, "PostgreSQL", postgres.PORT_ENV)
    if kafka_port is not None and broker == "apache":
        ensure_port_free(kafka_port, "Kafka", KAFKA_PORT_ENV)
        ensure_port_free(kafka_port + 1, "Kafka controller, Kafka port + 1", KAFKA_PORT_ENV)
    elif kafka_port is not None:
        ensure_port_free(kafka_port, "Tansu Kafka broker", KAFKA_PORT_ENV)


def _start_broker(
    run_dir: Path, broker: str, port: int, login: tuple[str, str] | None, tls: tuple[Path, Path] | None
) -> ProcessRecord:
    if broker == "apache":
        return kafka_apache.start(run_dir / "kafka", port, login, tls)
    return tansu.start(run_dir / "tansu", port)


def up(
    run_dir: Path,
    broker: str,
    *,
    pg_port: int = 55432,
    kafka_port: int = 59092,
    database_url: str | None = None,
    external_bootstrap: str | None = None,
    durable_pg: bool = False,
    kafka_login: tuple[str, str] | None = None,
    kafka_tls: bool = False,
    external_options: Mapping[str, Any] | None = None,
) -> InfraEndpoints:
    """Start (or reuse) PostgreSQL and the broker of run_dir, wait until both answer, record them.

    PostgreSQL starts without disk flushes unless `durable_pg` (a running one is reused as it is).
    With `kafka_login` (administrator name, password) Apache Kafka starts secured (SASL, ACLs),
    with `kafka_tls` as well on a SASL_SSL listener whose CA file the endpoints name;
    `external_options` are the client options that log in to an external broker.
    """
    broker = choose_broker(broker)
    if kafka_login is not None and broker != "apache":
        raise InfraError(f"a secured broker (KAFKA_SECURED) needs KAFKA_BROKER=apache, not {broker}")
    if kafka_tls and kafka_login is None:
        raise InfraError("KAFKA_SECURITY_PROTOCOL=SASL_SSL for the local broker needs KAFKA_SECURED=true")
    run_dir = run_dir.resolve()
    tls = kafka_apache.tls_files(run_dir / "kafka") if kafka_tls else None
    protocol = "PLAINTEXT" if kafka_login is None else ("SASL_SSL" if tls else "SASL_PLAINTEXT")
    probe = kafka_apache.sasl_options(kafka_login, tls[0] if tls else None) if kafka_login else None
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if broker == "external" and not external_bootstrap:
        raise InfraError("KAFKA_BROKER=external needs KAFKA_BOOTSTRAP_SERVERS (host:port,...)")
    if broker == "apache":
        kafka_apache.java()
    local_pg = not database_url
    local_broker = broker != "external"
    with locked(run_dir / _LOCK):
        state = read_state(run_dir)
        state.endpoints = None
        pg_rec = _live_postgres(run_dir, state, pg_port) if local_pg else None
        if pg_rec is not None and postgres.pg_error(postgres.database_url(pg_port), 10.0):
            # Ours but not answering: restart it rather than hand out a dead endpoint.
            postgres.stop(pg_rec)
            pg_rec = None
        broker_rec = _live_broker(run_dir, state, broker, kafka_port, protocol) if local_broker else None
        if broker_rec is not None and kafka_error(f"{HOST}:{kafka_port}", 10.0, probe):
            _stop(broker_rec)
            broker_rec = None
        # Every port about to be opened is checked before anything starts: fail fast, start nothing.
        _check_ports(
            broker,
            pg_port if local_pg and pg_rec is None else None,
            kafka_port if local_broker and broker_rec is None else None,
        )

        if database_url:
            error = postgres.pg_error(database_url, timeout=10.0)
            if error is not None:
                raise InfraError(f"DATABASE_URL does not answer SELECT 1: {error}")
            db_url = database_url
        else:
            if pg_rec is None:
                state.components.pop(PG_SLOT, None)
                pg_rec = postgres.start(run_dir / "pg", pg_port, durable=durable_pg)
            state.components[PG_SLOT] = pg_rec
            write_state(run_dir, state)
            db_url = postgres.database_url(pg_port)

        if external_bootstrap and broker == "external":
            error = kafka_error(external_bootstrap, timeout=15.0, options=external_options)
            if error is not None:
                raise InfraError(
                    f"the external Kafka at {external_bootstrap} (KAFKA_BOOTSTRAP_SERVERS) "
                    f"does not answer a metadata request: {error}"
                )
            bootstrap = external_bootstrap
        else:
            if broker_rec is None:
                state.components.pop(BROKER_SLOT, None)
                broker_rec = _start_broker(run_dir, broker, kafka_port, kafka_login, tls)
            state.components[BROKER_SLOT] = broker_rec
            bootstrap = f"{HOST}:{kafka_port}"

        state.endpoints = InfraEndpoints(
            database_url=db_url,
            kafka_bootstrap_servers=bootstrap,
            broker=broker,
            kafka_security_protocol=protocol if local_broker else "PLAINTEXT",
            kafka_ssl_cafile=str(tls[0]) if tls and local_broker else "",
        )
        write_state(run_dir, state)
        return state.endpoints


def _known_records(run_dir: Path) -> list[ProcessRecord]:
    state = read_state(run_dir)
    found: list[ProcessRecord | None] = [
        state.components.get(BROKER_SLOT),
        read_record(run_dir / kafka_apache.COMPONENT / "process.json"),
        read_record(run_dir / tansu.COMPONENT / "process.json"),
        state.components.get(PG_SLOT),
        postgres.discovered(run_dir / "pg"),
    ]
    records: list[ProcessRecord] = []
    seen: set[int] = set()
    for rec in found:
        if rec is not None and rec.pid not in seen:
            seen.add(rec.pid)
            records.append(rec)
    return records


def down(run_dir: Path) -> list[str]:
    """Stop everything up() started from run_dir (brokers first); return what was stopped."""
    run_dir = run_dir.resolve()
    if not run_dir.is_dir():
        return []
    stopped: list[str] = []
    with locked(run_dir / _LOCK):
        for rec in _known_records(run_dir):
            if _stop(rec):
                stopped.append(f"stopped {rec.description}, pid {rec.pid}")
        for component in (kafka_apache.COMPONENT, tansu.COMPONENT):
            (run_dir / component / "process.json").unlink(missing_ok=True)
        remove_state(run_dir)
    return stopped


def status(run_dir: Path) -> dict[str, object]:
    """Report each recorded component of run_dir: pid, port, alive, description, log."""
    run_dir = run_dir.resolve()
    report: dict[str, object] = {}
    for rec in _known_records(run_dir):
        alive = is_ours(rec.pid, rec.marker)
        if rec.component in report and not alive:
            continue  # a stale record must not hide a live one of the same component
        report[rec.component] = {
            "pid": rec.pid,
            "port": rec.port,
            "alive": alive,
            "description": rec.description,
            "log": rec.log,
        }
    return report
