"""The simulator's closing summary, checked against the audit service's GET /v1/reports/summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from services.audit import outcomes, reports
from shared.jurisdiction import Jurisdiction
from shared.settings import Settings
from tools.psap import bearer
from tools.sim.run import Tally

# The figures both sides can count: what the simulated PSAPs and agencies were told.
COMPARED = (
    "received",
    "eligible",
    "offered",
    "accepted",
    "on_scene",
    "cleared",
    "cleared_without_police",
    "cleared_with_police",
    "backup_requests",
)


@dataclass(frozen=True)
class Line:
    """One figure as the simulator counted it and as the audit trail reports it."""

    name: str
    simulator: int
    audit: int | None

    @property
    def matches(self) -> bool:
        """Both sides counted the same."""
        return self.simulator == self.audit


def funnel(tally: Tally) -> dict[str, int]:
    """The simulator's own funnel: distinct calls at each stage, in the audit summary's terms."""
    reached = tally.reached
    stories = tally.own().values()
    police = [s.backups > 0 or outcomes.police_disposition(s.cleared_disposition) for s in stories]
    cleared = [s.cleared_disposition is not None for s in stories]
    return {
        "received": len(set(tally.call_ids)),
        "eligible": sum(route in reports.DIVERTED for route in tally.routes.values()),
        "offered": len(reached["offered"]),
        "accepted": len(reached["accepted"]),
        "on_scene": len(reached["on_scene"]),
        "cleared": sum(cleared),
        "cleared_without_police": sum(c and not p for c, p in zip(cleared, police, strict=True)),
        "cleared_with_police": sum(c and p for c, p in zip(cleared, police, strict=True)),
        "backup_requests": sum(s.backups for s in stories),
    }


def fates(tally: Tally, now: datetime) -> dict[str, int]:
    """The simulator's own count of every behavioural-health call's outcome, as `code:reason`."""
    found = outcomes.outcomes(tally.own(), now)
    return flat(outcomes.breakdown(found.values()))


def flat(breakdown: dict[str, dict[str, int]]) -> dict[str, int]:
    """Outcome code -> reason -> calls, as `code:reason` -> calls."""
    return {f"{code}:{reason}": n for code, reasons in breakdown.items() for reason, n in reasons.items()}


def missed_timers(tally: Tally) -> dict[str, dict[str, int]]:
    """The timers each agency's teams let run out, as the agencies were paged about them."""
    return reports.missed_timers(tally.own())


def compare(
    mine: dict[str, int],
    report: dict[str, Any],
    my_fates: dict[str, int] | None = None,
    my_missed: dict[str, dict[str, int]] | None = None,
) -> list[Line]:
    """The simulator's funnel, outcomes and missed timers beside the audit summary's, figure by
    figure (the PSAPs' Overdue callbacks are intake's to send, not counted here)."""
    theirs = dict(report.get("funnel", {}))
    theirs["backup_requests"] = report.get("backup_requests")
    lines = [Line(name, mine[name], theirs.get(name)) for name in COMPARED]
    if my_missed is not None:
        their_missed = report.get("missed_timers", {})
        for agency in sorted(set(my_missed) | set(their_missed)):
            for timer in reports.TIMERS:
                mine_n = my_missed.get(agency, {}).get(timer, 0)
                lines.append(
                    Line(f"missed {timer} {agency}", mine_n, their_missed.get(agency, {}).get(timer, 0))
                )
    if my_fates is None:
        return lines
    reported = report.get("outcomes", {})
    their_fates = flat(reported.get("reasons", {}))
    lines.append(Line("behavioural_health", sum(my_fates.values()), reported.get("behavioural_health")))
    for key in sorted(set(my_fates) | set(their_fates)):
        lines.append(Line(f"outcome {key}", my_fates.get(key, 0), their_fates.get(key, 0)))
    return lines


def commitment(tally: Tally) -> dict[str, float | None]:
    """The time to commitment the simulated 911 centers waited (202 to an accepting team or a
    hand-back), percentiles in real seconds, as the audit summary measures it."""
    return reports.commitment(tally.own())


def commitment_line(tally: Tally) -> str:
    """The time to commitment as one line: real seconds and the simulated minutes they stand for."""
    found = commitment(tally)
    if not found["count"]:
        return "time to commitment: no call reached an accepting team or a hand-back"
    parts = []
    for p in ("p50", "p90", "p99"):
        real = found[p] or 0.0
        parts.append(f"{p} {real:.1f} s ({real * tally.speedup / 60:.1f} simulated min)")
    what = f"time to commitment over {found['count']} calls (202 to an accepting team or a hand-back)"
    return f"{what}: {', '.join(parts)}"


def fetch_summary(
    settings: Settings, token: str, tally: Tally, wait_s: float = 60, now: datetime | None = None
) -> dict[str, Any]:
    """The audit summary of the simulated period up to `now`, once the trail has caught up (or
    after `wait_s`); review deadlines are judged as of `now` on both sides.

    Audit consumes every topic on its own: it may still be writing the last events when the
    simulation ends. The summary is read again until two readings a second apart agree.
    """
    url = f"http://{settings.http_host}:{settings.audit_port}/v1/reports/summary"
    params = {"from": tally.started_at.isoformat()}
    if now is not None:
        params["to"] = now.isoformat()
    headers = bearer(token)
    deadline = time.monotonic() + wait_s
    last: dict[str, Any] | None = None
    while True:
        r = httpx.get(url, params=params, headers=headers, timeout=10)
        r.raise_for_status()
        report: dict[str, Any] = r.json()
        if report == last or time.monotonic() > deadline:
            return report
        last = report
        time.sleep(1)


def show(settings: Settings, j: Jurisdiction, tally: Tally) -> bool:
    """Print what the simulator counted beside the audit summary; whether they agree."""
    console = Console()
    counts = Table(title="What the simulated 911 centers and agencies saw")
    counts.add_column("count")
    counts.add_column("value", justify="right")
    for key, value in sorted(tally.counts.items()):
        counts.add_row(key, str(value))
    console.print(counts)
    admin = next((o for o in j.oversight if o.role in ("admin", "oversight")), None)
    if admin is None:
        console.print("no oversight token in the jurisdiction file: the audit summary cannot be read")
        return False
    now = datetime.now(UTC)
    try:
        report = fetch_summary(settings, admin.token, tally, now=now)
    except httpx.HTTPError as exc:
        console.print(f"audit summary not readable: {exc!r}")
        return False
    lines = compare(funnel(tally), report, fates(tally, now), missed_timers(tally))
    table = Table(title=f"Simulator against GET /v1/reports/summary?from={tally.started_at.isoformat()}")
    for column in ("figure", "simulator", "audit", ""):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for line in lines:
        table.add_row(line.name, str(line.simulator), str(line.audit), "ok" if line.matches else "DIFFERS")
    console.print(table)
    console.print_json(
        data={k: report[k] for k in ("hand_backs", "overrides", "missed_timers") if k in report}
    )
    console.print(commitment_line(tally))
    agree = all(line.matches for line in lines)
    console.print(
        "the simulator and the audit trail agree" if agree else "the simulator and the audit trail DIFFER"
    )
    return agree
