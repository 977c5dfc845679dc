"""The last full run's section of docs/faults.md, from its results: each fault and what the checker found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.faults.checker import KINDS

KIND_COLUMNS = KINDS
BEGIN = "<!-- faults:run:begin (written by python -m tools.faults; do not edit by hand) -->"
END = "<!-- faults:run:end -->"


def section(results: list[dict[str, Any]], when: str, settings: dict[str, Any]) -> str:
    """The markdown of one run: the table, what failed, and the load of each phase."""
    lines = [f"Run: {when}; settings: {settings}.", ""]
    heads = " | ".join(k.replace("_", " ") for k in KINDS)
    lines.append(f"| fault | what was done | s | calls | {heads} | chain | result |")
    lines.append("|---|---|---|---|" + "---|" * len(KINDS) + "---|---|")
    for r in results:
        counts = " | ".join("-" if r[k] is None else str(r[k]) for k in KINDS)
        lines.append(
            f"| {r['fault']} | {r['what']} | {r['seconds']} | {r['calls']} | {counts} |"
            f" {'ok' if r['chain_ok'] else 'BROKEN'} | {'pass' if r['passed'] else 'FAIL'} |"
        )
    failing = [r for r in results if not r["passed"]]
    if failing:
        lines += ["", "### What failed", ""]
        for r in failing:
            lines.append(f"- **{r['fault']}**: " + "; ".join(r["examples"][:8]))
    lines += ["", "### Load seen in each phase", ""]
    for r in results:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["load"].items()))
        lines.append(f"- **{r['fault']}**: {counts}")
    return "\n".join(lines)


def write(results: list[dict[str, Any]], when: str, settings: dict[str, Any], path: Path) -> None:
    """Replace the run section of `path` (between its markers) with this run; the rest is kept."""
    text = path.read_text() if path.exists() else f"# Fault suite\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = f"{text.rstrip()}\n\n## The last full run\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{section(results, when, settings)}\n{END}{tail}")
