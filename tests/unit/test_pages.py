"""The browser pages (notify's agency console, audit's oversight dashboard) and their assets are
served with their types and a strict policy; nothing else is."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from services.audit import dashboard
from services.notify import console
from shared.errors import install_error_handlers

PAGES = [
    pytest.param(console.router, "/console", "console", id="console"),
    pytest.param(dashboard.router, "/dashboard", "dashboard", id="dashboard"),
]


def client(router: APIRouter) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


@pytest.mark.parametrize(("router", "path", "name"), PAGES)
async def test_the_page_and_its_assets_are_served_with_a_content_security_policy(
    router: APIRouter, path: str, name: str
):
    async with client(router) as http:
        for url, kind in (
            (path, "text/html"),
            (f"{path}/{name}.js", "text/javascript"),
            (f"{path}/{name}.css", "text/css"),
        ):
            answer = await http.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith(kind), url
            assert "default-src 'self'" in answer.headers["content-security-policy"]
        page = (await http.get(path)).text
        assert 'name="viewport"' in page and 'for="token"' in page and 'lang="en"' in page
        # Only its own files: no script or style from anywhere else.
        assert "http://" not in page and "https://" not in page and "<script>" not in page


@pytest.mark.parametrize(("router", "path", "name"), PAGES)
async def test_any_other_file_is_a_json_404(router: APIRouter, path: str, name: str):
    async with client(router) as http:
        for url in (f"{path}/index.py", f"{path}/..%2F{name}.py", f"{path}/{name}.js.map"):
            answer = await http.get(url)
            assert answer.status_code == 404 and answer.json()["code"] == "not_found", url
