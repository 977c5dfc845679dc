"""The `careroute` command line: services, migrations, jurisdiction, infra, dead letters, rules, reports."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import typer

from services.intake import addresses
from services.jurisdiction import load_file
from shared import db, dead_letters
from shared.db import create_pool
from shared.jurisdiction import JurisdictionError
from shared.kafka import security_options
from shared.logging import configure_logging
from shared.settings import SERVICE_NAMES, Settings
from tools import infra

T = TypeVar("T")

app = typer.Typer(help="careroute: divert crisis calls to community teams, with an audit trail.")


@app.callback()
def _quiet_logs() -> None:
    """Commands print their own results; library logs only when something is wrong."""
    configure_logging("WARNING", json=False)


def _schema(service: str, command: str) -> str:
    """A service's schema (each is named after its service); exit status 2 for an unknown service."""
    if service not in SERVICE_NAMES:
        typer.echo(
            f"careroute {command}: unknown service {service!r}; choose from {', '.join(SERVICE_NAMES)}",
            err=True,
        )
        raise typer.Exit(2)
    return service


infra_app = typer.Typer(help="Start, stop and inspect the local broker and PostgreSQL.")
app.add_typer(infra_app, name="infra")


def _settings() -> Settings:
    """Settings from the environment, with the local infrastructure's endpoints when it runs."""
    settings = Settings()
    endpoints = infra.read_endpoints(settings.run_dir)
    if endpoints is not None:
        updates: dict[str, object] = {}
        if "DATABASE_URL" not in os.environ:
            updates["database_url"] = endpoints.database_url
        if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
            updates["kafka_bootstrap_servers"] = endpoints.kafka_bootstrap_servers
        if "KAFKA_BROKER" not in os.environ:
            updates["kafka_broker"] = endpoints.broker
        if "KAFKA_SECURITY_PROTOCOL" not in os.environ:
            updates["kafka_security_protocol"] = endpoints.kafka_security_protocol
        if "KAFKA_SSL_CAFILE" not in os.environ and endpoints.kafka_ssl_cafile:
            updates["kafka_ssl_cafile"] = endpoints.kafka_ssl_cafile
        settings = Settings(**{**settings.model_dump(), **updates})
    return settings


@app.command()
def run(
    services: Annotated[list[str] | None, typer.Argument(help="intake matching notify audit")] = None,
) -> None:
    """Run the named services (all four by default) in this process until Ctrl-C or SIGTERM."""
    from services.main import main

    settings = _settings()
    os.environ.setdefault("DATABASE_URL", settings.database_url.get_secret_value())
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    os.environ.setdefault("KAFKA_BROKER", settings.kafka_broker)
    os.environ.setdefault("KAFKA_SECURITY_PROTOCOL", settings.kafka_security_protocol)
    if settings.kafka_ssl_cafile is not None:
        os.environ.setdefault("KAFKA_SSL_CAFILE", str(settings.kafka_ssl_cafile))
    main(services or list(SERVICE_NAMES))


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="the jurisdiction YAML file", exists=False)],
    check: Annotated[bool, typer.Option("--check", help="validate only; store nothing")] = False,
) -> None:
    """Load a jurisdiction file (idempotent).

    Stores PSAPs, agencies, teams, oversight bodies, tokens and triage rules in every service's
    schema in one transaction, and creates each agency's topic; audit keeps the time zone, the
    teams' shifts and capacities and the `zones:` (named [lon, lat] polygons) its reports read.
    Secrets may be written `env:NAME`. Loading again updates what changed and keeps team statuses.
    """
    from services import loader

    try:
        jurisdiction = load_file(file)
    except JurisdictionError as exc:
        typer.echo(f"careroute load: {exc}", err=True)
        raise typer.Exit(2) from exc
    if check:
        typer.echo(f"{file}: valid")
        return
    asyncio.run(loader.load(_settings(), jurisdiction))
    j = jurisdiction
    typer.echo(
        f"loaded {j.jurisdiction.name}: {len(j.psaps)} PSAPs, {len(j.agencies)} agencies, "
        f"{len(j.teams)} teams, {len(j.oversight)} oversight, {len(j.zones)} zones, rules {j.triage.version}"
    )


