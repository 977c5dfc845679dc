"""The oversight dashboard in a real headless browser (Debian's chromium) over a running system: a
small scenario played through the public APIs, then every figure on screen against audit's API,
every CSV download against the API's own CSV, small cells suppressed on screen and in the CSV, and
tokens that may not read the reports refused."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from tests.e2e.system import AGENCIES, System, offered_to, running_system
from tests.support import eventually
from tools import infra
from tools.jurisdictions import EXAMPLE

pytestmark = pytest.mark.e2e

OVERSIGHT = "civilian-review-board"
# Inside the example's downtown zone: every call of the scenario comes from there, so downtown's
# cell holds them all and no other zone's (empty) cells tell anything by subtraction.
DOWNTOWN = {"lat": 44.0503, "lon": -123.0889}
CAMPUS = {"lat": 44.0452, "lon": -123.0711}
# Downtown's north-west corner, left outside the community coverage this test's jurisdiction adds.
UNCOVERED = {"lat": 44.059, "lon": -123.103}
COVERAGE = {"areas": [{"center": {"lat": 44.045, "lon": -123.08}, "radius_km": 1.5}], "outside": "police"}
NO = {q: "no" for q in ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")}
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
# What the page shows for a figure that measures nothing (an en dash, never a zero).
NONE = "\u2013"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@pytest.fixture(scope="module")
async def system(
    stack: infra.InfraEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    # A system of its own (the scenario pauses every agency), signing a checkpoint every second, on
    # the example with community coverage around downtown only.
    folder = Path(tmp_path_factory.mktemp("e2e-dashboard"))
    example = yaml.safe_load(EXAMPLE.read_text())
    example["triage"]["coverage"] = COVERAGE
    jurisdiction = folder / "jurisdiction.yaml"
    jurisdiction.write_text(yaml.safe_dump(example))
    env = {"AUDIT_CHECKPOINT_INTERVAL_S": "1"}
    async with running_system(stack, folder, env=env, jurisdiction=jurisdiction) as running:
        yield running


def call(place: dict[str, float], **fields: Any) -> dict[str, Any]:
    return {
        "external_id": f"CAD-{uuid.uuid4().hex[:8]}",
        "incident_type": "MNTL",
        "location": place,
        "safety": NO,
        "language": "en",
        **fields,
    }


async def post(http: httpx.AsyncClient, system: System, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(
        f"{system.url('intake')}/v1/calls", json=body, auth=system.psap_auth("valley-ecc")
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def serve(http: httpx.AsyncClient, system: System, backup: bool) -> None:
    """A community call a team accepts, reaches and clears (after asking for police backup when told)."""
    call_id = (await post(http, system, call(DOWNTOWN)))["call_id"]
    found = await eventually(
        lambda: offered_to(http, system, call_id), lambda o: o is not None, what="an offer"
    )
    assert found is not None
    agency, assignment = found
    base = f"{system.url('notify')}/v1/assignments/{assignment}"
    steps: list[tuple[str, dict[str, Any] | None]] = [("accept", None), ("status", {"status": "en_route"})]
    steps.append(("status", {"status": "on_scene"}))
    if backup:
        steps.append(("status", {"status": "backup_requested", "urgency": "urgent"}))
    steps.append(("status", {"status": "cleared", "disposition": "18"}))
    for path, body in steps:
        r = await http.post(f"{base}/{path}", json=body, headers=system.token(agency))
        assert r.status_code == 200, (path, body, r.text)


async def play(http: httpx.AsyncClient, system: System) -> int:
    """Thirteen behavioural-health calls from downtown: three served (one with a police backup
    request), two sent to review over an unanswered question (the draft rules would send them to a
    community team) and overridden to police, two with a weapon (police), one from the corner the
    coverage leaves out (a coverage gap), and five handed back while every agency is paused.
    Returns how many calls were made."""
    for n in range(3):
        await serve(http, system, backup=n == 0)
    for _ in range(2):
        body = call(DOWNTOWN, safety={**NO, "violence": "unknown"})
        decided = await post(http, system, body)
        assert decided["decision"]["route"] == "review" and decided["shadow_decision"]["route"] == "community"
        override = {"route": "police", "reason_code": "safety_concern"}
        r = await http.post(
            f"{system.url('intake')}/v1/calls/{decided['call_id']}/override",
            json=override,
            auth=system.psap_auth("valley-ecc"),
        )
        assert r.status_code == 200, r.text
    for _ in range(2):
        assert (await post(http, system, call(DOWNTOWN, safety={**NO, "weapon": "yes"})))["decision"][
            "route"
        ] == ("police")
    gap = await post(http, system, call(UNCOVERED))
    assert "outside_coverage_area" in [c["code"] for c in gap["decision"]["codes"]], gap["decision"]
    for agency in AGENCIES:
        r = await http.post(f"{system.url('matching')}/v1/agency/pause", headers=system.token(agency))
        assert r.status_code == 200, r.text
    for _ in range(5):
        await post(http, system, call(DOWNTOWN))
    return 13


async def report(http: httpx.AsyncClient, system: System, name: str, period: dict[str, str]) -> Any:
    r = await http.get(
        f"{system.url('audit')}/v1/reports/{name}", params=period, headers=system.token(OVERSIGHT)
    )
    assert r.status_code == 200, r.text
    return r.json()


async def report_csv(http: httpx.AsyncClient, system: System, name: str, period: dict[str, str]) -> str:
    headers = {**system.token(OVERSIGHT), "Accept": "text/csv"}
    r = await http.get(f"{system.url('audit')}/v1/reports/{name}", params=period, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    return r.text


def settled(summary: dict[str, Any], calls: int) -> bool:
    """Every call of the scenario reached the trail and its outcome will not change any more."""
    totals = summary["outcomes"]["totals"]
    moving = ("awaiting_team", "in_progress", "review_pending")
    return (
        summary["funnel"]["received"] == calls
        and summary["funnel"]["cleared"] == 3
        and totals["handed_back"] == 5
        and totals["coverage_gap"] == 1
        and not any(totals[m] for m in moving)
    )


async def sign_in(page: Page, token: str) -> None:
    await page.get_by_label("Oversight or admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def text_of(locator: Locator) -> str:
    return (await locator.text_content() or "").strip()


def assert_count(text: str, value: int | None) -> None:
    assert text == (NONE if value is None else f"{value:,}"), (text, value)


def assert_near(text: str, value: float | None, scale: float, digits: int) -> None:
    """The shown figure is the API's, in its unit, rounded to `digits` places."""
    if value is None:
        assert text == NONE, text
        return
    assert abs(float(text.rstrip("%")) - value * scale) <= 0.5 * 10**-digits + 1e-9, (text, value)


