"""One running system shared by the end-to-end tests on the main broker, and a real browser."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.system import System, running_system

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    async with running_system(stack, Path(tmp_path_factory.mktemp("e2e"))) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # chromium comes from Debian, installed by `make install` (apt-get install chromium).
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test's screenshots go: CAREROUTE_SCREENSHOTS when set (to look at them), else its tmp."""
    where = os.environ.get("CAREROUTE_SCREENSHOTS")
    return Path(where) if where else tmp_path
