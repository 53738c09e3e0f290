"""The Airflow executor against a small fake of Airflow's REST API (httpx's MockTransport):
what it asks Airflow, and which answers fail an attempt for good. The real Airflow 3 runs in
tests/integration/test_airflow.py (opt-in)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from streamcoord.events.models import StageFailed, StageSucceeded
from streamcoord.worker._attempt import AttemptRunner
from streamcoord.worker.airflow import AirflowExecutor, dag_run_id
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger

BASE = "http://airflow.test:8080"


class FakeAirflow:
    """Airflow's answers, scripted: DAG runs go through ``states`` one poll at a time."""

    def __init__(self, *, paused: bool = False, states: tuple[str, ...] = ("queued", "success"),
                 existing: bool = False, flaky_polls: int = 0) -> None:  # fmt: skip
        self.paused = paused
        self.states = list(states)
        self.existing = existing
        self.flaky_polls = flaky_polls
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911  # a route table
        body = orjson.loads(request.content) if request.content else {}
        self.requests.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/auth/token":
            ok = body == {"username": "sc", "password": "s3cret-pw"}
            return httpx.Response(201 if ok else 401, json={"access_token": "tok"} if ok else {})
        if request.headers.get("authorization") != "Bearer tok":
            return httpx.Response(401, json={"detail": "Not authenticated"})
        if path == "/api/v2/dags/demo" and request.method == "GET":
            return httpx.Response(200, json={"dag_id": "demo", "is_paused": self.paused})
        if path == "/api/v2/dags/demo" and request.method == "PATCH":
            self.paused = False
            return httpx.Response(200, json={"dag_id": "demo", "is_paused": False})
        if path == "/api/v2/dags/demo/dagRuns" and request.method == "POST":
            if self.existing:
                return httpx.Response(409, json={"detail": "exists"})
            return httpx.Response(200, json={"dag_run_id": body["dag_run_id"], "state": "queued"})
        if path.endswith("/taskInstances"):
            return httpx.Response(200, json={"task_instances": [
                {"task_id": "extract", "state": "success"}, {"task_id": "load", "state": "failed"},
            ]})  # fmt: skip
        if path.startswith("/api/v2/dags/demo/dagRuns/"):
            if request.method == "PATCH":
                return httpx.Response(200, json={"state": body["state"]})
            if self.flaky_polls:
                self.flaky_polls -= 1
                return httpx.Response(503, json={"detail": "busy"})
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return httpx.Response(200, json={"state": state, "start_date": "2024-01-01T00:00:00Z"})
        return httpx.Response(404, json={"detail": f"no route {path}"})


CONFIG: dict[str, Any] = {
    "base_url": BASE, "dag_id": "demo", "conf": {"source": "streamcoord"},
    "username": "sc", "password": {"secret": {"env": "SC_AIRFLOW_PW"}},
    "poll_interval_seconds": 0.001,
}  # fmt: skip


async def attempt(airflow: FakeAirflow, **config: Any) -> ListSink:
    sink = ListSink()
    executor = AirflowExecutor(transport=httpx.MockTransport(airflow.handle))
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger("load", params={"day": "2024-01-01"}, **{**CONFIG, **config})
        await runner.run(context(trigger, runner), executor)
    return sink


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_AIRFLOW_PW", "s3cret-pw")


def calls(airflow: FakeAirflow, method: str, ending: str) -> list[dict[str, Any]]:
    return [body for m, path, body in airflow.requests if m == method and path.endswith(ending)]


async def test_a_successful_dag_run_succeeds_with_its_url() -> None:
    airflow = FakeAirflow(states=("queued", "running", "success"))
    sink = await attempt(airflow)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageSucceeded)
    run_id = dag_run_id("orders/2024-01-01/load/1")
    assert outcome.data.outputs["url"] == f"{BASE}/dags/demo/runs/{run_id}"
    assert outcome.data.outputs["state"] == "success"
    (posted,) = calls(airflow, "POST", "/dagRuns")
    assert posted == {"dag_run_id": run_id, "logical_date": None,
                      "conf": {"source": "streamcoord", "day": "2024-01-01"}}  # fmt: skip


def test_dag_run_ids_are_what_airflow_accepts_and_stable_per_trigger() -> None:
    run_id = dag_run_id("orders/2024 01 01/load/1")
    assert run_id == dag_run_id("orders/2024 01 01/load/1")
    assert run_id != dag_run_id("orders/2024_01_01/load/1")  # sanitized alike, hashed apart
    assert run_id.startswith("streamcoord__orders_2024_01_01_load_1__")


async def test_a_redelivered_trigger_follows_the_run_it_started() -> None:
    airflow = FakeAirflow(existing=True)
    sink = await attempt(airflow)
    assert isinstance(sink.events[-1], StageSucceeded)
    assert calls(airflow, "GET", dag_run_id("orders/2024-01-01/load/1"))


async def test_a_failed_dag_run_names_its_failed_tasks_and_may_be_retried() -> None:
    sink = await attempt(FakeAirflow(states=("running", "failed")))
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert "ended failed (failed tasks: load); see http://airflow.test:8080/dags/demo/runs/" in (
        outcome.data.error
    )
    assert outcome.data.retryable


async def test_a_passing_api_error_while_following_is_tried_again() -> None:
    sink = await attempt(FakeAirflow(flaky_polls=2))
    assert isinstance(sink.events[-1], StageSucceeded)


@pytest.mark.parametrize(
    ("airflow", "config", "message"),
    [
        (FakeAirflow(paused=True), {}, "DAG demo is paused in Airflow"),
        (FakeAirflow(), {"dag_id": "nope"}, "HTTP 404"),
        (FakeAirflow(), {"password": {"secret": {"env": "SC_UNSET"}}}, "SC_UNSET"),
        (FakeAirflow(), {"dagid": "demo"}, "dagid: Extra inputs are not permitted"),
    ],
)
async def test_what_a_retry_cannot_fix_fails_for_good(
    airflow: FakeAirflow, config: dict[str, Any], message: str
) -> None:
    sink = await attempt(airflow, **config)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert message in outcome.data.error
    assert not outcome.data.retryable


async def test_a_paused_dag_is_unpaused_when_the_config_says_so() -> None:
    airflow = FakeAirflow(paused=True)
    sink = await attempt(airflow, unpause=True)
    assert isinstance(sink.events[-1], StageSucceeded)
    assert calls(airflow, "PATCH", "/dags/demo") == [{"is_paused": False}]


async def test_the_password_never_shows_in_what_the_worker_reports() -> None:
    def echo_password(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"detail": "login s3cret-pw failed"})

    sink = ListSink()
    executor = AirflowExecutor(transport=httpx.MockTransport(echo_password))
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        await runner.run(context(make_trigger("load", **CONFIG), runner), executor)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert "s3cret-pw" not in outcome.data.error
    assert "[REDACTED]" in outcome.data.error


async def test_a_dag_run_over_its_timeout_is_marked_failed_and_may_be_retried() -> None:
    airflow = FakeAirflow(states=("running",))
    sink = await attempt(airflow, timeout_seconds=0.05)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert "did not end within 0.05s; it was marked failed" in outcome.data.error
    assert outcome.data.retryable
    assert calls(airflow, "PATCH", dag_run_id("orders/2024-01-01/load/1")) == [{"state": "failed"}]
