"""Jurisdictions for tests, tools and benchmarks: the example region, and small ones built to order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.jurisdiction import Deployment, load_file
from shared.jurisdiction import Jurisdiction

EXAMPLE = Path(__file__).parents[1] / "examples" / "lane-valley.yaml"


def example() -> Jurisdiction:
    """The example region (examples/lane-valley.yaml)."""
    return load_file(EXAMPLE)


def resolve(jurisdiction: Jurisdiction | Path) -> Jurisdiction:
    """A jurisdiction given as itself or as the path of its file."""
    return jurisdiction if isinstance(jurisdiction, Jurisdiction) else load_file(jurisdiction)


def small(
    *,
    psap_token: str,
    agencies: Iterable[dict[str, Any]],
    teams: Iterable[dict[str, Any]],
    timezone: str = "UTC",
    triage_version: str = "t",
    oversight: Iterable[dict[str, Any]] = (),
    **extra: Any,
) -> Jurisdiction:
    """A deployment of one PSAP `psap` triaging MNTL to community (a weapon to police), and the
    given agencies, teams and oversight bodies; `extra` adds top-level sections (e.g. matching)."""
    return Deployment.model_validate(
        {
            "jurisdiction": {"id": "test", "name": "Test", "timezone": timezone},
            "triage": {
                "version": triage_version,
                "eligible_types": ["MNTL"],
                "exclude": {"weapon": "police"},
            },
            "psaps": [{"id": "psap", "name": "PSAP", "token": psap_token}],
            "agencies": list(agencies),
            "teams": list(teams),
            "oversight": list(oversight),
            **extra,
        }
    )
