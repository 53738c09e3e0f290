"""The UI's files as ``streamcoord serve`` serves them: from the package, locked to this origin,
and never in the way of the API's own answers."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from streamcoord.ui import STATIC_DIR, mount_ui


def client(jaeger_url: str | None = None) -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    mount_ui(app, jaeger_url)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui")


async def test_the_page_and_its_modules_come_from_this_origin_only() -> None:
    async with client() as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        referenced = re.findall(r'(?:src|href)="([^"#:]+)"', page.text)
        assert {"style.css", "app.js"} <= set(referenced)
        modules = {"app.js"}
        for name in sorted(STATIC_DIR.glob("*.js")):
            modules |= set(re.findall(r'from "\./([\w.]+)"', name.read_text()))
        for name in referenced + sorted(modules):
            assert (await http.get(f"/{name}")).status_code == 200, name
        # no CDN, no fonts or scripts from elsewhere
        for path in STATIC_DIR.iterdir():
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", path.read_text()), path


async def test_routes_before_the_mount_win_and_config_tells_the_jaeger_url() -> None:
    async with client("http://127.0.0.1:16686/") as http:
        assert (await http.get("/api/v1/ping")).json() == {"pong": "yes"}
        config = (await http.get("/ui-config.json")).json()
        assert config == {"jaeger_url": "http://127.0.0.1:16686"}
        assert (await http.get("/no-such-file.js")).status_code == 404
        assert (await http.post("/api/v1/nothing-here")).status_code == 404
    async with client("") as http:
        assert (await http.get("/ui-config.json")).json() == {"jaeger_url": None}