async def _load_addresses(settings: Settings, name: str, text: str, fmt: addresses.FileFormat) -> str:
    from services.intake import address_store
    from services.loader import MIGRATIONS

    points = addresses.read_points(name, text, fmt)
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        await db.migrate(pool, "intake", [MIGRATIONS["intake"]])
        loaded = await address_store.replace_points(pool, points, name, fmt, addresses.digest(text))
    finally:
        await pool.close()
    replaced = f", replacing set {loaded.replaced}" if loaded.replaced is not None else ""
    counts = f"{loaded.points:,} points on {loaded.streets:,} streets"
    return f"loaded address set {loaded.set_id}: {counts}{replaced}"


@app.command("load-addresses")
def load_addresses(
    file: Annotated[Path, typer.Argument(help="NENA NG911 GIS GeoJSON or OpenAddresses CSV")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="nena-geojson, openaddresses-csv or openaddresses-geojsonl (default: by name and content)",
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="read and validate only; store nothing")] = False,
) -> None:
    """Load the jurisdiction's address points, which intake geocodes civic addresses against.

    GeoJSON features in the NENA NG911 GIS Data Model's field names (NENA-STA-006: Add_Number,
    AddNum_Suf, St_PreDir, St_PreTyp, St_Name, St_PosTyp, St_PosDir, Unit, Inc_Muni, Post_Comm,
    State, Post_Code; Point geometry or Lat/Long), or OpenAddresses' CSV (LON,LAT,NUMBER,STREET,
    UNIT,CITY,DISTRICT,REGION,POSTCODE) or GeoJSON lines (one Point Feature a line). The whole
    file is read and checked first: a bad one is refused naming its line or feature (exit status
    2) and stores nothing. Loading again replaces the set in one transaction; running intakes
    pick the new one up with their next call.
    """
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"careroute load-addresses: {file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        chosen = addresses.file_format(fmt) if fmt else addresses.detect_format(file.name, text[:1024])
        if check:
            points = addresses.read_points(file.name, text, chosen)
            typer.echo(f"{file}: valid, {len(points):,} address points")
            return
        typer.echo(asyncio.run(_load_addresses(_settings(), file.name, text, chosen)))
    except addresses.AddressFileError as exc:
        typer.echo(f"careroute load-addresses: {file}: {exc}", err=True)
        raise typer.Exit(2) from exc


async def _migrate(settings: Settings, schemas: list[str], check: bool) -> list[tuple[str, list[str]]]:
    from services.loader import MIGRATIONS

    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        step = db.pending if check else db.migrate
        return [(schema, await step(pool, schema, [MIGRATIONS[schema]])) for schema in schemas]
    finally:
        await pool.close()


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="intake matching notify audit")] = None,
    check: Annotated[bool, typer.Option("--check", help="list pending migrations; apply nothing")] = False,
) -> None:
    """Apply the named services' migrations (every service's by default) and print what was applied.

    Services apply their own at start; this runs them ahead, e.g. in a deploy pipeline. A migration
    edited after it was applied is refused (exit status 1). With --check nothing changes: it lists
    what is pending and exits 1 when anything is, 0 when every schema is up to date.
    """
    schemas = [_schema(name, "migrate") for name in services or []] or list(SERVICE_NAMES)
    try:
        results = asyncio.run(_migrate(_settings(), schemas, check))
    except db.MigrationError as exc:
        typer.echo(f"careroute migrate: {exc}", err=True)
        raise typer.Exit(1) from exc
    for schema, versions in results:
        for version in versions:
            typer.echo(f"{schema:<8} {'pending' if check else 'applied'} {version}")
    count = sum(len(versions) for _, versions in results)
    if check:
        typer.echo(f"{count} migrations pending" if count else "every schema is up to date")
        if count:
            raise typer.Exit(1)
    else:
        typer.echo(f"{count} migrations applied")


