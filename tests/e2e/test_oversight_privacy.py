"""Oversight never reads free text or exact positions: canaries planted in every free-text field
of both intake formats, the override, the cancel and an agency's answer never appear on any
route an oversight token may call, enumerated from every service's OpenAPI document."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake import eido, pidf
from tests.e2e.system import System, offered_to, running_system
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    # A system of its own: the calls made here reserve teams the shared system's tests expect free.
    async with running_system(stack, Path(tmp_path_factory.mktemp("e2e-privacy"))) as running:
        yield running


CANARY = "QZCANARY"  # every planted string holds it; it is in no code, id or name of the example
OVERSIGHT = "civilian-review-board"
# The exact position planted; oversight may see it only on the 0.01 degree grid.
LAT, LON = 44.051237, -123.087641


def plant(where: str) -> str:
    return f"{CANARY}-{where}"


async def plant_everything(system: System, http: httpx.AsyncClient) -> dict[str, list[str]]:
    """Send calls carrying canaries everywhere a person types; the ids that reach the trail."""
    signed = system.psap_auth("valley-ecc")
    intake = system.url("intake")
    native = {
        "external_id": plant("external-id"),
        "incident_type": "MNTL",
        "location": {"lat": LAT, "lon": LON, "address": plant("address")},
        "safety": {
            q: "no" for q in ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")
        },
        "callback_number": plant("cb"),
        "caller_name": plant("caller-name"),
        "narrative": plant("narrative"),
    }
    a = (await http.post(f"{intake}/v1/calls", json=native, auth=signed)).json()["call_id"]
    typed = {**native, "external_id": plant("ext-2"), "incident_type": plant("TYPE")[:32]}
    b = (await http.post(f"{intake}/v1/calls", json=typed, auth=signed)).json()["call_id"]
    override = {"route": "community", "reason_code": "other", "reason_text": plant("override-text")}
    assert (await http.post(f"{intake}/v1/calls/{b}/override", json=override, auth=signed)).status_code == 200

    document = eido.example()
    document["$id"] = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:psap.example.org"
    document["locationComponent"][0]["locationByValue"] = pidf.point(LAT, LON)
    document["cautionComponent"] = [{"cautionTypeInternalText": f"KNIFE {plant('caution')}"}]
    document["notesComponent"] = [{"notesActionComments": plant("notes")}]
    document["callbackComponent"] = [{"callBackInformationUri": f"tel:{plant('tel')}"}]
    answer = await http.post(
        f"{intake}/v1/incidents",
        content=json.dumps(document).encode(),
        headers={"content-type": "application/json"},
        auth=signed,
    )
    assert answer.status_code == 202, answer.text
    c = answer.json()["call_id"]

    # The agency declines with its own words, the next team accepts, then the PSAP cancels.
    first = await eventually(lambda: offered_to(http, system, a), lambda o: o is not None, what="an offer")
    assert first is not None
    decline = {"reason_code": "other", "reason_text": plant("decline-text")}
    r = await http.post(
        f"{system.url('notify')}/v1/assignments/{first[1]}/decline",
        json=decline,
        headers=system.token(first[0]),
    )
    assert r.status_code == 200, r.text
    cancel = {"reason": plant("cancel-reason")}
    assert (await http.post(f"{intake}/v1/calls/{a}/cancel", json=cancel, auth=signed)).status_code == 202
    return {"calls": [a, b, c], "assignments": [first[1]]}


def _paths(document: dict[str, Any]) -> list[str]:
    return [p for p, ops in document["paths"].items() if "get" in ops]


async def test_no_free_text_or_exact_position_reaches_any_oversight_route(system: System):
    async with httpx.AsyncClient(timeout=60) as http:
        planted = await plant_everything(system, http)
        admin = system.token("careroute-operator")

        async def stored() -> list[str]:
            """Which planted strings the full trail holds (caution words are kept in capitals)."""
            r = await http.get(
                f"{system.url('audit')}/v1/audit/events", params={"limit": 1000, "phi": "true"}, headers=admin
            )
            # The narrative, caller name and EIDO notes never leave intake; these do, in the full events.
            words = ("cb", "cancel-reason", "decline-text", "caution", "override-text", "address")
            return [w for w in words if plant(w).upper() not in r.text.upper()]

        def complete(missing: list[str]) -> bool:
            return not missing

        # The canaries are stored (an admin's phi read shows them): the crawl below is not vacuous.
        await eventually(stored, complete, what="the planted strings in the trail", timeout_s=60)

        who = system.token(OVERSIGHT)
        read: dict[str, str] = {}
        for service in ("intake", "matching", "notify", "audit"):
            base = system.url(service)
            document = (await http.get(f"{base}/openapi.json")).json()
            for path in _paths(document):
                params = set(re.findall(r"{(\w+)}", path))
                values = {"call_id": planted["calls"], "assignment_id": planted["assignments"]}
                if not params <= set(values):
                    raise AssertionError(f"{service} {path}: a path parameter this crawl cannot fill")
                fills: list[dict[str, str]] = [{}]
                for p in params:
                    fills = [{**f, p: v} for f in fills for v in values[p]]
                for fill in fills:
                    url = path.format(**fill)
                    for query in ({}, {"format": "csv"}, {"call_id": planted["calls"][0]}, {"limit": 1000}):
                        r = await http.get(f"{base}{url}", params=query, headers=who)
                        read[f"{service} {url} {query}"] = r.text
                    # The reports' CSV (content negotiation) goes through the same check.
                    r = await http.get(f"{base}{url}", headers={**who, "Accept": "text/csv"})
                    read[f"{service} {url} Accept: text/csv"] = r.text
        allowed = [k for k, text in read.items() if not text.startswith('{"detail"')]
        assert any("/v1/audit/export" in k for k in allowed) and any("/match" in k for k in allowed), allowed
        assert any("/v1/reports/summary Accept: text/csv" in k for k in allowed), allowed
        for where, text in read.items():
            assert CANARY not in text, (where, text[text.find(CANARY) - 200 : text.find(CANARY) + 100])
            assert str(LAT) not in text and str(LON) not in text, where
