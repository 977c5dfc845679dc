"""A generated jurisdiction large enough that every benchmark call can be offered to a team."""

from __future__ import annotations

import random
from typing import Any

import yaml

PSAP_TOKEN = "bench-psap-token-000000000001"
AGENCIES = ("bench-a", "bench-b", "bench-c", "bench-d")
PARTITIONS = 3  # of each agency's topic


def agency_token(agency: str) -> str:
    """The bearer token of one benchmark agency."""
    return f"bench-agency-token-{agency}-0001"


def jurisdiction(teams: int, seed: int = 7, commit_within: float = 3600) -> str:
    """YAML for one PSAP, four agencies and `teams` teams spread over a 33 km by 32 km region, on duty
    always, each covering 10 km around its home: a call is within reach of about a quarter of them.
    Each call must have an accepting team within `commit_within` seconds of its 202.

    (`make bench-matching` measures the worst case apart: every team covering every call.)
    """
    rng = random.Random(seed)
    doc: dict[str, Any] = {
        "jurisdiction": {"id": "bench", "name": "Benchmark City", "timezone": "UTC"},
        "triage": {
            "version": "bench-1",
            "eligible_types": ["MNTL"],
            "exclude": {"weapon": "police", "medical": "ems"},
            "unknown_means": "eligible",
        },
        # Nobody answers the offer path's offers, which stay open for the run (MATCHING_OFFER_TIMEOUT_S):
        # so does each call's time to commit there, or its offers would be cut to two minutes.
        "matching": {"version": "bench-1", "commit_within": commit_within},
        # No signing secret and no rate limit: the benchmark measures the pipeline, not the throttle.
        "psaps": [
            {"id": "bench-psap", "name": "Bench PSAP", "token": PSAP_TOKEN, "rate_limit": "10000000/minute"}
        ],
        "agencies": [
            {"id": a, "name": a, "token": agency_token(a), "partitions": PARTITIONS} for a in AGENCIES
        ],
        "teams": [
            {
                "id": f"t{n:05d}",
                "agency": AGENCIES[n % len(AGENCIES)],
                "name": f"Team {n}",
                "home": {"lat": 44.0 + rng.uniform(-0.15, 0.15), "lon": -123.1 + rng.uniform(-0.2, 0.2)},
                "radius_km": 10,
            }
            for n in range(teams)
        ],
        "oversight": [
            {"id": "bench-admin", "name": "bench", "token": "bench-admin-token-0000001", "role": "admin"}
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def call(n: int, rng: random.Random) -> dict[str, Any]:
    """One community-eligible native call."""
    return {
        "external_id": f"BENCH-{n}",
        "incident_type": "MNTL",
        "location": {"lat": 44.0 + rng.uniform(-0.1, 0.1), "lon": -123.1 + rng.uniform(-0.15, 0.15)},
        "safety": {"weapon": "no", "violence": "no", "medical": "no", "self_harm_imminent": "no"},
        "callback_number": "+15550000000",
    }
