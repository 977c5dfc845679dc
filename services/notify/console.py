"""The browser console for agencies without software: one static page that talks to notify's API."""

from __future__ import annotations

from pathlib import Path

from shared.pages import page_router

FILES = Path(__file__).parent / "console"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}

# GET /console and its two assets (no credentials: the page asks for the agency token).
router = page_router("/console", FILES, ASSETS, "console")
