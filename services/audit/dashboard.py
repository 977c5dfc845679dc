"""The oversight dashboard: one static page that draws audit's reports for a chosen period."""

from __future__ import annotations

from pathlib import Path

from shared.pages import page_router

FILES = Path(__file__).parent / "dashboard"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

# GET /dashboard and its two assets (no credentials: the page asks for an oversight token).
router = page_router("/dashboard", FILES, ASSETS, "dashboard")
