"""End to end as an operator runs it: a coordinator runs the pipelines, ``streamcoord serve``
(a child process, tokens from the environment) lists their runs with the right states, a retry
and a cancel sent through the API take effect on the coordinator, a viewer is refused an action
and a caller without a token is refused everything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from streamcoord.auth import hash_token, new_token
from streamcoord.runtime import TopicNames
from tests.api.helpers import decided, eventually, run_path
from tests.api.serve_process import serve_process
from tests.api.stack import SPEC, executor
from tests.integration.coordination import create_topics, in_process

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


async def test_runs_states_retry_cancel_and_refusals_through_serve(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = TopicNames(prefix=unique_name("e2e") + ".")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "test.yaml").write_text(SPEC)
    plain = {role: new_token() for role in ("viewer", "operator")}
    env = {"STREAMCOORD_AUTH_TOKENS": orjson.dumps([
        {"name": f"e2e-{role}", "role": role, "sha256": hash_token(token)}
        for role, token in plain.items()
    ]).decode()}  # fmt: skip
    database = f"sqlite:///{tmp_path / 'readmodel.db'}"
    async with (
        in_process(kafka_bootstrap, topics, unique_name("group"), spec=SPEC, executor=False) as h,
        serve_process(kafka_bootstrap, topics.prefix, tmp_path / "specs", database,
                      env=env) as served,
    ):  # fmt: skip
        answering = asyncio.create_task(executor(h))
        try:
            await scenario(served.url, plain)
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
    assert served.admin_token is None  # tokens were configured: none generated


def states(page: dict[str, Any]) -> dict[str, str]:
    return {run["run_id"]: run["status"] for run in page["items"]}


async def scenario(url: str, plain: dict[str, str]) -> None:
    def client(role: str | None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {plain[role]}"} if role else {}
        return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)

    async with client("operator") as operator, client("viewer") as viewer, client(None) as nobody:
        await eventually(nobody, "/readyz", lambda body: body["status"] == "ready")
        for pipeline in ("manual", "flaky", "waits"):
            response = await operator.post(f"/api/v1/pipelines/{pipeline}/runs",
                                           json={"run_key": "d1"})  # fmt: skip
            assert response.status_code == 202, response.text
            assert (await decided(viewer, response.json()["link"]))["state"] == "accepted"

        listed = await eventually(
            viewer, "/api/v1/runs",
            lambda page: states(page) == {"manual/d1": "succeeded", "flaky/d1": "failed",
                                          "waits/d1": "active"},
        )  # fmt: skip
        assert {r["requested_by"] for r in listed["items"]} == {"e2e-operator"}

        refused = await viewer.post(run_path("flaky/d1") + "/stages/work/retry")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert (await nobody.get("/api/v1/runs")).status_code == 401
        assert (await nobody.post(run_path("waits/d1") + "/cancel")).status_code == 401
        assert (await operator.post("/api/v1/pipelines/manual/pause")).status_code == 403

        retry = await operator.post(run_path("flaky/d1") + "/stages/work/retry")
        cancel = await operator.post(run_path("waits/d1") + "/cancel", json={"reason": "e2e"})
        assert (await decided(viewer, retry.json()["link"]))["state"] == "accepted"
        assert (await decided(viewer, cancel.json()["link"]))["state"] == "accepted"
        await eventually(
            viewer, "/api/v1/runs",
            lambda page: states(page) == {"manual/d1": "succeeded", "flaky/d1": "succeeded",
                                          "waits/d1": "cancelled"},
        )  # fmt: skip
        flaky = (await viewer.get(run_path("flaky/d1"))).json()
        attempts = [(a["attempt"], a["status"]) for a in flaky["stages"][0]["attempts"]]
        assert attempts[-1] == (2, "succeeded")
        audit = (await viewer.get(run_path("waits/d1") + "/audit")).json()
        cancelled_by = [e["actor"] for e in audit if e["type"] == "streamcoord.run.cancel"]
        assert cancelled_by == ["e2e-operator"]
