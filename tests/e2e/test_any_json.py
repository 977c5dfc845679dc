"""A property of intake: whatever JSON value a PSAP puts in any free or extension field of either
format, the answer is a 4xx, or a call whose every event reaches the audit trail and verifies."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.intake import eido
from shared.db import connect
from tests.e2e.system import System, running_system
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    # A system of its own: the calls made here reserve teams the shared system's tests expect free.
    async with running_system(stack, Path(tmp_path_factory.mktemp("e2e-any-json"))) as running:
        yield running


EDGES = st.sampled_from(
    [
        2**53 + 1,
        10**30 + 7,
        -(2**63),
        1e17,
        1.5e300,
        -0.0,
        5e-324,
        float("nan"),
        float("inf"),
        "\u0000",
        "\ud800",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | EDGES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
# Text is what free fields mostly hold: weighted so that many examples are accepted calls.
VALUES = st.one_of(st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=12), JSON)
NATIVE_FIELDS = [
    ("narrative",),
    ("caller_name",),
    ("callback_number",),
    ("language",),
    ("incident_type",),
    ("consent_non_police",),
    ("mpds_determinant",),
    ("cad_extra",),
    ("location", "address"),
    ("location", "uncertainty_m"),
    ("safety", "weapon"),
]
EIDO_FIELDS = [
    ("careRouteTriage", "cadExtra"),
    ("careRouteTriage", "preferredLanguage"),
    ("careRouteTriage", "mpdsDeterminant"),
    ("careRouteTriage", "safetyScreen", "weapon"),
    ("incidentComponent", "cadExtra"),
    ("incidentComponent", "incidentTypeCommonRegistryText"),
    ("notesComponent",),
    ("locationComponent", 0, "cadExtra"),
]


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def native(path: tuple[Any, ...], value: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "external_id": f"ANY-{uuid.uuid4().hex[:12]}",
        "incident_type": "MNTL",
        "location": {"lat": 44.05, "lon": -123.09},
        "safety": {"weapon": "no"},
    }
    _put(body, path, value)
    return "/v1/calls", body


def incident(path: tuple[Any, ...], value: Any) -> tuple[str, dict[str, Any]]:
    body = copy.deepcopy(eido.example())
    body["$id"] = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:psap.example.org"
    _put(body, path, value)
    return "/v1/incidents", body


async def missing_from_trail(system: System) -> int:
    """Events any service published (outbox rows sent) that the audit trail does not hold."""
    conn = await connect(system.settings.database_url.get_secret_value())
    try:
        ids: set[str] = set()
        for schema in ("intake", "matching", "notify"):
            rows = await conn.fetch(f"SELECT value FROM {schema}.outbox WHERE topic NOT LIKE 'agency.%'")
            ids.update(json.loads(bytes(r["value"]))["id"] for r in rows)
        stored = {str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM audit.events")}
        return len(ids - stored)
    finally:
        await conn.close()


async def test_any_json_in_any_free_field_is_a_4xx_or_a_call_fully_in_the_trail(system: System):
    """Tried (hypothesis, 60 examples): nulls, booleans, integers of any size, floats with NaN and
    infinities, 2**53 + 1, 10**30 + 7, 1e17, 1.5e300, NUL and lone surrogates, and lists and objects
    of them, in every free or extension field of the native call and of an EIDO document."""
    answers: list[tuple[int, str]] = []
    auth = system.psap_auth("valley-ecc")

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.one_of(
            st.tuples(st.just(native), st.sampled_from(NATIVE_FIELDS), VALUES),
            st.tuples(st.just(incident), st.sampled_from(EIDO_FIELDS), VALUES),
        )
    )
    @example((native, ("narrative",), "\ud800"))
    @example((native, ("caller_name",), "a\udfffb"))
    @example((incident, ("careRouteTriage", "cadExtra"), "\ud800"))
    @example((incident, ("careRouteTriage", "cadExtra"), 1e17))
    @example((incident, ("incidentComponent", "cadExtra"), {"n": 1.5e300, "m": [5e-324, -0.0]}))
    @example((native, ("location", "uncertainty_m"), 1e17))
    @example((incident, ("incidentComponent", "cadExtra"), 10**30 + 7))
    def post(case: tuple[Any, tuple[Any, ...], Any]) -> None:
        build, path, value = case
        route, body = build(path, value)
        content = json.dumps(body, allow_nan=True).encode()
        with httpx.Client(base_url=system.url("intake"), timeout=30) as http:
            r = http.post(route, content=content, headers={"content-type": "application/json"}, auth=auth)
        assert r.status_code < 500, (path, value, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert r.json()["code"], r.text[:300]
        answers.append((r.status_code, r.text))

    await asyncio.to_thread(post)
    accepted = [a for a in answers if a[0] in (200, 201, 202)]
    assert accepted and len(accepted) < len(answers), [a[0] for a in answers]
    await eventually(lambda: missing_from_trail(system), lambda n: n == 0, what="every event in the trail")
    async with httpx.AsyncClient(timeout=60) as http:
        verified = await http.get(
            f"{system.url('audit')}/v1/audit/verify", headers=system.token("civilian-review-board")
        )
    assert verified.json()["ok"], verified.text
