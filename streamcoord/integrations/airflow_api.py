"""The part of Airflow 3's REST API (``/api/v2``) the Airflow executor and bridge use, on httpx.

Authentication: a bearer token given as is, or a user and password exchanged for one at
``POST /auth/token`` (Airflow's simple and FAB auth managers both answer it); an expired token
(401) is fetched again once. Errors are :class:`AirflowApiError` with the status, the path and
Airflow's ``detail``; :attr:`AirflowApiError.retryable` says whether asking again may help.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import JsonValue

from streamcoord.errors import StreamcoordError

__all__ = ["TERMINAL_STATES", "AirflowApiError", "AirflowClient", "dag_run_url"]

#: DAG run states after which nothing changes unless someone clears the run.
TERMINAL_STATES: Final = frozenset({"success", "failed"})
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class AirflowApiError(StreamcoordError):
    """Airflow refused or did not answer a request."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = status is None or status in _RETRYABLE_STATUS


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """Where the DAG run shows in Airflow's UI."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


class AirflowClient:
    """An async client for one Airflow API server; use as ``async with AirflowClient(...)``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._login = (username, password) if username is not None and token is None else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> AirflowClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- DAGs and DAG runs ----------------------------------------------------------------

    async def dag(self, dag_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v2/dags/{_seg(dag_id)}")

    async def unpause(self, dag_id: str) -> None:
        await self._json("PATCH", f"/api/v2/dags/{_seg(dag_id)}", json={"is_paused": False})

    async def trigger(
        self, dag_id: str, run_id: str, conf: Mapping[str, JsonValue]
    ) -> tuple[dict[str, Any], bool]:
        """Create the DAG run ``run_id``; ``(run, False)`` when it existed already (a trigger
        delivered again after a crash follows the run it started before)."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)}
        try:
            return await self._json("POST", f"/api/v2/dags/{_seg(dag_id)}/dagRuns", json=body), True
        except AirflowApiError as error:
            if error.status != 409:
                raise
        return await self.dag_run(dag_id, run_id), False

    async def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")

    async def set_dag_run_state(self, dag_id: str, run_id: str, state: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}"
        return await self._json("PATCH", path, json={"state": state})

    async def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        data = await self._json("GET", path, params={"limit": 1000})
        items = data.get("task_instances", [])
        return [item for item in items if isinstance(item, dict)]

    # ---- assets ---------------------------------------------------------------------------

    async def asset_events(
        self,
        since: datetime | None,
        *,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Asset events at or after ``since`` (all when None), oldest first (or newest)."""
        order = "-timestamp" if newest_first else "timestamp"
        params: dict[str, Any] = {"order_by": order, "limit": limit, "offset": offset}
        if since is not None:
            params["timestamp_gte"] = since.isoformat()
        data = await self._json("GET", "/api/v2/assets/events", params=params)
        items = data.get("asset_events", [])
        return [item for item in items if isinstance(item, dict)]

    # ---- plumbing -------------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(method, path, **kwargs)
        if response.status_code == 401 and self._login is not None:
            self._token = None  # expired: log in again, once
            response = await self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(method, path, response)
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {"items": data}

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self._bearer()}"} if self._auth else {}
        try:
            return await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            raise AirflowApiError(
                f"{method} {self.base_url}{path} failed: {type(error).__name__}: {error}",
                hint="check that the Airflow API server runs and base_url points at it",
            ) from None

    @property
    def _auth(self) -> bool:
        return self._token is not None or self._login is not None

    async def _bearer(self) -> str:
        if self._token is not None:
            return self._token
        assert self._login is not None  # _auth holds
        username, password = self._login
        try:
            response = await self._http.post(
                "/auth/token", json={"username": username, "password": password or ""}
            )
        except httpx.HTTPError as error:
            raise AirflowApiError(
                f"POST {self.base_url}/auth/token failed: {type(error).__name__}: {error}"
            ) from None
        if response.status_code >= 400:
            raise _error("POST", "/auth/token", response)
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise AirflowApiError(f"{self.base_url}/auth/token answered without an access_token")
        self._token = token
        return token


def _seg(value: str) -> str:
    return quote(value, safe="")


def _error(method: str, path: str, response: httpx.Response) -> AirflowApiError:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    hint = {
        401: "check the credentials (username/password or token)",
        403: "the user may not do this: give it the permission in Airflow",
        404: "check dag_id and that the DAG was parsed by Airflow",
    }.get(response.status_code, "")
    return AirflowApiError(
        f"Airflow answered {method} {path} with HTTP {response.status_code}: {str(detail)[:500]}",
        status=response.status_code,
        hint=hint,
    )