def assert_duration(text: str, seconds: float | None) -> None:
    """The shown minutes:seconds are the API's seconds, to the second."""
    if seconds is None:
        assert text == NONE, text
        return
    whole, _, part = text.partition(":")
    assert abs(int(whole) * 60 + int(part) - seconds) <= 0.5 + 1e-9, (text, seconds)


async def loaded(page: Page) -> dict[str, str]:
    """The period the page shows, once it has drawn every figure of it and verified the trail."""
    body = page.locator("body")
    await expect(body).to_have_attribute("data-loaded", re.compile("."), timeout=30000)
    since, _, until = (await body.get_attribute("data-loaded") or "").partition("/")
    return {"from": since, "to": until}


async def check_funnel(page: Page, summary: dict[str, Any]) -> None:
    for step, n in summary["funnel"].items():
        row = page.locator(f'#funnel-table tr[data-step="{step}"]')
        assert_count(await text_of(row.locator("td").first), n)
    totals = summary["outcomes"]["totals"]
    rows = page.locator("#outcomes-table tr[data-code]")
    assert {await r.get_attribute("data-code") for r in await rows.all()} == {
        c for c, n in totals.items() if n
    }
    for code, n in totals.items():
        if n:
            assert_count(await text_of(page.locator(f'#outcomes-table tr[data-code="{code}"] td').first), n)
    for code, reasons in summary["outcomes"]["reasons"].items():
        for reason, n in reasons.items():
            row = page.locator(f'#reasons-table tr[data-code="{code}"][data-reason="{reason}"]')
            assert_count(await text_of(row.locator("td").nth(2)), n)
    for reason, n in summary["hand_backs"].items():
        assert_count(await text_of(page.locator(f'#handbacks-table tr[data-reason="{reason}"] td')), n)
    backups = summary["backup_requests"]
    assert await text_of(page.locator("#backups")) == f"{backups:,} {'time' if backups == 1 else 'times'}"


async def check_times(page: Page, summary: dict[str, Any]) -> None:
    expected = {("all", "time_to_commitment_s"): summary["time_to_commitment_s"]}
    for agency, stages in summary["times_by_agency"].items():
        expected |= {(agency, stage): p for stage, p in stages.items()}
    expected = {k: p for k, p in expected.items() if p["count"]}
    rows = await page.locator("#times-table tr[data-stage]").all()
    assert len(rows) == len(expected)
    for row in rows:
        p = expected[
            (await row.get_attribute("data-agency") or "", await row.get_attribute("data-stage") or "")
        ]
        cells = row.locator("td")
        assert_count(await text_of(cells.nth(1)), p["count"])
        for n, key in enumerate(("p50", "p90", "p99"), start=2):
            assert_duration(await text_of(cells.nth(n)), p[key])


