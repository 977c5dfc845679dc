"""The agency console in a real headless browser (Debian's chromium): accept an offer, report cleared."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from services.intake import eido
from services.notify.rules import Watch
from tests.e2e.system import System, running_system
from tests.support import eventually
from tools import infra
from tools.jurisdictions import example

pytestmark = pytest.mark.e2e

CALL = {
    "incident_type": "10-96",
    "location": {"lat": 44.0503, "lon": -123.0889, "address": "100 W 10th Ave"},
    "safety": {q: "no" for q in ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")},
    "language": "es",
    "callback_number": "+15415550123",
}


@pytest.fixture
async def system(stack: infra.InfraEndpoints, tmp_path: Path) -> AsyncIterator[System]:
    # A system of its own: the example's team rb-1 must be free for this call.
    async with running_system(stack, tmp_path) as running:
        yield running


async def signed_in(system: System, page: Page) -> None:
    """Sign in to the console as riverbend-crisis and wait for its live stream."""
    token = system.token("riverbend-crisis")["Authorization"].removeprefix("Bearer ")
    await page.get_by_label("Agency token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#connection")).to_contain_text("Live", timeout=15000)


async def native_call(system: System, http: httpx.AsyncClient) -> str:
    """Valley ECC forwards CALL; its id."""
    posted = await http.post(
        f"{system.url('intake')}/v1/calls",
        json={"external_id": f"CAD-{uuid.uuid4().hex[:8]}", **CALL},
        auth=system.psap_auth("valley-ecc"),
    )
    assert posted.status_code == 202, posted.text
    return str(posted.json()["call_id"])


async def trail(system: System, http: httpx.AsyncClient, call_id: str) -> list[dict[str, Any]]:
    answer = await http.get(
        f"{system.url('audit')}/v1/audit/calls/{call_id}", headers=system.token("civilian-review-board")
    )
    return list(answer.json()["events"]) if answer.status_code == 200 else []


async def test_an_agency_accepts_an_offer_and_reports_cleared_from_the_browser_console(
    system: System, browser: Browser
):
    # A phone-sized screen: the console must work there without sideways scrolling.
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    await page.goto(f"{system.url('notify')}/console")

    await page.get_by_label("Agency token").fill("not-a-real-token-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").first).to_contain_text("not accepted")

    await signed_in(system, page)

    async with httpx.AsyncClient(timeout=15) as http:
        call_id = await native_call(system, http)

        # The offer arrives live, with what the team needs and its deadline counting down.
        card = page.locator(f'li[data-call-id="{call_id}"]')
        await expect(card).to_be_visible(timeout=30000)
        await expect(card.locator(".status")).to_have_text("Offered")
        await expect(card.locator(".countdown")).to_contain_text("answer within", timeout=5000)
        first = await card.locator(".countdown").text_content()
        await expect(card.locator(".countdown")).not_to_have_text(first or "", timeout=5000)
        await expect(card).to_contain_text("100 W 10th Ave")
        await expect(card).to_contain_text("+15415550123")
        await expect(card.locator(".language")).to_have_text("es")

        await card.get_by_role("button", name="Accept").click()
        await expect(card.locator(".status")).to_have_text("Accepted")
        await card.get_by_role("button", name="En route").click()
        await expect(card.locator(".status")).to_have_text("En route")
        await card.get_by_role("button", name="On scene").click()
        await expect(card.locator(".status")).to_have_text("On scene")
        await card.get_by_role("button", name="Cleared…").click()
        await card.get_by_label("Disposition code").select_option("18")
        await card.get_by_role("button", name="Report cleared").click()
        await expect(card.locator(".status")).to_have_text("Cleared")

        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways on a phone by {overflow}px"

        def reached_cleared(events: list[dict[str, Any]]) -> bool:
            return any(e["data"].get("status") == "cleared" for e in events)

        events = await eventually(partial(trail, system, http, call_id), reached_cleared, what="the trail")
    answers = [e["data"]["response"] for e in events if e["type"] == "assignments.responded.v1"]
    statuses = [e["data"]["status"] for e in events if e["type"] == "assignments.status_changed.v1"]
    assert answers == ["accepted"]
    assert statuses == ["en_route", "on_scene", "cleared"]
    cleared = next(e for e in events if e["data"].get("status") == "cleared")
    assert cleared["data"]["disposition"] == "18"
    assert cleared["data"]["agency_id"] == "riverbend-crisis"
    # SIGTERM with the console's stream still open: the stream ends and every process exits cleanly.
    assert system.stop() == [0]
    await context.close()


async def test_the_console_shows_what_the_911_center_changed_until_the_team_marks_it_seen(
    system: System, browser: Browser, shots: Path
):
    """The team accepted an EIDO call; the 911 center then sends a newer version with a new callback
    number and a caution that raises no flag. The card says what changed, marks those facts, shows
    the caution, and keeps saying it across a reload until the team presses Seen."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{system.url('notify')}/console")
    await signed_in(system, page)

    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:12]}:console"
    document = eido.example()
    document["$id"] = incident
    async with httpx.AsyncClient(timeout=15) as http:
        posted = await http.post(
            f"{system.url('intake')}/v1/incidents", json=document, auth=system.psap_auth("valley-ecc")
        )
        assert posted.status_code == 202 and posted.json()["decision"]["route"] == "community", posted.text
        card = page.locator(f'li[data-call-id="{posted.json()["call_id"]}"]')
        await expect(card).to_be_visible(timeout=30000)
        await card.get_by_role("button", name="Accept").click()
        await expect(card.locator(".status")).to_have_text("Accepted")
        await expect(card.locator(".cautions")).to_have_text("none")
        await expect(card.locator(".changed")).to_be_hidden()
        await page.screenshot(path=str(shots / "console-accepted.png"), full_page=True)

        newer = {**document, "lastUpdateTimeStamp": "2026-11-26T10:05:00Z"}
        newer["callbackComponent"] = [{"callBackInformationUri": "tel:+15415550199"}]
        newer["cautionComponent"] = [{"cautionTypeInternalText": "dog on premises"}]
        updated = await http.post(
            f"{system.url('intake')}/v1/incidents", json=newer, auth=system.psap_auth("valley-ecc")
        )
        assert updated.status_code == 202 and updated.json()["outcome"] == "updated", updated.text

    note = card.locator(".changed")
    await expect(note).to_be_visible(timeout=30000)
    await expect(note).to_contain_text("Updated by the 911 center: callback number, cautions")
    await expect(card.locator(".cautions")).to_have_text("DOG ON PREMISES")
    await expect(card.locator(".callback")).to_have_text("+15415550199")
    await expect(card.locator(".callback")).to_have_class("callback fresh")
    await expect(card.locator(".where")).not_to_have_class("where fresh")
    await expect(card.locator(".status")).to_have_text("Accepted")
    await expect(page.locator("#announce")).to_contain_text("updated team rb-1's call")
    await page.screenshot(path=str(shots / "console-updated.png"), full_page=True)

    await page.reload()
    await expect(card.locator(".changed")).to_be_visible(timeout=15000)
    await card.get_by_role("button", name="Seen").click()
    await expect(card.locator(".changed")).to_be_hidden()
    await expect(card.locator(".callback")).to_have_class("callback")
    await page.screenshot(path=str(shots / "console-seen.png"), full_page=True)
    await context.close()


