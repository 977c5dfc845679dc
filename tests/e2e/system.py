"""The whole system as a user runs it, for the end-to-end tests: `python -m services` in its own
process (or one process per service) on real infrastructure, with the example loaded."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx

from shared.jurisdiction import Jurisdiction
from tools import infra
from tools.jurisdictions import EXAMPLE
from tools.system import System

__all__ = ["AGENCIES", "System", "offered_to", "running_system"]

# The example jurisdiction's agencies.
AGENCIES = ("riverbend-crisis", "valley-behavioral", "campus-care", "county-outreach")


def running_system(
    endpoints: infra.InfraEndpoints,
    log_dir: Path,
    *,
    separate: bool = False,
    env: dict[str, str] | None = None,
    jurisdiction: Jurisdiction | Path = EXAMPLE,
) -> AbstractAsyncContextManager[System]:
    """A fresh database and namespace, the example loaded, and all four services running.

    `separate` runs `python -m services.<name>` once per service instead of one `python -m services`;
    `env` adds settings (e.g. a short offer deadline); `jurisdiction` is the file loaded (the example's
    unless told).
    """
    return System.start(
        endpoints,
        mode="per-service" if separate else "one-process",
        settings={"kafka_session_timeout_ms": 3000},
        env=env,
        jurisdiction=jurisdiction,
        log_dir=log_dir,
        prefix="e2e",
    )


async def offered_to(http: httpx.AsyncClient, system: System, call_id: str) -> tuple[str, str] | None:
    """(agency, assignment id) of the call's open offer, if one is out."""
    for agency in AGENCIES:
        r = await http.get(f"{system.url('notify')}/v1/assignments", headers=system.token(agency))
        for a in r.json():
            if a["call_id"] == call_id and a["status"] == "offered":
                return agency, a["assignment_id"]
    return None
