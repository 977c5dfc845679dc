"""The simulator's closing summary, beside the audit service's own report when it has one."""

from __future__ import annotations

import httpx
from rich.console import Console
from rich.table import Table

from shared.jurisdiction import Jurisdiction
from shared.settings import Settings
from sim.run import Tally


def show(settings: Settings, j: Jurisdiction, tally: Tally) -> None:
    """Print what the simulator counted and, if served, GET /v1/reports/summary."""
    table = Table(title="What the simulated 911 centers and agencies saw")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in sorted(tally.counts.items()):
        table.add_row(key, str(value))
    console = Console()
    console.print(table)
    admin = next((o for o in j.oversight if o.role == "admin"), None)
    if admin is None:
        return
    url = f"http://{settings.http_host}:{settings.audit_port}/v1/reports/summary"
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {admin.token}"}, timeout=10)
    except httpx.HTTPError as exc:
        console.print(f"audit summary not reachable: {exc}")
        return
    if r.status_code != 200:
        console.print(f"audit summary: HTTP {r.status_code} from {url}")
        return
    console.print_json(r.text)
