"""Who is left to police: behavioural-health calls by zone and hour of day, small cells withheld. Pure.

A call's zone is found here from the position the full trail holds, and only the zone's name
leaves audit; a cell of fewer than MIN_CELL calls shows no figure at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from services.audit import outcomes
from services.audit.reports import percentiles
from services.audit.stories import CallStory
from shared.jurisdiction import UNLOCATED, UNZONED, Zone

# The cell-size rule public health agencies publish by: fewer calls than this identify people.
MIN_CELL = 11
HOURS = range(24)
# What a cell tells; a withheld cell tells none of it.
FIGURES = ("calls", "diversion_rate", "police_involvement_rate", "hand_back_rate", "call_to_on_scene_s")


def position_of(location: Any) -> tuple[float, float] | None:
    """(lat, lon) of a call's location payload; None when it has none (no coordinates, or a row
    of another shape)."""
    if not isinstance(location, Mapping) or location.get("coordinates_known") is False:
        return None
    lat, lon = location.get("lat"), location.get("lon")
    if isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return (float(lat), float(lon)) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def zone_of(position: tuple[float, float] | None, zones: Sequence[Zone]) -> str:
    """The name of the first zone holding the position; `unzoned` outside them all, `unlocated`
    without a position."""
    if position is None:
        return UNLOCATED
    lat, lon = position
    return next((z.name for z in zones if z.contains(lat, lon)), UNZONED)


def withheld(
    counts: Sequence[int], already: Sequence[bool] | None = None, minimum: int = MIN_CELL
) -> list[bool]:
    """Which cells of a line whose total is published to withhold: those `already` withheld, each
    under `minimum`, then the smallest others too until the withheld cells hold none or at least
    `minimum` calls together, so subtracting the shown cells from the total never tells a
    withheld cell's count."""
    hidden = [n < minimum or bool(already and already[i]) for i, n in enumerate(counts)]
    while 0 < sum(n for n, h in zip(counts, hidden, strict=True) if h) < minimum and not all(hidden):
        smallest = min((i for i, h in enumerate(hidden) if not h), key=lambda i: (counts[i], i))
        hidden[smallest] = True
    return hidden


@dataclass
class Suppressed:
    """Which figures of a table of counts are withheld: its cells, row totals, column totals, and
    the grand total."""

    cells: list[list[bool]]
    rows: list[bool]
    columns: list[bool]
    grand: bool


def suppression(table: Sequence[Sequence[int]], minimum: int = MIN_CELL) -> Suppressed:
    """What to withhold of a rows x columns table of counts published with its row, column and
    grand totals: every line (a row, a column, the row totals, the column totals) obeys `withheld`
    and a withheld total withholds its whole line, repeated until nothing changes."""
    rows = [sum(r) for r in table]
    columns = [sum(c) for c in zip(*table, strict=True)] if table else []
    grand = sum(rows) < minimum
    found = Suppressed([[grand] * len(r) for r in table], [grand] * len(rows), [grand] * len(columns), grand)
    while True:
        before = repr(found)
        found.rows = withheld(rows, found.rows, minimum)
        found.columns = withheld(columns, found.columns, minimum)
        for i, row in enumerate(table):
            found.cells[i] = [True] * len(row) if found.rows[i] else withheld(row, found.cells[i], minimum)
        for j, hide in enumerate(found.columns):
            column = [row[j] for row in table]
            mask = [True] * len(column) if hide else withheld(column, [c[j] for c in found.cells], minimum)
            for i, m in enumerate(mask):
                found.cells[i][j] = m
        if repr(found) == before:
            return found


@dataclass
class Tally:
    """One cell's behavioural-health calls and what became of them."""

    calls: int = 0
    diverted: int = 0
    police: int = 0
    handed_back: int = 0
    on_scene_s: list[float] = field(default_factory=list)

    def add(self, story: CallStory, fate: outcomes.Outcome) -> None:
        """Count one call: diverted when a community team served it with no police; police
        involved when it was served with police or its route is police; handed back by matching."""
        self.calls += 1
        self.diverted += fate.code == "served_without_police"
        self.police += fate.code == "served_with_police" or story.route == "police"
        self.handed_back += fate.code == "handed_back"
        if story.on_scene_at is not None and story.received_at is not None:
            self.on_scene_s.append((story.on_scene_at - story.received_at).total_seconds())

    def merged(self, other: Tally) -> Tally:
        """The two cells' calls together."""
        return Tally(
            self.calls + other.calls,
            self.diverted + other.diverted,
            self.police + other.police,
            self.handed_back + other.handed_back,
            self.on_scene_s + other.on_scene_s,
        )


