"""Each service's OpenAPI tells the truth: typed answers, one error shape, security schemes, offline docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.audit import api as audit_api
from services.intake import api as intake_api
from services.matching import api as matching_api
from services.notify import api as notify_api
from services.notify import console
from shared.http import make_app


def _apps() -> dict[str, FastAPI]:
    intake = make_app("intake", {}, security_schemes=intake_api.SECURITY_SCHEMES)
    intake.include_router(intake_api.router)
    matching = make_app("matching", {})
    matching.include_router(matching_api.router)
    notify = make_app("notify", {})
    for router in (notify_api.router, notify_api.registries, console.router):
        notify.include_router(router)
    audit = make_app("audit", {})
    audit.include_router(audit_api.router)
    audit.include_router(audit_api.reports_router)
    return {"intake": intake, "matching": matching, "notify": notify, "audit": audit}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


@pytest.mark.parametrize("service", ["intake", "matching", "notify", "audit"])
def test_every_route_answers_a_declared_model_and_errors_in_the_one_shape(service: str) -> None:
    schema = _apps()[service].openapi()
    for path, method, op in _operations(schema):
        where = f"{method.upper()} {path}"
        success = [s for s in op["responses"] if s.startswith("2")]
        assert success, where
        for status in success:
            content = op["responses"][status].get("content", {})
            json_schema = content.get("application/json", {}).get("schema")
            # A JSON answer names its model; the others (text, CSV, SSE, metrics) say their media type.
            assert json_schema != {} and (json_schema is None) == ("application/json" not in content), where
        for status in ("413", "422", "431"):
            assert status in op["responses"], f"{where} does not document {status}"
        for status, response in op["responses"].items():
            if status.startswith("2") or (path == "/readyz" and status == "503"):
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorBody", f"{where} {status}"
        if path.startswith("/v1/") and not path.startswith("/v1/dispositions"):
            assert {"401", "429", "503"} <= set(op["responses"]), where
            assert {"bearer": []} in op["security"], where
    assert set(schema["components"]["schemas"]["ErrorBody"]["properties"]) == {"detail", "code"}


def test_signed_psap_posts_declare_the_standard_webhooks_headers_as_security() -> None:
    schema = _apps()["intake"].openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert schemes[header]["type"] == "apiKey" and schemes[header]["in"] == "header"
    signed: dict[str, list[str]] = {
        "bearer": [],
        "webhook-id": [],
        "webhook-timestamp": [],
        "webhook-signature": [],
    }
    for path, method, op in _operations(schema):
        if path.startswith("/v1/"):
            # A PSAP with a signing secret sends all four; one without sends the token alone.
            expected = [{"bearer": []}, signed] if method == "post" else [{"bearer": []}]
            assert op["security"] == expected, f"{method} {path}"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_only_assets_the_service_serves_itself(page: str) -> None:
    app = _apps()["audit"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        html = (await http.get(page)).text
        urls = re.findall(
            r"""(?:src|href)=["']([^"']+)["']|url: ?['"]([^'"]+)['"]|spec-url=["']([^"']+)""", html
        )
        found = {u for group in urls for u in group if u}
        assert found, html
        for url in found:
            assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from elsewhere"
            assert (await http.get(url)).status_code == 200, url


def test_a_team_answers_its_shift_times_as_the_local_times_they_are() -> None:
    from services.matching.schemas import TeamView

    shift = TeamView.model_json_schema()["$defs"]["ShiftView"]["properties"]
    # JSON Schema's "time" format requires a UTC offset, which a local shift time does not have.
    assert "format" not in shift["start"] and "format" not in shift["end"]
    view = TeamView.model_validate(
        {
            "id": "t1",
            "agency_id": "a",
            "name": "T",
            "skills": [],
            "languages": [],
            "status": "available",
            "current_call": None,
            "lat": None,
            "lon": None,
            "capacity": 1,
            "held": 0,
            "updated_at": "2026-01-01T00:00:00Z",
            "shifts": [{"days": ["mon"], "start": "19:00:00", "end": "07:00:00"}],
        }
    )
    assert view.model_dump(mode="json")["shifts"][0]["end"] == "07:00:00"
