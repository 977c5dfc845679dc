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


# The parts of the system that are not its services: started by the benchmark, found by their
# root process (PostgreSQL's postmaster, the broker's JVM) and everything under it.
INFRA = ("postgresql", "broker")


def _stat_of(entry: Path) -> tuple[str, str] | None:
    try:
        return (entry / "stat").read_text(), (entry / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None  # exited meanwhile


def _by_name(stat: str, command: str) -> str | None:
    """Which infrastructure a process is by its name, when its root is not known."""
    if "postgres" in stat.split(" ", 2)[1]:
        return "postgresql"
    if ("java" in command and "kafka" in command.lower()) or "tansu" in command:
        return "broker"
    return None


def _measured(parts: dict[str, int]) -> dict[int, tuple[str, str]]:
    """The processes measured, by pid: the part each belongs to and its /proc stat line."""
    by_pid = {pid: name for name, pid in parts.items()}
    stats: dict[int, str] = {}
    parent: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (read := _stat_of(entry)) is not None:
            pid = int(entry.name)
            stats[pid], commands[pid] = read
            parent[pid] = int(read[0].rpartition(")")[2].split()[1])

    def part_of(pid: int) -> str | None:
        seen = pid
        while seen > 1:
            if seen in by_pid:
                return by_pid[seen]
            seen = parent.get(seen, 0)
        return None

    measured: dict[int, tuple[str, str]] = {}
    for pid, stat in stats.items():
        name = "benchmark" if pid == os.getpid() else part_of(pid)
        if name is None and not any(part in parts for part in INFRA):
            name = _by_name(stat, commands[pid])
        if name is None or (name not in INFRA and name != "benchmark" and pid != parts.get(name)):
            continue  # a child of a service (none run any) or of this process: not measured
        measured[pid] = (name, stat)
    return measured


def snapshot(parts: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each service process (by pid), of PostgreSQL, of the broker and of
    this process. With `parts` naming the root pids of "postgresql" and "broker", only those and
    their descendants count (another PostgreSQL or broker on the machine is not ours); without,
    any process of that name does."""
    totals: dict[str, float] = dict.fromkeys([*parts, *INFRA, "benchmark"], 0.0)
    for name, stat in _measured(parts).values():
        totals[name] += _cpu_s(stat, children=name == "postgresql")
    return totals


_SWITCHES = ("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")


def _switches_of(pid: int) -> int:
    """Context switches so far of every thread of a process, voluntary and not."""
    count = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        count += sum(int(line.split()[1]) for line in lines if line.startswith(_SWITCHES))
    return count


def snapshot_with_switches(parts: dict[str, int]) -> tuple[dict[str, float], dict[str, float]]:
    """`snapshot` and each part's context switches so far, from one walk of /proc (a PostgreSQL
    backend that exits takes its count with it: the pools' connections stay for a run)."""
    cpu: dict[str, float] = dict.fromkeys([*parts, *INFRA, "benchmark"], 0.0)
    switched = dict(cpu)
    for pid, (name, stat) in _measured(parts).items():
        cpu[name] += _cpu_s(stat, children=name == "postgresql")
        switched[name] += _switches_of(pid)
    return cpu, switched


def _added(
    before: dict[str, float], after: dict[str, float], per: float, scale: float, digits: int
) -> dict[str, float]:
    used = {name: (after[name] - before[name]) * scale / per for name in after}
    used["system"] = sum(n for name, n in used.items() if name != "benchmark")
    return {name: round(n, digits) for name, n in used.items()}


def per_call_ms(before: dict[str, float], after: dict[str, float], calls: int) -> dict[str, float]:
    """Milliseconds of CPU per call for each part between two snapshots, and `system`: every part
    but the benchmark's own process (the load generator)."""
    return _added(before, after, max(calls, 1), 1000, 2)


def switches_per_call(before: dict[str, float], after: dict[str, float], calls: int) -> dict[str, float]:
    """Context switches per call for each part between two counts, and `system`."""
    return _added(before, after, max(calls, 1), 1, 1)


def percent_of_core(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each part's CPU between two snapshots as a percentage of one core over `seconds`, and
    `system`: every part but the benchmark's own process."""
    return _added(before, after, max(seconds, 1e-9), 100, 2)
