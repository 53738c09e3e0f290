"""Every endpoint of the API on a real broker, a real coordinator and both stores."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streamcoord.events.models import RunRequested, RunRequestedData
from tests.api.helpers import decided, eventually, run_path
from tests.api.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/api/v1/problems/{code}"
    assert (body["status"], body["code"]) == (status, code)
    return body


def finished_with_attempts(run: dict[str, Any]) -> bool:
    """The run ended and the store has joined its attempts' ends (the decisions topic can be
    projected a moment after the runs topic)."""
    return run["status"] == "succeeded" and all(
        a["status"] == "succeeded" for s in run["stages"] for a in s["attempts"][-1:]
    )


async def request_run(stack: Stack, pipeline: str, key: str, **body: Any) -> dict[str, Any]:
    async with stack.client("operator") as client:
        response = await client.post(f"/api/v1/pipelines/{pipeline}/runs",
                                     json={"run_key": key, **body})  # fmt: skip
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    assert response.headers["location"] == accepted["link"] == f"/api/v1/commands/{accepted['id']}"
    return accepted


async def test_openapi_31_and_docs_served_without_a_cdn(stack: Stack) -> None:
    async with stack.client(None) as client:
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
        script = await client.get("/static/docs/swagger-ui-bundle.js")
    assert schema["openapi"].startswith("3.1")
    assert {"/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/stream",
            "/api/v1/commands/{command_id}", "/api/v1/pipelines/{pipeline}/graph",
            "/api/v1/dead-letters"} <= set(schema["paths"])  # fmt: skip
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "Problem" in schema["components"]["schemas"]
    assert docs.status_code == 200
    assert 'src="/static/docs/swagger-ui-bundle.js"' in docs.text
    assert "cdn" not in docs.text
    assert script.status_code == 200
    assert len(script.content) > 100_000


async def test_no_token_is_401_and_an_unknown_one_too(stack: Stack) -> None:
    async with stack.client(None) as client:
        missing = await client.get("/api/v1/pipelines")
        wrong = await client.get("/api/v1/pipelines", headers={"authorization": "Bearer sct_no"})
        basic = await client.get("/api/v1/runs", headers={"authorization": "Basic dTpw"})
    assert_problem(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert_problem(wrong, 401, "unauthorized")
    assert_problem(basic, 401, "unauthorized")


async def test_roles_viewer_reads_operator_acts_admin_pauses(stack: Stack) -> None:
    async with stack.client("viewer") as viewer, stack.client("operator") as operator:
        read = await viewer.get("/api/v1/pipelines")
        act = await viewer.post("/api/v1/pipelines/manual/runs", json={})
        cancel = await viewer.post(run_path("manual/x") + "/cancel")
        pause = await operator.post("/api/v1/pipelines/manual/pause")
        me = (await viewer.get("/api/v1/whoami")).json()
    assert read.status_code == 200
    assert "operator" in assert_problem(act, 403, "forbidden")["detail"]
    assert_problem(cancel, 403, "forbidden")
    assert "admin" in assert_problem(pause, 403, "forbidden")["detail"]
    assert me == {"name": "test-viewer", "role": "viewer"}


async def test_pipelines_list_spec_and_graph(stack: Stack) -> None:
    async with stack.client("viewer") as client:
        listed = (await client.get("/api/v1/pipelines")).json()
        one = (await client.get("/api/v1/pipelines/manual")).json()
        spec = (await client.get("/api/v1/pipelines/manual/spec")).json()
        graph = (await client.get("/api/v1/pipelines/manual/graph")).json()
        unknown = await client.get("/api/v1/pipelines/nope/graph")
    assert [p["name"] for p in listed] == ["downstream", "eventful", "flaky", "manual", "waits"]
    assert one["stages"] == ["first", "second"]
    assert (one["manual"], one["paused"]) == (True, False)
    assert one["spec_version"].startswith("sha256:")
    assert {p["name"]: p["manual"] for p in listed}["eventful"] is False
    assert spec["name"] == "manual"
    assert [s["name"] for s in spec["stages"]] == ["first", "second"]
    assert spec["stages"][1]["needs"] in (["first"], [{"stage": "first"}])
    assert [n["id"] for n in graph["nodes"]] == ["manual.first", "manual.second",
                                                 "downstream.report"]  # fmt: skip
    assert graph["edges"] == [{"source": "manual.first", "target": "manual.second"}]
    assert graph["cross_pipeline_edges"] == [
        {"source": "manual.second", "target": "downstream.report"}
    ]
    assert_problem(unknown, 404, "unknown-pipeline")


async def test_a_requested_run_is_accepted_listed_detailed_audited_and_explained(
    stack: Stack,
) -> None:
    accepted = await request_run(stack, "manual", "k1", params={"n": 3})
    assert accepted["state"] in ("pending", "accepted")
    async with stack.client("viewer") as client:
        command = await decided(client, accepted["link"])
        run = await eventually(client, run_path("manual/k1"), finished_with_attempts)
        listed = (await client.get("/api/v1/runs", params={"pipeline": "manual"})).json()
        audit = (await client.get(run_path("manual/k1") + "/audit")).json()
        linked = await eventually(client, accepted["link"], lambda c: c["runs"] == ["manual/k1"])
        explained = await client.get(run_path("manual/k1") + "/stages/second/explain")
        no_stage = await client.get(run_path("manual/k1") + "/stages/nope/explain")
    assert command["state"] == "accepted"
    assert (command["principal"], command["subject"]) == ("test-operator", "manual/k1")
    assert command["type"] == "streamcoord.run.requested"
    assert linked["state"] == "accepted"
    assert run["params"] == {"n": 3}
    assert run["requested_by"] == "test-operator"
    assert [(s["name"], s["status"]) for s in run["stages"]] == [
        ("first", "succeeded"),
        ("second", "succeeded"),
    ]
    attempt = run["stages"][0]["attempts"][0]
    assert (attempt["attempt"], attempt["status"], attempt["outputs"]) == (1, "succeeded",
                                                                          {"rows": 3})  # fmt: skip
    assert attempt["worker"] == "w1"
    assert "manual/k1" in [r["run_id"] for r in listed["items"]]
    request = next(e for e in audit if e["event_id"] == accepted["id"])
    assert (request["kind"], request["actor"]) == ("event", "test-operator")
    assert any(e["kind"] == "decision" for e in audit)
    body = explained.json()
    assert explained.status_code == 200, body
    assert (body["run_id"], body["stage"], body["status"]) == ("manual/k1", "second", "succeeded")
    assert [(n["need"], n["satisfied"]) for n in body["needs"]] == [("first", True)]
    assert_problem(no_stage, 404, "unknown-stage")


async def test_a_command_the_coordinator_rejects_shows_its_reason_and_a_dead_letter(
    stack: Stack,
) -> None:
    accepted = await request_run(stack, "eventful", "e1")
    async with stack.client("viewer") as client:
        command = await decided(client, accepted["link"])
        letters = await eventually(
            client, "/api/v1/dead-letters",
            lambda page: any(d["reason"] == "manual_not_allowed" for d in page["items"]),
        )  # fmt: skip
    assert (command["state"], command["reason"]) == ("rejected", "manual_not_allowed")
    assert command["message"]
    # the admitted copy on the internal topic was refused (refusals at admission name events)
    assert letters["items"][0]["origin"].startswith(stack.harness.topics.internal)


async def test_cancel_through_the_api_ends_the_run_cancelled(stack: Stack) -> None:
    await request_run(stack, "waits", "c1")
    async with stack.client("viewer") as viewer, stack.client("operator") as operator:
        await eventually(viewer, run_path("waits/c1"),
                         lambda r: r["stages"][0]["status"] == "running")  # fmt: skip
        response = await operator.post(run_path("waits/c1") + "/cancel", json={"reason": "test"})
        assert response.status_code == 202
        command = await decided(viewer, response.json()["link"])
        run = await eventually(viewer, run_path("waits/c1"), lambda r: r["status"] == "cancelled")
        unknown = await operator.post(run_path("waits/nope") + "/cancel")
        rejected = await decided(viewer, unknown.json()["link"])
    assert command["state"] == "accepted"
    assert run["stages"][0]["status"] == "cancelled"
    assert (rejected["state"], rejected["reason"]) == ("rejected", "unknown_run")


async def test_retry_through_the_api_runs_the_failed_stage_again(stack: Stack) -> None:
    await request_run(stack, "flaky", "r1")
    async with stack.client("viewer") as viewer, stack.client("operator") as operator:
        await eventually(viewer, run_path("flaky/r1"), lambda r: r["status"] == "failed")
        response = await operator.post(run_path("flaky/r1") + "/stages/work/retry")
        assert response.status_code == 202
        command = await decided(viewer, response.json()["link"])
        run = await eventually(viewer, run_path("flaky/r1"), lambda r: r["status"] == "succeeded")
    assert command["state"] == "accepted"
    attempts = run["stages"][0]["attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0]["error"] == "disk full"


async def test_pause_and_resume_show_on_the_pipeline(stack: Stack) -> None:
    async with stack.client("admin") as admin:
        paused = await admin.post("/api/v1/pipelines/downstream/pause")
        assert (await decided(admin, paused.json()["link"]))["state"] == "accepted"
        assert (await admin.get("/api/v1/pipelines/downstream")).json()["paused"] is True
        resumed = await admin.post("/api/v1/pipelines/downstream/resume")
        assert (await decided(admin, resumed.json()["link"]))["state"] == "accepted"
        after = (await admin.get("/api/v1/pipelines/downstream")).json()
        unknown = await admin.post("/api/v1/pipelines/nope/pause")
    assert after["paused"] is False
    assert_problem(unknown, 404, "unknown-pipeline")


async def test_run_list_filters_sorts_and_pages(stack: Stack) -> None:
    for key in ("p1", "p2", "p3"):
        await request_run(stack, "manual", key)
    async with stack.client("viewer") as client:
        await eventually(
            client, "/api/v1/runs", lambda page: len(page["items"]) >= 3,
            params={"pipeline": "manual", "status": "succeeded", "requested_by": "test-operator"},
        )  # fmt: skip
        first = (
            await client.get(
                "/api/v1/runs",
                params={"pipeline": "manual", "limit": 2, "sort": "created_at", "order": "asc"},
            )
        ).json()
        second = (await client.get("/api/v1/runs", params={
            "pipeline": "manual", "limit": 2, "sort": "created_at", "order": "asc",
            "cursor": first["next_cursor"]})).json()  # fmt: skip
        by_key = (await client.get("/api/v1/runs", params={"run_key": "p2"})).json()
        none = (await client.get("/api/v1/runs", params={"until": "2000-01-01T00:00:00Z"})).json()
        bad_cursor = await client.get("/api/v1/runs", params={"cursor": "not-a-cursor"})
        bad_limit = await client.get("/api/v1/runs", params={"limit": 0})
    ids = [r["run_id"] for r in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) >= 3
    assert first["next_cursor"]
    created = [r["created_at"] for r in first["items"] + second["items"]]
    assert created == sorted(created)
    assert [r["run_id"] for r in by_key["items"]] == ["manual/p2"]
    assert none["items"] == []
    assert_problem(bad_cursor, 400, "invalid-cursor")
    assert assert_problem(bad_limit, 422, "invalid-request")["errors"][0]["loc"] == [
        "query",
        "limit",
    ]


async def test_a_command_another_server_sent_is_answered_from_the_read_model(
    stack: Stack,
) -> None:
    request = RunRequested(
        id="from-elsewhere-1", source="streamcoord/cli", scprincipal="someone@host",
        data=RunRequestedData(pipeline="manual", run_key="elsewhere"),
    )  # fmt: skip
    await stack.harness.emit_event(request)
    async with stack.client("viewer") as client:
        command = await eventually(client, "/api/v1/commands/from-elsewhere-1",
                                   lambda c: c["state"] == "accepted" and c["runs"])  # fmt: skip
    assert command["principal"] == "someone@host"
    assert command["type"] == "streamcoord.run.requested"
    assert command["runs"] == ["manual/elsewhere"]
    assert command["partition"] is None


async def test_pipeline_stats_count_runs_by_status(stack: Stack) -> None:
    await request_run(stack, "manual", "st1")
    async with stack.client("viewer") as client:
        await eventually(client, run_path("manual/st1"), lambda r: r["status"] == "succeeded")
        stats = (
            await client.get("/api/v1/pipeline-stats", params={"since": "2000-01-01T00:00:00Z"})
        ).json()
        missing = await client.get("/api/v1/pipeline-stats")
    manual = next(s for s in stats if s["pipeline"] == "manual")
    assert manual["counts"]["succeeded"] >= 1
    assert any(r["run_id"] == "manual/st1" for r in manual["recent"])
    assert_problem(missing, 422, "invalid-request")


async def test_unknown_things_are_404_problems(stack: Stack) -> None:
    async with stack.client("viewer") as client:
        run = await client.get(run_path("manual/never"))
        audit = await client.get(run_path("manual/never") + "/audit")
        explain = await client.get(run_path("manual/never") + "/stages/first/explain")
        command = await client.get("/api/v1/commands/nope")
        path = await client.get("/api/v1/nothing-here")
        problem = await client.get("/api/v1/problems/unknown-run")
        no_problem = await client.get("/api/v1/problems/nope")
    for response in (run, audit, explain):
        assert_problem(response, 404, "unknown-run")
    assert_problem(command, 404, "unknown-command")
    assert_problem(path, 404, "not-found")
    assert problem.json()["status"] == 404
    assert_problem(no_problem, 404, "unknown-problem")


async def test_bodies_are_size_limited_and_validated(stack: Stack) -> None:
    async with stack.client("operator") as client:
        big = await client.post("/api/v1/pipelines/manual/runs",
                                json={"params": {"blob": "x" * 20_000}})  # fmt: skip

        async def chunks() -> Any:
            for _ in range(20):
                yield b"x" * 1000

        streamed = await client.post("/api/v1/pipelines/manual/runs", content=chunks(),
                                     headers={"content-type": "application/json"})  # fmt: skip
        wrong = await client.post("/api/v1/pipelines/manual/runs", json={"run_key": 3})
        extra = await client.post("/api/v1/pipelines/manual/runs", json={"nope": 1})
        not_json = await client.post("/api/v1/pipelines/manual/runs", content=b"{",
                                     headers={"content-type": "application/json"})  # fmt: skip
    assert_problem(big, 413, "payload-too-large")
    assert_problem(streamed, 413, "payload-too-large")
    assert_problem(wrong, 422, "invalid-request")
    assert_problem(extra, 422, "invalid-request")
    assert_problem(not_json, 422, "invalid-request")


async def test_the_stream_sends_run_and_stage_changes_of_one_pipeline(stack: Stack) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def listen() -> None:
        async with (
            stack.client("viewer") as client,
            client.stream("GET", "/api/v1/stream", params={"pipeline": "manual"}) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith(": listening"):
                    ready.set()
                elif line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = orjson.loads(line.removeprefix("data:").strip())
                    seen.append((kind, data))
                    if kind == "run" and data["status"] == "succeeded":
                        return

    ready = asyncio.Event()
    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 30)
    await request_run(stack, "flaky", "s-other")
    await request_run(stack, "manual", "s1")
    await asyncio.wait_for(listener, 60)
    assert {data["pipeline"] for _, data in seen} == {"manual"}
    assert ("run", "succeeded") in [(k, d["status"]) for k, d in seen]
    stages = [(d["stage"], d["status"]) for k, d in seen if k == "stage"]
    assert ("second", "succeeded") in stages