async def check_gaps(page: Page, summary: dict[str, Any]) -> None:
    values = await page.eval_on_selector_all(
        "#gaps-table tbody tr[data-day] td[data-hour]", "cells => cells.map(c => Number(c.dataset.value))"
    )
    assert values == summary["coverage_gaps_by_hour_of_week"]
    assert await page.locator("#gaps-table tbody tr[data-day] th").all_text_contents() == list(DAYS)


async def check_areas(page: Page, areas: dict[str, Any]) -> int:
    """Every zone's row and its hours as the API has them; returns how many cells were suppressed."""
    suppressed = 0
    for zone in [*areas["zones"], {"zone": "all", "total": areas["total"], "hours": areas["hours"]}]:
        row = page.locator(f'#areas-table tr[data-zone="{zone["zone"]}"]')
        cells = row.locator("td")
        total = zone["total"]
        if total["suppressed"]:
            assert await cells.all_text_contents() == ["suppressed"] * 6, zone["zone"]
            suppressed += 1
        else:
            assert_count(await text_of(cells.nth(0)), total["calls"])
            for n, key in enumerate(("diversion_rate", "police_involvement_rate", "hand_back_rate"), start=1):
                assert_near(await text_of(cells.nth(n)), total[key], 100, 1)
            times = total["call_to_on_scene_s"]
            assert_duration(await text_of(cells.nth(4)), times["p50"])
            assert_duration(await text_of(cells.nth(5)), times["p90"])
        grid = page.locator(f'#area-hours-table tr[data-zone="{zone["zone"]}"] td')
        hidden = await grid.evaluate_all("cells => cells.map(c => c.dataset.suppressed === 'true')")
        shown = await grid.evaluate_all("cells => cells.map(c => c.dataset.value ?? null)")
        for cell, is_hidden, value in zip([*zone["hours"], total], hidden, shown, strict=True):
            assert is_hidden == cell["suppressed"], (zone["zone"], cell)
            assert value == (None if cell["suppressed"] else str(cell["calls"])), (zone["zone"], cell)
        # The map draws the zone (not `unzoned`, `unlocated`, `all`) with its figure or `suppressed`.
        if zone["zone"] not in ("unzoned", "unlocated", "all"):
            label = page.locator(f'#zone-map polygon[data-zone="{zone["zone"]}"] title')
            expected = "suppressed" if total["suppressed"] else f"{total['calls']:,} calls"
            assert expected in await text_of(label)
    return suppressed


async def check_workforce(page: Page, workforce: dict[str, Any]) -> None:
    hours = [h for h in workforce["hours"] if h["arrivals"] > 0 or h["shortfall"]]
    rows = await page.locator("#workforce-table tr[data-hour-of-week]").all()
    assert [int(await r.get_attribute("data-hour-of-week") or -1) for r in rows] == [
        h["hour_of_week"] for h in hours
    ]
    for row, h in zip(rows, hours, strict=True):
        cells = row.locator("td")
        assert_count(await text_of(cells.nth(1)), h["arrivals"])
        assert_near(await text_of(cells.nth(2)), h["arrivals_per_h"], 1, 2)
        assert_count(await text_of(cells.nth(3)), h["teams_needed"])
        assert_count(await text_of(cells.nth(4)), h["places_on_shift"])
        assert_count(await text_of(cells.nth(5)), h["shortfall"])
    t = workforce["totals"]
    totals = await text_of(page.locator("#workforce-totals"))
    needed = NONE if t["team_hours_needed"] is None else f"{t['team_hours_needed']:,}"
    assert f"needed {needed}," in totals
    assert f"on shift {t['team_hours_on_shift']:,}," in totals


async def check_shadow(page: Page, shadow: dict[str, Any]) -> None:
    line = await text_of(page.locator("#shadow-line"))
    assert line.startswith(
        f"{shadow['compared']:,} calls triaged by both rule sets; {shadow['differ']:,} would"
    )
    rows = await page.locator("#shadow-table tr[data-pair]").all()
    assert len(rows) == len(shadow["pairs"])
    for row, pair in zip(rows, shadow["pairs"], strict=True):
        cells = await row.locator("td").all_text_contents()
        assert cells == [pair["active"], pair["other"], f"{pair['calls']:,}", " ".join(pair["call_ids"])]


