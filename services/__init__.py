"""careroute's four services; each package's `service.build` is its composition root."""

from __future__ import annotations

import importlib

from shared.runtime import Builder
from shared.settings import SERVICE_NAMES


def builder(name: str) -> Builder:
    """The composition root of one service."""
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICE_NAMES)}")
    module = importlib.import_module(f"services.{name}.service")
    build: Builder = module.build
    return build


def builders(names: list[str]) -> dict[str, Builder]:
    """The composition roots of the named services."""
    return {n: builder(n) for n in names}
