"""Entry point shared by `python -m services`, `python -m services.<name>` and `careroute run`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import structlog

from services import builders
from services.topology import TOPOLOGY
from shared.logging import configure_logging
from shared.runtime import StartupError, run
from shared.settings import SERVICE_NAMES, Settings


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): several times less CPU per socket operation."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(names: list[str] | None = None) -> None:
    """Load settings once, then run the named services (all four by default) until signalled."""
    chosen = names or list(SERVICE_NAMES)
    unknown = [n for n in chosen if n not in SERVICE_NAMES]
    if unknown:
        sys.exit(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(run(settings, chosen, builders(chosen), topology=TOPOLOGY))
    except StartupError as exc:
        structlog.get_logger("careroute").error("cannot start", error=str(exc))
        sys.exit(f"careroute: {exc}")
