"""The FastAPI application of ``streamcoord serve``: OpenAPI 3.1 at ``/openapi.json``, docs at
``/docs`` (Swagger UI served from this process, no CDN), the API under ``/api/v1``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from streamcoord import __version__
from streamcoord.api import _action_routes, _backfill_routes, _read_routes, _stream_routes
from streamcoord.api._feed import ChangeFeed
from streamcoord.api._problems import Problem, install_problem_handlers, problem_response
from streamcoord.api._services import ApiServices
from streamcoord.auth import BodyLimit
from streamcoord.ui import mount_ui

__all__ = ["create_app"]

_DESCRIPTION = """\
See and operate streamcoord pipelines. Reads come from the read model `streamcoord serve`
projects from Kafka; every action is a command event on Kafka with the caller as principal,
answered `202 Accepted` with a link to the coordinator's verdict.

Authenticate with `Authorization: Bearer <token>`. Roles: `viewer` reads, `operator` also
requests, cancels and retries runs and runs backfills, `admin` also pauses and resumes
pipelines. Errors are
`application/problem+json` (RFC 9457) with a stable `type`.
"""


def create_app(services: ApiServices, *, feed_interval_s: float = 0.5) -> FastAPI:
    """The app; ``services`` are started and stopped by the caller, the change feed by the
    app's lifespan."""
    feed = ChangeFeed(services.store, interval_s=feed_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop), name="change feed")
        try:
            yield
        finally:
            feed.close()
            stop.set()
            await task

    app = FastAPIOffline(
        title="streamcoord", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
        openapi_url="/openapi.json", static_url="/static/docs",
        swagger_ui_parameters={"persistAuthorization": True}, redoc_url=None,
    )  # fmt: skip
    app.state.services = services
    app.state.feed = feed
    install_problem_handlers(app)
    app.include_router(_read_routes.router)
    app.include_router(_action_routes.router)
    app.include_router(_backfill_routes.router)
    app.include_router(_stream_routes.router)
    app.add_middleware(BodyLimit, max_bytes=services.max_body_bytes)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if services.ready():
            return JSONResponse({"status": "ready"})
        return problem_response("not-ready", instance="/readyz")

    _register_problem_schema(app)
    mount_ui(app)  # the web UI at /, after every route (its mount matches any other path)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Put ``Problem`` under components/schemas, which the error responses refer to."""
    build = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
