"""What a rule set would change: calls whose shadow (or draft) decision differs from the active one. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.audit.stories import readable


@dataclass(frozen=True)
class Compared:
    """One call's route under the rules in force and under the other rule set."""

    call_id: str
    active: str
    other: str
    active_version: str = ""
    other_version: str = ""


def from_trail(events: Iterable[Mapping[str, Any]]) -> list[Compared]:
    """Each call's latest triage beside the shadow rule set's decision recorded with it.

    A decision a call-taker's override set (the override itself, or one it still stands in) is a
    person's, not a rule set's: it is skipped, so the comparison is always rules against rules.
    """
    last: dict[str, Compared] = {}
    for subject, kind, data, _ in readable(events):
        shadow = data.get("shadow_decision")
        if kind not in ("calls.received.v1", "calls.updated.v1") or not isinstance(shadow, dict):
            continue
        decision = data.get("decision")
        decision = decision if isinstance(decision, dict) else {}
        codes = decision.get("codes")
        codes = codes if isinstance(codes, list) else []
        if any(isinstance(c, dict) and c.get("code") in ("override", "override_stands") for c in codes):
            continue
        last[subject] = Compared(
            subject,
            str(decision.get("route")),
            str(shadow.get("route")),
            str(decision.get("rules_version") or ""),
            str(shadow.get("rules_version") or ""),
        )
    return list(last.values())


def differences(compared: Iterable[Compared]) -> dict[str, Any]:
    """How many calls were compared, how many the other rule set routes elsewhere, and by pair of
    routes (active -> other) how many and which calls, the largest pair first."""
    calls = list(compared)
    pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in calls:
        if c.active != c.other:
            pairs[(c.active, c.other)].append(c.call_id)
    rows = [
        {"active": a, "other": o, "calls": len(ids), "call_ids": sorted(ids)}
        for (a, o), ids in sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    return {
        "compared": len(calls),
        "differ": sum(r["calls"] for r in rows),
        "active_versions": sorted({c.active_version for c in calls if c.active_version}),
        "other_versions": sorted({c.other_version for c in calls if c.other_version}),
        "pairs": rows,
    }


def render(table: Mapping[str, Any], other: str = "shadow") -> str:
    """The differences as a plain-text table, one line per pair of routes and its call ids."""
    versions = ", ".join(table["other_versions"]) or "-"
    lines = [
        f"{table['compared']} calls compared, {table['differ']} routed differently by the {other} rules"
        f" ({versions}) than by the rules in force ({', '.join(table['active_versions']) or '-'})",
        f"{'in force':<10} {other:<10} {'calls':>6}  call ids",
    ]
    for row in table["pairs"]:
        lines.append(f"{row['active']:<10} {row['other']:<10} {row['calls']:>6}  {' '.join(row['call_ids'])}")
    return "\n".join(lines)
