"""One running system shared by the end-to-end tests on the main broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.system import System, running_system


@pytest.fixture(scope="package")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    async with running_system(stack, Path(tmp_path_factory.mktemp("e2e"))) as running:
        yield running
