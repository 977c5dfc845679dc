"""CPU time used by each part of the system during a phase, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(stat: str, children: bool) -> float:
    # Fields after the command name (which may hold spaces): utime is the 14th field overall.
    fields = stat.rpartition(")")[2].split()
    used = int(fields[11]) + int(fields[12])
    if children:  # backends that exited were reaped by the postmaster: their time is in its cutime
        used += int(fields[13]) + int(fields[14])
    return used / _TICK


def snapshot(services: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each service process (by pid), of PostgreSQL and of the broker."""
    totals: dict[str, float] = dict.fromkeys([*services, "postgresql", "broker", "benchmark"], 0.0)
    by_pid = {pid: name for name, pid in services.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        name = by_pid.get(pid)
        if name is None:
            if pid == os.getpid():
                name = "benchmark"
            elif "postgres" in stat.split(" ", 2)[1]:
                name = "postgresql"
            elif ("java" in command and "kafka" in command.lower()) or "tansu broker" in command:
                name = "broker"
            else:
                continue
        totals[name] += _cpu_s(stat, children=name == "postgresql")
    return totals


def per_call_ms(before: dict[str, float], after: dict[str, float], calls: int) -> dict[str, float]:
    """Milliseconds of CPU per call for each part between two snapshots."""
    return {name: round((after[name] - before[name]) * 1000 / max(calls, 1), 2) for name in after}


def percent_of_core(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each part's CPU between two snapshots as a percentage of one core over `seconds`."""
    return {name: round((after[name] - before[name]) * 100 / max(seconds, 1e-9), 2) for name in after}
