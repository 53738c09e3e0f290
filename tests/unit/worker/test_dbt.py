"""The dbt executor's command line and reports, without dbt (dbt itself runs in
tests/integration/test_dbt_worker.py and test_dbt_process.py)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from streamcoord.events.models import StageFailed
from streamcoord.pipelines.executors import DbtExecutorConfig
from streamcoord.worker._attempt import AttemptRunner
from streamcoord.worker.dbt import DbtExecutor, dbt_args
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger


def test_the_command_line_carries_the_selection_and_the_params_as_vars() -> None:
    config = DbtExecutorConfig(
        project_dir="/srv/shop", profiles_dir="/srv/profiles", target="prod",
        select=["fqn:shop.orders", "tag:daily"], exclude=["tag:slow"], vars={"env": "prod"},
        full_refresh=True, threads=4,
    )  # fmt: skip
    assert dbt_args(config, {"day": "2024-01-01"}, "/work/target-1") == [
        "build", "--project-dir", "/srv/shop", "--profiles-dir", "/srv/profiles",
        "--target", "prod", "--target-path", "/work/target-1",
        "--select", "fqn:shop.orders", "tag:daily", "--exclude", "tag:slow",
        "--vars", '{"env":"prod","day":"2024-01-01"}', "--full-refresh", "--threads", "4",
    ]  # fmt: skip


def test_params_stay_out_of_vars_when_the_config_says_so() -> None:
    config = DbtExecutorConfig(project_dir="p", command="test", selector="nightly",
                               params_as_vars=False)  # fmt: skip
    assert dbt_args(config, {"day": "x"}) == [
        "test", "--project-dir", "p", "--selector", "nightly",
    ]  # fmt: skip


async def run(**config: object) -> StageFailed:
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger("build", **config)
        await runner.run(context(trigger, runner), DbtExecutor(python=sys.executable))
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    return outcome


async def test_an_invalid_config_fails_for_good_naming_the_field() -> None:
    outcome = await run(project_dir="/srv/shop", selcet=["orders"])
    assert "selcet: Extra inputs are not permitted" in outcome.data.error
    assert not outcome.data.retryable


async def test_a_worker_python_without_dbt_fails_for_good_saying_so() -> None:
    outcome = await run(project_dir="/srv/shop")
    assert outcome.data.error.startswith(
        f"dbt build could not run: dbt-core is not installed for {sys.executable}"
    )
    assert not outcome.data.retryable