@app.command("kafka-acls")
def kafka_acls(
    file: Annotated[Path, typer.Argument(help="the jurisdiction YAML file", exists=False)],
    check: Annotated[bool, typer.Option("--check", help="print the grants; change nothing")] = False,
) -> None:
    """Give the broker the jurisdiction's principals and ACLs (idempotent; run as the broker's administrator).

    Creates every topic (events, dead letters, agency topics), a SCRAM user for each service with
    its own password (INTAKE_KAFKA_SASL_PASSWORD, ...) and each agency with a `kafka` block, and
    ACLs: a service reads what it consumes in its own group and writes what it produces; an agency
    reads only agency.<id>.assignments.v1 in groups agency.<id>.*. Any other ALLOW grant on
    careroute's topics and groups is revoked (an agency dropped from the file loses its own).
    Log in as a super user: KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD.
    """
    from confluent_kafka import KafkaException

    from services import kafka_access

    try:
        jurisdiction = load_file(file)
    except JurisdictionError as exc:
        typer.echo(f"careroute kafka-acls: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = _settings()
    if check:
        typer.echo("\n".join(kafka_access.describe(settings, jurisdiction)))
        return
    if not settings.kafka_secured_protocol():
        typer.echo(
            "careroute kafka-acls: the broker is not secured (KAFKA_SECURITY_PROTOCOL=PLAINTEXT)", err=True
        )
        raise typer.Exit(2)
    try:
        applied = kafka_access.apply(settings, jurisdiction)
    except (ValueError, KafkaException) as exc:
        typer.echo(f"careroute kafka-acls: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{len(applied.topics_created)} topics created, {len(applied.users)} SCRAM users set, "
        f"{applied.grants} ACLs granted, {applied.revoked} revoked"
    )


@app.command()
def verify(
    key: Annotated[str, typer.Option(help="the log's verifier key, or a file holding it")],
    export: Annotated[Path, typer.Option(help="a JSON Lines export (GET /v1/audit/export)")],
    checkpoint: Annotated[list[Path] | None, typer.Option(help="a checkpoint you kept (repeatable)")] = None,
    server: Annotated[str, typer.Option(help="also ask this audit service for proofs")] = "",
    token: Annotated[str, typer.Option(help="oversight bearer token for --server")] = "",
    sample: Annotated[int, typer.Option(help="rows whose inclusion proofs to check")] = 10,
) -> None:
    """Check an audit export offline: the hash chain, and the Merkle tree against kept checkpoints.

    Needs only the public key, the export and the checkpoints you kept; with --server it also checks
    that the server's latest checkpoint extends yours and that sampled rows are proven in it.
    Exit status: 0 intact, 1 tampering found, 2 unusable input.
    """
    import httpx

    from services.audit.note import NoteError, VerifierKey
    from services.audit.verifier import VerifyError, check_server, verify_export

    try:
        vkey = VerifierKey.decode(Path(key).read_text() if Path(key).is_file() else key)
        notes = [p.read_text() for p in checkpoint or []]
        with export.open() as lines:
            report = verify_export(lines, notes, vkey)
        if server:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with httpx.Client(base_url=server, headers=headers, timeout=30) as client, export.open() as lines:
                report.problems += check_server(client, vkey, notes, lines, sample)
    except (NoteError, VerifyError, OSError, httpx.HTTPError) as exc:
        typer.echo(f"careroute verify: {exc}", err=True)
        raise typer.Exit(2) from exc
    v = report.verdict
    typer.echo(f"rows checked: {v.checked}; checkpoints kept: {len(report.checkpoints)}")
    if not v.ok:
        typer.echo(f"TAMPERED at seq {v.first_bad_seq}: {v.reason}")
    for problem in report.problems:
        typer.echo(f"TAMPERED: {problem}")
    if not report.ok:
        raise typer.Exit(1)
    typer.echo("ok: the export is intact and consistent with every kept checkpoint")


@infra_app.command("up")
def infra_up(
    broker: Annotated[str, typer.Option(help="apache | tansu | external | auto")] = "",
) -> None:
    """Start the local PostgreSQL and broker (reused when already running).

    KAFKA_SECURED=true starts Apache Kafka with a SASL_PLAINTEXT SCRAM-SHA-512 listener and ACLs
    (SASL_SSL with a CA of its own when KAFKA_SECURITY_PROTOCOL=SASL_SSL); its administrator is
    KAFKA_SASL_USERNAME (default admin) with KAFKA_SASL_PASSWORD.
    """
    settings = Settings()
    chosen = infra.choose_broker(broker or os.environ.get("KAFKA_BROKER") or settings.kafka_broker)
    login = None
    if settings.kafka_secured:
        login = (settings.kafka_sasl_username or "admin", settings.kafka_sasl_password.get_secret_value())
    try:
        endpoints = infra.up(
            settings.run_dir,
            chosen,
            pg_port=settings.local_pg_port,
            kafka_port=settings.local_kafka_port,
            database_url=os.environ.get("DATABASE_URL"),
            external_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") if chosen == "external" else None,
            kafka_login=login,
            kafka_tls=settings.kafka_security_protocol == "SASL_SSL" and chosen != "external",
            external_options=security_options(settings) if chosen == "external" else None,
        )
    except (infra.InfraError, ValueError) as exc:
        typer.echo(f"careroute infra up: {exc}", err=True)
        raise typer.Exit(1) from exc
    secured = (
        "" if endpoints.kafka_security_protocol == "PLAINTEXT" else f" ({endpoints.kafka_security_protocol})"
    )
    typer.echo(f"broker      {endpoints.broker} at {endpoints.kafka_bootstrap_servers}{secured}")
    typer.echo(f"postgresql  {endpoints.database_url}")
    typer.echo(f"run folder  {settings.run_dir.resolve()}")


@infra_app.command("down")
def infra_down() -> None:
    """Stop everything `infra up` started; nothing is left running."""
    stopped = infra.down(Settings().run_dir)
    typer.echo("\n".join(stopped) if stopped else "nothing was running")


@infra_app.command("status")
def infra_status() -> None:
    """Show what runs from the run folder."""
    for name, state in infra.status(Settings().run_dir).items():
        typer.echo(f"{name:<10} {state}")


dead_letters_app = typer.Typer(help="Inspect and replay the events consumers could not process.")
app.add_typer(dead_letters_app, name="dead-letters")


def _schemas(service: str) -> list[str]:
    """The schemas to look in: one service's, or every service's."""
    return [_schema(service, "dead-letters")] if service else list(SERVICE_NAMES)


async def _list_letters(settings: Settings, schemas: list[str]) -> list[tuple[str, dead_letters.Letter]]:
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        found = []
        for schema in schemas:
            if await dead_letters.has_table(pool, schema):
                found += [(schema, letter) for letter in await dead_letters.list_letters(pool, schema)]
        return found
    finally:
        await pool.close()


async def _replay(
    settings: Settings, schemas: list[str], ids: list[int] | None
) -> list[tuple[str, dead_letters.Letter]]:
    from shared.kafka import make_producer

    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    producer = make_producer(settings)
    await producer.start()
    try:
        replayed = []
        for schema in schemas:
            if await dead_letters.has_table(pool, schema):
                replayed += [
                    (schema, letter) for letter in await dead_letters.replay(pool, schema, producer, ids)
                ]
        return replayed
    finally:
        await producer.stop()
        await pool.close()


def _show(service: str, letter: dead_letters.Letter) -> str:
    state = "open"
    if letter.resumed_at is not None:
        state = f"replayed {letter.replayed_at:%Y-%m-%d %H:%M:%S}, back"
    elif letter.replayed_at is not None:
        state = f"replayed {letter.replayed_at:%Y-%m-%d %H:%M:%S}, on its way"
    origin = f"{letter.origin_topic}[{letter.origin_partition}]@{letter.origin_offset}"
    return (
        f"{service:<8} {letter.id:>6} {letter.dead_lettered_at:%Y-%m-%d %H:%M:%S} {letter.reason:<11}"
        f" {letter.subject or '-'} {letter.event_type or '-'} {letter.event_id or '-'} {origin}"
        f" [{state}] {letter.error[:200]}"
    )


@dead_letters_app.command("list")
def dead_letters_list(
    service: Annotated[
        str, typer.Option(help="one service (intake matching notify audit); all by default")
    ] = "",
    open_only: Annotated[bool, typer.Option("--open", help="only letters not replayed yet")] = False,
) -> None:
    """List dead letters: service, id, when, reason, subject, type, event id, origin, state, error."""
    letters = asyncio.run(_list_letters(_settings(), _schemas(service)))
    shown = [(s, letter) for s, letter in letters if not open_only or letter.replayed_at is None]
    for schema, letter in shown:
        typer.echo(_show(schema, letter))
    opened = sum(1 for _, letter in letters if letter.replayed_at is None)
    typer.echo(f"{len(letters)} dead letters, {opened} open")


@dead_letters_app.command("replay")
def dead_letters_replay(
    service: Annotated[
        str, typer.Option(help="one service (intake matching notify audit); all by default")
    ] = "",
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="a letter to replay (repeatable; needs --service)")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every open letter")] = False,
) -> None:
    """Publish open dead letters again to their origin topic once their cause is fixed.

    Each copy keeps the original value, key and event id, and goes to the partition it came from,
    in the original order per subject; with --id, every other open letter of the same subjects
    comes along. The service's consumer applies the copies and lifts the subject's park; every
    other consumer group drops them. A letter already replayed is not replayed again.
    """
    if bool(ids) == all_:
        typer.echo("careroute dead-letters replay: give --id N (one or more) or --all", err=True)
        raise typer.Exit(2)
    if ids and not service:
        typer.echo("careroute dead-letters replay: --id needs --service (ids are per service)", err=True)
        raise typer.Exit(2)
    replayed = asyncio.run(_replay(_settings(), _schemas(service), ids or None))
    for schema, letter in replayed:
        typer.echo(_show(schema, letter))
    typer.echo(f"{len(replayed)} dead letters replayed")


