"""The browser console for agencies without software: one static page that talks to notify's API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.errors import not_found

FILES = Path(__file__).parent / "console"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
# The page loads only its own script and style, and talks only to this origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# GET /console and its two assets (no credentials: the page asks for the agency token).
router = APIRouter(prefix="/console", tags=["console"])


@router.get("", include_in_schema=False)
async def page() -> FileResponse:
    """The console page."""
    return FileResponse(FILES / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    """The console's script or style sheet."""
    if name not in ASSETS:
        raise not_found("file")
    return FileResponse(FILES / name, media_type=ASSETS[name], headers=HEADERS)
