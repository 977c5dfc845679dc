"""The console's page and assets are served with their types and a strict policy; nothing else is."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.notify import console
from shared.errors import install_error_handlers


def client() -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(console.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify")


async def test_the_page_and_its_assets_are_served_with_a_content_security_policy():
    async with client() as http:
        for path, kind in (
            ("/console", "text/html"),
            ("/console/console.js", "text/javascript"),
            ("/console/console.css", "text/css"),
        ):
            answer = await http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith(kind), path
            assert "default-src 'self'" in answer.headers["content-security-policy"]
        page = (await http.get("/console")).text
        assert 'name="viewport"' in page and 'for="token"' in page and 'lang="en"' in page


async def test_any_other_file_is_a_json_404():
    async with client() as http:
        for path in ("/console/index.py", "/console/..%2Fconsole.py", "/console/console.js.map"):
            answer = await http.get(path)
            assert answer.status_code == 404 and answer.json()["code"] == "not_found", path