rules_app = typer.Typer(
    help="What another rule set would route differently, before a region changes its rules."
)
app.add_typer(rules_app, name="rules")


def _moment(text: str, option: str, command: str = "rules") -> datetime | None:
    """An ISO 8601 time from an option (UTC when it names no zone); exit status 2 for anything else."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"careroute {command}: {option} {text!r} is not an ISO 8601 time", err=True)
        raise typer.Exit(2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period(since: str, until: str) -> tuple[datetime | None, datetime | None]:
    start, end = _moment(since, "--from"), _moment(until, "--to")
    if start and end and start >= end:
        typer.echo("careroute rules: --from must be before --to", err=True)
        raise typer.Exit(2)
    return start, end


async def _read(settings: Settings, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    conn = await db.connect(settings.database_url.get_secret_value())
    try:
        return await read(conn)
    finally:
        await conn.close()


Since = Annotated[str, typer.Option("--from", help="first moment of the period (ISO 8601; UTC by default)")]
Until = Annotated[str, typer.Option("--to", help="end of the period, excluded")]


@rules_app.command("shadow")
def rules_shadow(since: Since = "", until: Until = "") -> None:
    """Calls received in the period whose shadow rule set's decision differs from the active one,
    by pair of routes, with their call ids (from audit's trail, as GET /v1/reports/shadow)."""
    from services.audit import repository as trail
    from services.audit import shadow

    start, end = _period(since, until)
    events = asyncio.run(_read(_settings(), lambda conn: trail.report_events(conn, start, end)))
    typer.echo(shadow.render(shadow.differences(shadow.from_trail(events))))


@rules_app.command("evaluate")
def rules_evaluate(
    draft: Annotated[
        Path, typer.Argument(help="a draft rule file (a triage section, or a jurisdiction file)")
    ],
    since: Since = "",
    until: Until = "",
    psap: Annotated[
        str, typer.Option(help="only this PSAP's calls (a region growing one PSAP at a time)")
    ] = "",
) -> None:
    """Triage the calls intake stored in the period again with a draft rule file (inside intake's
    own schema, nothing leaves it) and print how many it would route differently, by pair of routes."""
    from services.audit import shadow
    from services.intake import drafts
    from services.intake import repository as calls

    start, end = _period(since, until)
    try:
        rules = drafts.parse_draft(draft.read_text())
    except (OSError, drafts.DraftError) as exc:
        typer.echo(f"careroute rules evaluate: {draft}: {exc}", err=True)
        raise typer.Exit(2) from None
    rows, timezone = asyncio.run(
        _read(_settings(), lambda conn: calls.stored_calls(conn, start, end, psap or None))
    )
    judged = [
        shadow.Compared(j.call_id, j.active, j.draft, j.active_version, j.draft_version)
        for j in drafts.judge(rows, rules, timezone)
    ]
    typer.echo(shadow.render(shadow.differences(judged), other="draft"))


reports_app = typer.Typer(help="The oversight reports audit serves, read from its trail directly.")
app.add_typer(reports_app, name="reports")


def _report(command: str, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """A report read from audit's schema; exit status 2 with what is wrong for a refused period or level."""
    from shared.domain_errors import Invalid

    try:
        return asyncio.run(_read(_settings(), read))
    except Invalid as exc:
        typer.echo(f"careroute reports {command}: {exc.detail} ({exc.code})", err=True)
        raise typer.Exit(2) from None


@reports_app.command("areas")
def reports_areas(since: Since = "", until: Until = "") -> None:
    """Behavioural-health calls of the period by zone and local hour: diversion, police-involvement
    and hand-back rates, time to a team on scene; cells under 11 calls withheld (as
    GET /v1/reports/areas)."""
    from services.audit import areas, handlers

    start, end = _moment(since, "--from", "reports"), _moment(until, "--to", "reports")
    typer.echo(areas.render(_report("areas", lambda conn: handlers.area_report(conn, start, end))))


@reports_app.command("workforce")
def reports_workforce(
    since: Annotated[
        str, typer.Option("--from", help="first moment of the period (ISO 8601; UTC by default)")
    ],
    until: Annotated[str, typer.Option("--to", help="end of the period, excluded")],
    target: Annotated[float, typer.Option(help="share of eligible calls that must get a team in time")] = 0.9,
    within_min: Annotated[float, typer.Option(help="minutes a call may wait for a team")] = 15.0,
) -> None:
    """For each hour of the week: eligible calls per hour, the teams Erlang C needs so that `target`
    of them wait at most `within_min` for one, the teams on shift and the shortfall (as
    GET /v1/reports/workforce)."""
    from services.audit import handlers, workforce

    start, end = _moment(since, "--from", "reports"), _moment(until, "--to", "reports")
    report = _report(
        "workforce", lambda conn: handlers.workforce_report(conn, start, end, target, within_min)
    )
    typer.echo(workforce.render(report))


@app.command()
def demo(
    broker: Annotated[str, typer.Option(help="apache | tansu | external")] = "tansu",
    jurisdiction: Annotated[Path, typer.Option(help="jurisdiction file")] = Path("examples/lane-valley.yaml"),
    keep_running: Annotated[bool, typer.Option(help="wait for Ctrl-C at the end")] = True,
) -> None:
    """Start everything, load the example, drive a short scenario, and keep running until Ctrl-C."""
    from tools import demo as scenario

    raise typer.Exit(scenario.main(broker, jurisdiction, keep_running=keep_running))


@app.command()
def simulate(
    jurisdiction: Annotated[Path, typer.Option(help="the jurisdiction file the system runs")] = Path(
        "examples/lane-valley.yaml"
    ),
    hours: Annotated[float, typer.Option(help="simulated hours to play")] = 1.0,
    speedup: Annotated[float, typer.Option(help="simulated seconds per real second")] = 60.0,
    calls_per_hour: Annotated[float, typer.Option(help="mean calls per hour over a day")] = 120.0,
    start_hour: Annotated[float, typer.Option(help="simulated time of day to start at")] = 8.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same calls")] = 1,
    drain: Annotated[float, typer.Option(help="real seconds to wait for answers after the last call")] = 60.0,
) -> None:
    """Play a jurisdiction's day against the running system: 911 centers call, agencies answer."""
    from tools.sim.report import show
    from tools.sim.run import Simulation
    from tools.sim.scenario import Options, plan_day

    try:
        j = load_file(jurisdiction)
    except JurisdictionError as exc:
        typer.echo(f"careroute simulate: {exc}", err=True)
        raise typer.Exit(2) from exc
    if speedup <= 0 or hours <= 0 or calls_per_hour <= 0:
        typer.echo("careroute simulate: hours, speedup and calls-per-hour must be positive", err=True)
        raise typer.Exit(2)
    options = Options(calls_per_hour=calls_per_hour, hours=hours, start_hour=start_hour)
    lat = sum(t.home.lat for t in j.teams) / len(j.teams)
    lon = sum(t.home.lon for t in j.teams) / len(j.teams)
    plan = plan_day(seed, options, [p.id for p in j.psaps], (lat, lon, 0.05))
    typer.echo(f"{len(plan.calls)} calls over {hours:g} simulated hours at {speedup:g}x")
    settings = _settings()
    tally = asyncio.run(Simulation(settings, j, plan, options, speedup, seed).run(drain))
    if not show(settings, j, tally):
        raise typer.Exit(1)