async def check_integrity(page: Page, http: httpx.AsyncClient, system: System) -> None:
    """The checkpoint shown is one audit signed, with the root shown; the trail shown is at least
    that long and at most as long as it is now (status callbacks keep adding events meanwhile)."""
    fact = page.locator("#integrity-table")

    async def shown(key: str) -> str:
        return await text_of(fact.locator(f'[data-fact="{key}"] td'))

    size = int((await shown("checkpoint_tree_size")).replace(",", ""))
    rows = int((await shown("trail_rows")).replace(",", ""))
    note = await http.get(
        f"{system.url('audit')}/v1/audit/checkpoint", params={"size": size}, headers=system.token(OVERSIGHT)
    )
    assert note.status_code == 200, note.text
    assert base64.b64decode(note.text.split("\n")[2]).hex() == await shown("checkpoint_root")
    assert await shown("checkpoint_signature") == "verifies with audit's key"
    now = await report(http, system, "integrity", {})
    assert now["checkpoint"]["signature_ok"] and size <= rows <= now["head_seq"], (size, rows, now)
    assert (await shown("verification_result")).startswith("OK")


async def downloaded(page: Page, button: Locator) -> str:
    async with page.expect_download() as info:
        await button.click()
    download = await info.value
    saved = await download.path()
    # Bytes, not read_text: the CSV's CRLF line ends are part of what must match.
    return (await asyncio.to_thread(Path(saved).read_bytes)).decode()


def sections(text: str, keep: set[str]) -> str:
    lines = [line for line in text.split("\r\n") if line]
    return "\r\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[0] in keep)]) + "\r\n"


async def check_downloads(
    page: Page, http: httpx.AsyncClient, system: System, period: dict[str, str]
) -> None:
    """Each table's CSV is the API's own CSV (a summary table: its sections of the summary's)."""
    summary = await report_csv(http, system, "summary", period)
    for button in await page.locator("section button.csv[data-csv='summary']").all():
        keep = {"period", *(await button.get_attribute("data-sections") or "").split(",")}
        assert await downloaded(page, button) == sections(summary, keep)
    assert await downloaded(page, page.locator("#download-summary")) == summary
    for name in ("areas", "workforce", "shadow"):
        assert await downloaded(page, page.locator(f"#{name} button.csv")) == await report_csv(
            http, system, name, period
        )
    integrity = list(csv.reader(io.StringIO(await downloaded(page, page.locator("#integrity button.csv")))))
    facts = page.locator("#integrity-table tr[data-fact]")
    keys = await facts.evaluate_all("rows => rows.map(r => r.dataset.fact)")
    assert integrity == [
        ["figure", "value"],
        *map(list, zip(keys, await facts.locator("td").all_text_contents(), strict=True)),
    ]


