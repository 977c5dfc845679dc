"""A static browser page and its assets, served by a service with a policy that lets it load only
its own files and talk only to its own origin (no inline script, no CDN, no framing)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.errors import not_found

# The page loads only its own script and style, and talks only to this origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_router(prefix: str, folder: Path, assets: Mapping[str, str], tag: str) -> APIRouter:
    """GET `prefix` (the folder's index.html) and GET `prefix`/<name> for each of `assets` (name ->
    media type); any other name answers 404. No credentials: the page asks for a token itself and
    keeps it in memory, so it never sits in a URL, a log or a cookie."""
    router = APIRouter(prefix=prefix, tags=[tag])

    @router.get("", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html", headers=HEADERS)

    @router.get("/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in assets:
            raise not_found("file")
        return FileResponse(folder / name, media_type=assets[name], headers=HEADERS)

    return router
