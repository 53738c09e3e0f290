"""Backfills through the API on a real broker and coordinator: started, followed, paused,
resumed and cancelled as a group; a repeated backfill requests nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import decided, eventually, run_path
from tests.api.stack import Stack
from tests.api.test_contract import assert_problem

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


async def start(stack: Stack, pipeline: str, **body: Any) -> dict[str, Any]:
    async with stack.client("operator") as client:
        response = await client.post(f"/api/v1/pipelines/{pipeline}/backfills", json=body)
    assert response.status_code == 202, response.text
    view: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/v1/backfills/{view['id']}"
    return view


async def test_a_backfill_runs_each_key_once_at_most_n_at_once(stack: Stack) -> None:
    view = await start(stack, "manual", **{"from": "2026-01-01", "to": "2026-01-10"},
                       max_active=3, order="newest")  # fmt: skip
    assert (view["pipeline"], view["first_key"], view["last_key"]) == (
        "manual", "2026-01-10", "2026-01-01"
    )  # fmt: skip
    assert view["principal"] == "test-operator"
    link = f"/api/v1/backfills/{view['id']}"
    async with stack.client("viewer") as client:
        done = await eventually(client, link, lambda b: b["state"] != "running")
        listed = (await client.get("/api/v1/backfills")).json()
    progress = done["progress"]
    assert done["state"] == "succeeded", done
    assert (progress["planned"], progress["started"], progress["requested"]) == (10, 10, 10)
    assert (progress["succeeded"], progress["failed"], progress["cancelled"]) == (10, 0, 0)
    assert (progress["active"], progress["done"]) == (0, True)
    assert 1 <= progress["peak_active"] <= 3
    assert [b["id"] for b in listed] == [view["id"]]

    # the same keys again, listed this time: the same backfill, and no run is requested again
    again = await start(stack, "manual", keys=[f"2026-01-{d:02}" for d in range(1, 11)])
    assert again["id"] == view["id"]
    async with stack.client("viewer") as client:
        done = await eventually(client, link, lambda b: b["state"] != "running")
        run = (await client.get(run_path("manual/2026-01-04"))).json()
    assert done["state"] == "succeeded"
    assert (done["progress"]["requested"], done["progress"]["succeeded"]) == (0, 10)
    assert run["run_id"] == "manual/2026-01-04"


async def test_pause_holds_new_runs_resume_goes_on_cancel_stops_the_group(stack: Stack) -> None:
    # `waits` never finishes a run: the backfill stays at its limit until runs are cancelled
    view = await start(stack, "waits", keys=["a", "b", "c", "d", "e"], max_active=2)
    link = f"/api/v1/backfills/{view['id']}"
    async with stack.client("operator") as client:
        await eventually(client, link, lambda b: b["progress"]["active"] == 2)
        paused = (await client.post(f"{link}/pause")).json()
        assert paused["state"] == "paused"
        cancel = await client.post(run_path("waits/a") + "/cancel", json={"reason": "one"})
        assert (await decided(client, cancel.json()["link"]))["state"] == "accepted"
        seen = await eventually(client, link, lambda b: b["progress"]["cancelled"] == 1)
        assert (seen["state"], seen["progress"]["started"]) == ("paused", 2)

        resumed = (await client.post(f"{link}/resume")).json()
        assert resumed["state"] == "running"
        await eventually(client, link, lambda b: b["progress"]["started"] == 3)  # c took a's place

        cancelled = await client.post(f"{link}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert sorted(cancelled.json()["cancelled_runs"]) == ["waits/b", "waits/c"]
        final = await eventually(client, link, lambda b: b["progress"]["active"] == 0)
    progress = final["progress"]
    assert final["state"] == "cancelled"
    assert (progress["planned"], progress["started"], progress["cancelled"]) == (5, 3, 3)
    assert (progress["succeeded"], progress["done"]) == (0, False)


async def test_bad_backfills_are_refused_with_a_problem(stack: Stack) -> None:
    start = "/api/v1/pipelines/manual/backfills"
    async with stack.client("operator") as operator, stack.client("viewer") as viewer:
        backwards = await operator.post(start, json={"from": "2026-01-02", "to": "2026-01-01"})
        no_manual = await operator.post("/api/v1/pipelines/eventful/backfills",
                                        json={"keys": ["2026-01-01"]})  # fmt: skip
        both = await operator.post(start, json={"keys": ["x"], "from": "2026-01-01"})
        unknown = await operator.post("/api/v1/pipelines/nope/backfills", json={"keys": ["x"]})
        missing = await viewer.get("/api/v1/backfills/manual-000000000000")
        forbidden = await viewer.post(start, json={"keys": ["x"]})
    assert "before it starts" in assert_problem(backwards, 422, "invalid-backfill")["detail"]
    assert "no manual trigger" in assert_problem(no_manual, 422, "invalid-backfill")["detail"]
    assert_problem(both, 422, "invalid-request")
    assert_problem(unknown, 404, "unknown-pipeline")
    assert_problem(missing, 404, "unknown-backfill")
    assert_problem(forbidden, 403, "forbidden")