async def test_the_dashboard_shows_the_apis_figures_for_a_played_scenario(
    system: System, browser: Browser, shots: Path
):
    context = await browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = await context.new_page()
    async with httpx.AsyncClient(timeout=30) as http:
        # Refused: no token, an agency's token (audit knows only oversight and admin tokens), a token
        # nobody issued; the page says so and shows nothing.
        reports = f"{system.url('audit')}/v1/reports"
        assert (await http.get(f"{reports}/summary")).status_code == 401
        refused = await http.get(f"{reports}/areas", headers=system.token("riverbend-crisis"))
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated", refused.text
        await page.goto(f"{system.url('audit')}/dashboard")
        await sign_in(page, system.token("riverbend-crisis")["Authorization"].removeprefix("Bearer "))
        await expect(page.locator("#login-error")).to_contain_text("not accepted")
        await expect(page.locator("#board")).to_be_hidden()
        await sign_in(page, "not-a-token-anyone-issued")
        await expect(page.locator("#login-error")).to_contain_text("not accepted")
        await expect(page.locator("#board")).to_be_hidden()

        # A bad Accept or a bad period answers 4xx with its code, never a figure.
        who = system.token(OVERSIGHT)
        bad = await http.get(f"{reports}/summary", headers={**who, "Accept": "application/pdf"})
        assert bad.status_code == 406 and bad.json()["code"] == "not_acceptable", bad.text
        bad = await http.get(f"{reports}/summary", params={"from": "yesterday"}, headers=who)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request", bad.text

        # An empty period, long before any call: zeros and empty tables, never an error.
        await sign_in(page, who["Authorization"].removeprefix("Bearer "))
        await loaded(page)
        # A period the reports refuse: the page says why, with the API's code.
        await page.locator("#from").fill("2020-01-01")
        await page.locator("#to").fill("2026-01-01")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#period-error")).to_contain_text("period_too_long")
        # The figures shown stay those of the period the line still names.
        await expect(page.locator("#period")).to_contain_text("Calls received from")
        await page.locator("#to").fill("2019-12-31")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#period-error")).to_contain_text("on or before the last day")
        await page.locator("#from").fill("2020-03-02")
        await page.locator("#to").fill("2020-03-08")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#period")).to_contain_text("Mon, 2 Mar 2020 to Sun, 8 Mar 2020")
        empty = await loaded(page)
        await expect(page.locator("#empty-note")).to_be_visible()
        await check_funnel(page, await report(http, system, "summary", empty))
        await check_areas(page, await report(http, system, "areas", empty))
        await page.screenshot(path=str(shots / "dashboard-empty.png"), full_page=True)

        calls = await play(http, system)
        await eventually(
            lambda: report(http, system, "summary", {}),
            lambda s: settled(s, calls),
            what="the scenario's outcomes in the audit summary",
            timeout_s=90,
        )
        # A signed checkpoint covers the whole trail (one is signed every second while it grows).
        await eventually(
            lambda: report(http, system, "integrity", {}),
            lambda i: i["checkpoint"] is not None and i["checkpoint"]["tree_size"] == i["head_seq"],
            what="a checkpoint of the whole trail",
        )

        # The default period (the last seven local days) holds the scenario.
        await page.reload()
        period = await loaded(page)
        summary = await report(http, system, "summary", period)
        assert summary["funnel"]["received"] == calls
        await expect(page.locator("#empty-note")).to_be_hidden()
        await check_funnel(page, summary)
        await check_times(page, summary)
        await check_gaps(page, summary)
        assert sum(summary["coverage_gaps_by_hour_of_week"]) == 1
        areas = await report(http, system, "areas", period)
        downtown = next(z for z in areas["zones"] if z["zone"] == "downtown")
        assert not downtown["total"]["suppressed"] and downtown["total"]["calls"] == calls
        assert await check_areas(page, areas) == 5  # campus, springfield, river-road, unzoned, unlocated
        await check_workforce(page, await report(http, system, "workforce", period))
        shadow = await report(http, system, "shadow", period)
        # The two review calls; the draft, which has no coverage rule, also takes the gap's call.
        assert shadow["differ"] >= 2 and any(p["active"] == "review" for p in shadow["pairs"])
        await check_shadow(page, shadow)
        await check_integrity(page, http, system)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways on a laptop by {overflow}px"
        # The README's picture (docs/dashboard.png) is this one.
        await page.screenshot(path=str(shots / "dashboard-populated.png"), full_page=True)
        for part in ("funnel", "outcomes", "times", "gaps", "areas", "workforce", "shadow", "integrity"):
            await page.locator(f"#{part}").screenshot(path=str(shots / f"dashboard-populated-{part}.png"))
        await check_downloads(page, http, system, period)

        # Printed: no controls, every figure.
        await page.emulate_media(media="print")
        await expect(page.locator("#period-form")).to_be_hidden()
        await expect(page.locator("section button.csv").first).to_be_hidden()
        await page.screenshot(path=str(shots / "dashboard-print.png"), full_page=True)
        await page.emulate_media(media="screen")

        # One call from campus: shown beside downtown's total, downtown's figures would tell it by
        # subtraction, so downtown is suppressed too, on screen and in the CSV.
        await post(http, system, call(CAMPUS, safety={**NO, "weapon": "yes"}))
        await eventually(
            lambda: report(http, system, "summary", period),
            lambda s: s["funnel"]["received"] == calls + 1,
            what="the campus call in the summary",
        )
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#areas-table tr[data-zone='downtown'] td").first).to_have_text(
            "suppressed"
        )
        await loaded(page)
        areas = await report(http, system, "areas", period)
        assert all(z["total"]["suppressed"] for z in areas["zones"]) and not areas["total"]["suppressed"]
        assert await check_areas(page, areas) == len(areas["zones"])
        await page.locator("#areas").screenshot(path=str(shots / "dashboard-suppressed.png"))
        rows = list(csv.DictReader(io.StringIO(await downloaded(page, page.locator("#areas button.csv")))))
        hidden = [r for r in rows if r["zone"] != "all"]
        assert hidden and all(set(list(r.values())[2:]) == {"suppressed"} for r in hidden)
        assert next(r for r in rows if r["zone"] == "all" and r["hour"] == "all")["calls"] == str(calls + 1)
    await context.close()
