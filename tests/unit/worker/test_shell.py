"""The shell executor: template rendering, and outcomes of real processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from streamcoord.events.models import StageFailed, StageStarted, StageSucceeded
from streamcoord.worker import NonRetryableError, StageError
from streamcoord.worker._attempt import AttemptRunner
from streamcoord.worker.shell import ShellExecutor, group_running, render_command
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger

VALUES = {"day": "2024-01-01", "path": "/data/my file.csv", "n": 3, "run_id": "orders/1"}


@pytest.mark.parametrize(
    ("config", "argv"),
    [
        ({"command": "load --day {day} --n {n}"}, ["load", "--day", "2024-01-01", "--n", "3"]),
        ({"command": "cat {path}"}, ["cat", "/data/my file.csv"]),  # one argument, no split
        ({"command": "echo '{{literal}}' {run_id}"}, ["echo", "{literal}", "orders/1"]),
        ({"command": ["tool", "--at={day}"]}, ["tool", "--at=2024-01-01"]),
        (
            {"command": "cat {path} | wc -l", "shell": True},
            ["/bin/sh", "-c", "cat '/data/my file.csv' | wc -l"],
        ),
    ],
)
def test_templates_fill_each_argument_without_splitting_values(
    config: dict[str, object], argv: list[str]
) -> None:
    assert render_command(config, VALUES) == argv  # type: ignore[arg-type]


def test_a_value_cannot_inject_arguments_or_shell_syntax() -> None:
    hostile = {"x": "a; rm -rf / $(id)"}
    assert render_command({"command": "echo {x}"}, hostile) == ["echo", "a; rm -rf / $(id)"]
    assert render_command({"command": "echo {x}", "shell": True}, hostile) == [
        "/bin/sh", "-c", "echo 'a; rm -rf / $(id)'",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no executor.config.command"),
        ({"command": "load {missing}"}, r"names \{missing\}, which is not a param"),
        ({"command": "load {day"}, "unmatched"),
        ({"command": "load 'unclosed"}, "No closing quotation"),
    ],
)
def test_bad_templates_fail_for_good_with_the_reason(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(NonRetryableError, match=message):
        render_command(config, VALUES)  # type: ignore[arg-type]


async def run_shell(**config: object) -> ListSink:
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(params={"day": "2024-01-01"}, **config)
        await runner.run(context(trigger, runner), ShellExecutor(tail_bytes=64))
    return sink


PY = sys.executable


async def test_exit_zero_succeeds_and_a_json_last_line_becomes_outputs() -> None:
    script = "import json; print('working'); print(json.dumps(dict(rows=7)))"
    sink = await run_shell(command=f'{PY} -c "{script}"')
    outcome = sink.events[-1]
    assert isinstance(outcome, StageSucceeded)
    assert outcome.data.outputs == {"exit_code": 0, "rows": 7}


async def test_params_and_run_fields_reach_the_process() -> None:
    script = "import os, sys; print(sys.argv[1], os.environ['STREAMCOORD_STAGE'])"
    sink = await run_shell(command=f'{PY} -c "{script}" {{day}}', env={"EXTRA": "1"})
    assert isinstance(sink.events[-1], StageSucceeded)


async def test_a_non_zero_exit_fails_with_the_tail_of_stderr_and_stdout() -> None:
    script = (
        "import sys; print('x' * 500 + 'END-OUT'); sys.stderr.write('boom: no input'); sys.exit(3)"
    )
    sink = await run_shell(command=f'{PY} -c "{script}"')
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is True
    error = outcome.data.error
    assert "exited with code 3" in error
    assert "boom: no input" in error
    assert "END-OUT" in error
    assert "x" * 100 not in error  # only the last 64 bytes of stdout were kept


async def test_a_timeout_kills_the_process_and_fails_retryably() -> None:
    sink = await run_shell(command=f'{PY} -c "import time; time.sleep(30)"', timeout_seconds=0.3)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is True
    assert "timed out after 0.3s" in outcome.data.error


async def test_a_missing_program_fails_for_good() -> None:
    sink = await run_shell(command="/nonexistent/program --flag")
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is False
    assert "cannot start '/nonexistent/program'" in outcome.data.error


async def test_cancellation_stops_the_process() -> None:
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(command=f'{PY} -c "import time; time.sleep(30)"')
        ctx = context(trigger, runner)
        task = asyncio.create_task(runner.run(ctx, ShellExecutor()))
        await sink.wait_for(StageStarted, 1)
        ctx.cancel("run cancelled")
        async with asyncio.timeout(10):
            await task
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is False
    assert outcome.data.error.startswith("cancelled (run cancelled)")
    assert StageError.retryable is True


async def _pid_in(path: Path) -> int:
    """The pid the command wrote to ``path`` (an outside process: nothing to await but it)."""
    async with asyncio.timeout(10):
        while not (text := await asyncio.to_thread(_read, path)):  # noqa: ASYNC110  # a file
            await asyncio.sleep(0.01)
    return int(text)


def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def _cancel_a_group(tmp_path: Path, script: str, **config: object) -> tuple[int, float]:
    """Run ``script`` (it writes its background child's pid to {pidfile}), cancel it once the
    child runs; return the group id and how long the cancellation took."""
    sink = ListSink()
    pidfile = tmp_path / "child.pid"
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        config.update({"command": script, "shell": True})
        trigger = make_trigger(params={"pidfile": str(pidfile)}, **config)
        ctx = context(trigger, runner)
        task = asyncio.create_task(runner.run(ctx, ShellExecutor(kill_grace_s=5)))
        child = await _pid_in(pidfile)
        group = os.getpgid(child)
        assert group != os.getpgid(0)  # its own group, not the worker's
        began = time.monotonic()
        ctx.cancel("stage_cancel: run cancelled")
        async with asyncio.timeout(20):
            await task
        took = time.monotonic() - began
    assert not group_running(group)
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is False
    return group, took


async def test_cancelling_stops_the_whole_process_group_with_sigterm(tmp_path: Path) -> None:
    _, took = await _cancel_a_group(tmp_path, "sleep 300 & echo $! > {pidfile}; wait")
    assert took < 5  # SIGTERM sufficed: no wait for the grace period


async def test_a_group_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    _, took = await _cancel_a_group(
        tmp_path, "trap '' TERM; sleep 300 & echo $! > {pidfile}; wait", kill_grace_seconds=0.3
    )
    assert took >= 0.3


async def test_the_triggers_deadline_stops_the_command_retryably() -> None:
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        base = make_trigger(command="sleep 300")
        data = base.data.model_copy(
            update={"timeout_seconds": 0.2, "deadline": NOW + timedelta(seconds=0.2)}
        )
        trigger = base.model_copy(update={"data": data})
        async with asyncio.timeout(20):
            await runner.run(context(trigger, runner), ShellExecutor())
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is True
    assert outcome.data.error.startswith("cancelled (execution timeout (0.2s))")
