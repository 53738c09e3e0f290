"""Where `streamcoord worker KIND` takes each setting from: the option when given, else the
environment (as docs/configuration.md lists it), else the kind's own default."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streamcoord.cli import worker as worker_cli
from streamcoord.cli.main import app
from streamcoord.worker import Handler, Worker


def _settings(monkeypatch: pytest.MonkeyPatch, *args: str) -> Worker:
    started: list[Worker] = []

    def serve(worker: Worker, handler: Handler) -> None:
        started.append(worker)

    monkeypatch.setattr(worker_cli, "serve", serve)
    result = CliRunner().invoke(app, ["worker", "webhook", "-b", "127.0.0.1:1", *args])
    assert result.exit_code == 0, result.output
    return started[0]


def test_the_kind_s_defaults_apply_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _settings(monkeypatch)
    assert (worker.settings.concurrency, worker.settings.group_id) == (
        16,
        "streamcoord-worker-webhook",
    )


def test_the_environment_beats_the_kind_s_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCOORD_WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("STREAMCOORD_WORKER_GROUP_ID", "hooks")
    worker = _settings(monkeypatch)
    assert (worker.settings.concurrency, worker.settings.group_id) == (3, "hooks")


def test_an_option_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCOORD_WORKER_CONCURRENCY", "3")
    worker = _settings(monkeypatch, "--concurrency", "5", "--group-id", "mine")
    assert (worker.settings.concurrency, worker.settings.group_id) == (5, "mine")