def _total(tallies: Sequence[Tally]) -> Tally:
    found = Tally()
    for t in tallies:
        found = found.merged(t)
    return found


def cell(tally: Tally, hidden: bool) -> dict[str, Any]:
    """A cell's figures, or none of them when it is withheld."""
    if hidden:
        return {"suppressed": True, **dict.fromkeys(FIGURES)}
    times = percentiles(tally.on_scene_s)
    n = tally.calls
    return {
        "suppressed": False,
        "calls": n,
        "diversion_rate": round(tally.diverted / n, 4) if n else None,
        "police_involvement_rate": round(tally.police / n, 4) if n else None,
        "hand_back_rate": round(tally.handed_back / n, 4) if n else None,
        "call_to_on_scene_s": {"count": times["count"], "p50": times["p50"], "p90": times["p90"]},
    }


def areas(
    calls: Mapping[str, CallStory],
    fates: Mapping[str, outcomes.Outcome],
    zone_by_call: Mapping[str, str],
    zones: Sequence[str],
    tz: ZoneInfo,
) -> dict[str, Any]:
    """The behavioural-health calls (those with a fate) by zone and by the local hour they came in:
    every zone, then `unzoned` and `unlocated`, each over all hours and hour by hour, the hours over
    all zones, and all calls; every figure a cell of under MIN_CELL calls would tell withheld."""
    names = [*zones, UNZONED, UNLOCATED]
    tallies = [[Tally() for _ in HOURS] for _ in names]
    for call, fate in fates.items():
        story = calls[call]
        if story.received_at is None:
            continue
        zone = zone_by_call.get(call, UNLOCATED)
        row = names.index(zone) if zone in names else names.index(UNZONED)
        tallies[row][story.received_at.astimezone(tz).hour].add(story, fate)
    hidden = suppression([[t.calls for t in row] for row in tallies])
    by_hour = [_total([row[h] for row in tallies]) for h in HOURS]
    return {
        "min_cell": MIN_CELL,
        "total": cell(_total(by_hour), hidden.grand),
        "zones": [
            {
                "zone": name,
                "total": cell(_total(tallies[i]), hidden.rows[i]),
                "hours": [{"hour": h, **cell(tallies[i][h], hidden.cells[i][h])} for h in HOURS],
            }
            for i, name in enumerate(names)
        ],
        "hours": [{"hour": h, **cell(by_hour[h], hidden.columns[h])} for h in HOURS],
    }


def _line(zone: str, hour: str, figures: Mapping[str, Any]) -> str:
    if figures["suppressed"]:
        return f"{zone:<16} {hour:>4}  withheld (fewer than {MIN_CELL} calls, or would tell one)"
    times = figures["call_to_on_scene_s"]
    on_scene = "-" if times["p50"] is None else f"{times['p50'] / 60:.1f}/{times['p90'] / 60:.1f}"
    return (
        f"{zone:<16} {hour:>4} {figures['calls']:>6} {figures['diversion_rate']:>9.1%}"
        f" {figures['police_involvement_rate']:>7.1%} {figures['hand_back_rate']:>12.1%} {on_scene:>14}"
    )


def render(report: Mapping[str, Any]) -> str:
    """The area report as a plain-text table: all calls, each zone over all hours and in each hour
    it shows, then each hour over all zones; withheld hours are counted, not listed."""
    lines = [
        f"behavioural-health calls by zone and local hour ({report['timezone']}); cells under"
        f" {report['min_cell']} calls are withheld",
        f"{'zone':<16} {'hour':>4} {'calls':>6} {'diverted':>9} {'police':>7} {'handed back':>12}"
        f" {'on scene p50/p90 min':>14}",
        _line("all", "all", report["total"]),
    ]
    for zone in report["zones"]:
        lines.append(_line(zone["zone"], "all", zone["total"]))
        lines += [_line(zone["zone"], f"{h['hour']:02d}", h) for h in zone["hours"] if not h["suppressed"]]
    lines += [_line("all", f"{h['hour']:02d}", h) for h in report["hours"] if not h["suppressed"]]
    return "\n".join(lines)