async def test_the_console_shows_the_timer_a_team_owes_marks_a_missed_check_in_and_checks_in(
    stack: infra.InfraEndpoints, tmp_path: Path, browser: Browser, shots: Path
):
    """On scene, the card says when the safety check-in is due; let run out, the agency is paged
    again and the card turns overdue; the team presses Check in and the next check-in is due."""
    j = example().model_copy(update={"watch": Watch(check_in_every_min=0.1, psap_after_min=5)})
    env = {"NOTIFY_WATCH_INTERVAL_S": "0.2"}
    async with running_system(stack, tmp_path, env=env, jurisdiction=j) as system:
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = await context.new_page()
        await page.goto(f"{system.url('notify')}/console")
        await signed_in(system, page)
        async with httpx.AsyncClient(timeout=15) as http:
            call_id = await native_call(system, http)
            card = page.locator(f'li[data-call-id="{call_id}"]')
            await expect(card).to_be_visible(timeout=30000)
            await expect(card.locator(".watch")).to_be_hidden()
            await card.get_by_role("button", name="Accept").click()
            await expect(card.locator(".watch")).to_contain_text("En route report due by")
            await card.get_by_role("button", name="On scene").click()
            await expect(card.locator(".status")).to_have_text("On scene")
            watch = card.locator(".watch")
            await expect(watch).to_contain_text("Safety check-in due by")
            await expect(watch.locator(".watch-left")).to_contain_text("left")
            await page.screenshot(path=str(shots / "console-check-in-due.png"), full_page=True)

            # Six seconds without a check-in: the stream brings the miss.
            await expect(watch).to_contain_text("Safety check-in overdue since", timeout=30000)
            await expect(watch).to_contain_text("answer now")
            await expect(watch).to_have_class("watch overdue")
            await expect(page.locator("#announce")).to_contain_text("safety check-in is overdue")
            await page.screenshot(path=str(shots / "console-check-in-missed.png"), full_page=True)

            await card.get_by_role("button", name="Check in").click()
            await expect(watch).to_contain_text("Safety check-in due by")
            await expect(watch).not_to_have_class("watch overdue")
            await expect(card.locator(".error")).to_have_text("")
            await page.screenshot(path=str(shots / "console-checked-in.png"), full_page=True)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the page scrolls sideways on a phone by {overflow}px"

            def missed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [e["data"] for e in events if e["type"] == "assignments.timer_missed.v1"]

            events = await eventually(
                partial(trail, system, http, call_id), lambda e: bool(missed(e)), what="the miss"
            )
            assert [(m["timer"], m["escalation"]) for m in missed(events)] == [("check_in", "agency_repaged")]
            await card.get_by_role("button", name="Cleared…").click()
            await card.get_by_label("Disposition code").select_option("18")
            await card.get_by_role("button", name="Report cleared").click()
            await expect(card.locator(".status")).to_have_text("Cleared")
            await expect(watch).to_be_hidden()
        await context.close()
