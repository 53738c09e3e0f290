"""The web UI of ``streamcoord serve``: static files (ES modules and CSS, no build step) shipped
in this package and served at ``/``. The pages read and act only through the public HTTP API
(``/api/v1``) with the token the user pastes; nothing here reads the store.

:func:`mount_ui` adds them to an app. Besides the files, ``/ui-config.json`` tells the pages the
settings they cannot get from the API: the Jaeger UI's URL (``STREAMCOORD_JAEGER_URL``), to link a
run to its trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["JAEGER_URL_ENV", "STATIC_DIR", "mount_ui"]

#: The directory of the UI's files (package data).
STATIC_DIR = Path(__file__).parent / "static"
#: Where the Jaeger UI is (e.g. http://127.0.0.1:16686); runs link to their trace there.
JAEGER_URL_ENV = "STREAMCOORD_JAEGER_URL"

# Scripts and styles come from this origin only: no CDN, nothing inline.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _UiFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.split("/", 1)[0] == "api":  # the API's unknown paths stay the API's 404s
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        # The files change with the package: revalidate instead of serving stale modules.
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_ui(app: Starlette, jaeger_url: str | None = None) -> None:
    """Serve the UI at ``/`` of ``app`` and its settings at ``/ui-config.json``; call it after
    every other route (the mount matches any path the routes before it did not). A missing file
    raises the app's own 404, so it answers in the app's error format.

    ``jaeger_url`` defaults to ``STREAMCOORD_JAEGER_URL``."""
    jaeger = jaeger_url if jaeger_url is not None else os.environ.get(JAEGER_URL_ENV, "")

    async def config(_: Request) -> JSONResponse:
        return JSONResponse({"jaeger_url": jaeger.rstrip("/") or None}, headers=_HEADERS)

    app.add_route("/ui-config.json", config, include_in_schema=False)
    app.mount("/", _UiFiles(directory=STATIC_DIR, html=True), name="ui")
