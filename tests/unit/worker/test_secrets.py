"""Secrets by reference on the worker: resolution, redaction, and what reaches Kafka."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamcoord.core import Catalog, Publish
from streamcoord.core.replay import replay
from streamcoord.events.codec import encode
from streamcoord.events.models import ExternalEvent, StageFailed, StageSucceeded, StageTrigger
from streamcoord.pipelines.models import Pipeline
from streamcoord.worker import NonRetryableError, StageError
from streamcoord.worker._attempt import AttemptRunner
from streamcoord.worker.secrets import REDACTED, SecretNotFoundError, Secrets
from streamcoord.worker.shell import ShellExecutor
from streamcoord.worker.webhook import WebhookExecutor
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger
from tests.unit.worker.test_webhook import REPLIES, Server, server  # noqa: F401  # the fixture

TOKEN = "s3cr3t-T0KEN-value-42"
PY = sys.executable


# ---- resolution -------------------------------------------------------------------------------


def test_an_env_reference_reads_the_workers_environment() -> None:
    secrets = Secrets({"API_TOKEN": TOKEN})
    config = {"A": {"secret": {"env": "API_TOKEN"}}, "B": "plain", "N": 3}
    assert secrets.resolve(config, "executor.config.env") == {"A": TOKEN, "B": "plain", "N": 3}


def test_a_file_reference_reads_the_file_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    secrets = Secrets({})
    ref = {"secret": {"file": str(tmp_path / "token")}}
    assert secrets.resolve([ref], "executor.config.headers") == [TOKEN]


def test_a_missing_variable_fails_for_good_naming_the_reference() -> None:
    with pytest.raises(SecretNotFoundError) as caught:
        Secrets({}).resolve({"T": {"secret": {"env": "API_TOKEN"}}}, "executor.config.env")
    assert caught.value.retryable is False
    assert "secret {secret: {env: API_TOKEN}} for executor.config.env.T is not set" in str(
        caught.value
    )


def test_a_missing_file_fails_for_good_naming_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(SecretNotFoundError, match=f"secret {{secret: {{file: {path}}}}}"):
        Secrets({}).resolve({"secret": {"file": str(path)}}, "executor.config.env.T")


def test_a_malformed_reference_fails_for_good() -> None:
    with pytest.raises(NonRetryableError, match="exactly one of 'env' and 'file'"):
        Secrets({}).resolve({"secret": {"env": "A", "file": "/b"}}, "executor.config.env.T")


# ---- redaction --------------------------------------------------------------------------------


def _resolved(*values: str) -> Secrets:
    secrets = Secrets({f"V{i}": value for i, value in enumerate(values)})
    for i in range(len(values)):
        secrets.resolve({"secret": {"env": f"V{i}"}}, "x")
    return secrets


def test_redaction_replaces_every_value_longest_first() -> None:
    secrets = _resolved("abc", "abcdef")
    assert secrets.redact("x abcdef y abc") == f"x {REDACTED} y {REDACTED}"
    assert secrets.redact_outputs({"k": ["abc"], "abcdef": 1}) == {"k": [REDACTED], REDACTED: 1}


def test_a_value_cut_at_the_start_of_a_tail_is_dropped_too() -> None:
    secrets = _resolved(TOKEN)
    tail = TOKEN[5:].encode() + b" then " + TOKEN.encode()  # the start of the first was cut off
    text = secrets.redact_tail(tail, truncated=True)
    assert TOKEN[5:] not in text
    assert text.endswith(f"n {REDACTED}")  # the first len(TOKEN) - 1 bytes are dropped


def test_a_redacted_error_keeps_its_class_and_retry_decision() -> None:
    secrets = _resolved(TOKEN)
    error = secrets.redacted(NonRetryableError(f"denied for {TOKEN}", hint=TOKEN))
    assert type(error) is NonRetryableError
    assert TOKEN not in str(error)


# ---- the shell executor ---------------------------------------------------------------------


async def run_shell(monkeypatch: pytest.MonkeyPatch, **config: object) -> ListSink:
    monkeypatch.setenv("SC_TEST_TOKEN", TOKEN)
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(env={"TOKEN": {"secret": {"env": "SC_TEST_TOKEN"}}}, **config)
        await runner.run(context(trigger, runner), ShellExecutor(tail_bytes=64))
    return sink


async def test_the_command_sees_the_value_and_outputs_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = "import json, os; t = os.environ['TOKEN']; print(json.dumps(dict(n=len(t), t=t)))"
    sink = await run_shell(monkeypatch, command=f'{PY} -c "{script}"')
    outcome = sink.events[-1]
    assert isinstance(outcome, StageSucceeded)
    assert outcome.data.outputs == {"exit_code": 0, "n": len(TOKEN), "t": REDACTED}


async def test_a_failing_command_echoing_the_secret_reports_it_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100 bytes of noise after the token's tail on stdout: the 64-byte tail cuts into it.
    script = (
        "import os, sys; t = os.environ['TOKEN']; print('a' * 50 + t + 'b' * 20);"
        " sys.stderr.write(t + ' was rejected'); sys.exit(2)"
    )
    sink = await run_shell(monkeypatch, command=f'{PY} -c "{script}"')
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert "exited with code 2" in outcome.data.error
    assert f"{REDACTED} was rejected" in outcome.data.error
    assert not any(TOKEN[i : i + 6] in outcome.data.error for i in range(len(TOKEN) - 5))


async def test_a_missing_secret_fails_the_attempt_for_good_before_running(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(
            command=f"touch {marker}", env={"T": {"secret": {"env": "SC_TEST_UNSET_SECRET"}}}
        )
        await runner.run(context(trigger, runner), ShellExecutor())
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is False
    assert "{secret: {env: SC_TEST_UNSET_SECRET}}" in outcome.data.error
    assert not marker.exists()


def test_errors_raised_by_executors_are_stage_errors() -> None:
    assert issubclass(SecretNotFoundError, StageError)


# ---- what travels on Kafka ------------------------------------------------------------------


def test_the_trigger_on_kafka_carries_the_reference_and_never_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The coordinator's process has the variable too: still, nothing resolves it there.
    monkeypatch.setenv("SC_TEST_TOKEN", TOKEN)
    ref = {"secret": {"env": "SC_TEST_TOKEN"}}
    pipeline = Pipeline.model_validate({
        "name": "p", "run_key": "event.data.key", "triggers": [{"kind": "event", "type": "go"}],
        "stages": [{"name": "a", "executor": {"config": {
            "command": "deploy", "env": {"TOKEN": ref}, "headers": {"Authorization": ref},
        }}}],
    })  # fmt: skip
    event = ExternalEvent(id="go-k", source="app", type="go", data={"key": "k"})
    log = [(datetime(2026, 1, 1, tzinfo=UTC), event)]
    result = replay(Catalog.build([pipeline], []), log, fire_timers=False)
    triggers = [
        c.event for r in result.records for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]  # fmt: skip
    assert len(triggers) == 1
    for mode in ("structured", "binary"):
        value, headers = encode(triggers[0], mode)
        record = value + b"".join(v for _, v in headers)
        assert TOKEN.encode() not in record
        assert b'"TOKEN":{"secret":{"env":"SC_TEST_TOKEN"}}' in record


# ---- the webhook executor -------------------------------------------------------------------


async def test_a_header_reference_is_sent_and_an_echo_of_it_is_redacted(
    server: Server,  # noqa: F811  # the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SC_TEST_TOKEN", TOKEN)
    monkeypatch.setitem(REPLIES, "/echo", (403, f"bad token {TOKEN}".encode()))
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(
            url=f"http://127.0.0.1:{server.port}/echo",
            headers={"Authorization": {"secret": {"env": "SC_TEST_TOKEN"}}},
        )
        await runner.run(context(trigger, runner), WebhookExecutor())
    assert server.received[0][1]["authorization"] == TOKEN
    outcome = sink.events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.error == f"webhook answered HTTP 403: bad token {REDACTED}"
