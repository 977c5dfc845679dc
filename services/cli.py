"""The `careroute` command line: run services, load a jurisdiction, manage local infrastructure."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from shared import infra
from shared.jurisdiction import JurisdictionError, load_file
from shared.logging import configure_logging
from shared.settings import SERVICE_NAMES, Settings

app = typer.Typer(help="careroute: divert crisis calls to community teams, with an audit trail.")


@app.callback()
def _quiet_logs() -> None:
    """Commands print their own results; library logs only when something is wrong."""
    configure_logging("WARNING", json=False)


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
    main(services or list(SERVICE_NAMES))


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="the jurisdiction YAML file", exists=False)],
    check: Annotated[bool, typer.Option("--check", help="validate only; store nothing")] = False,
) -> None:
    """Load a jurisdiction file (idempotent).

    Stores PSAPs, agencies, teams, oversight bodies, tokens and triage rules in every service's
    schema in one transaction, and creates each agency's topic. Secrets may be written `env:NAME`.
    Loading again updates what changed and keeps team statuses.
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
        f"{len(j.teams)} teams, {len(j.oversight)} oversight, rules {j.triage.version}"
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
    """Start the local PostgreSQL and broker (reused when already running)."""
    settings = Settings()
    chosen = infra.choose_broker(broker or os.environ.get("KAFKA_BROKER") or settings.kafka_broker)
    try:
        endpoints = infra.up(
            settings.run_dir,
            chosen,
            pg_port=settings.local_pg_port,
            kafka_port=settings.local_kafka_port,
            database_url=os.environ.get("DATABASE_URL"),
            external_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") if chosen == "external" else None,
        )
    except infra.InfraError as exc:
        typer.echo(f"careroute infra up: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"broker      {endpoints.broker} at {endpoints.kafka_bootstrap_servers}")
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


@app.command()
def demo(
    broker: Annotated[str, typer.Option(help="apache | tansu | external")] = "tansu",
    jurisdiction: Annotated[Path, typer.Option(help="jurisdiction file")] = Path("examples/lane-valley.yaml"),
    keep_running: Annotated[bool, typer.Option(help="wait for Ctrl-C at the end")] = True,
) -> None:
    """Start everything, load the example, drive a short scenario, and keep running until Ctrl-C."""
    from services import demo as scenario

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
    from sim.report import show
    from sim.run import Simulation
    from sim.scenario import Options, plan_day

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
