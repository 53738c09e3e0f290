"""The pure side of the operator commands: ``--param`` parsing and how outcomes are judged."""

from __future__ import annotations

import pytest

from streamcoord.cli._outcome import (
    EXIT_NOT_SUCCEEDED,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    CancelWatch,
    ControlWatch,
    Outcome,
    RequestWatch,
    RetryWatch,
)
from streamcoord.cli.operate import parse_params
from streamcoord.errors import ConfigError
from streamcoord.events.models import RunRecordData


def record(run_id: str, status: str, **fields: object) -> RunRecordData:
    pipeline, _, key = run_id.partition("/")
    return RunRecordData.model_validate(
        {"run_id": run_id, "pipeline": pipeline, "run_key": key.split("#")[0], "status": status,
         **fields}
    )  # fmt: skip


def test_params_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_params(["n=3", "on=true", "day=2026-11-28", "tags=[1]", "empty="]) == {
        "n": 3, "on": True, "day": "2026-11-28", "tags": [1], "empty": "",
    }  # fmt: skip


def test_a_param_without_equals_sign_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError, match="not name=value") as info:
        parse_params(["epochs"])
    assert info.value.hint == "e.g. --param epochs=3"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome("succeeded", ok=True), 0),
        (Outcome("failed", ok=False), EXIT_NOT_SUCCEEDED),
        (Outcome("cancelled", ok=False), EXIT_NOT_SUCCEEDED),
        (Outcome("rejected", ok=False), EXIT_REJECTED),
        (Outcome("timeout", ok=False), EXIT_TIMEOUT),
    ],
)
def test_exit_codes(outcome: Outcome, code: int) -> None:
    assert outcome.exit_code == code


def test_a_request_is_settled_by_the_end_of_the_run_it_caused_any_generation() -> None:
    watch = RequestWatch("daily/d", "ev-1")
    assert watch.on_decided() is None
    assert watch.on_run(record("daily/d#2", "succeeded", caused_by=["other"])) is None
    assert watch.on_run(record("daily/e", "succeeded", caused_by=["ev-1"])) is None
    assert watch.on_run(record("daily/d#2", "active", caused_by=["ev-1"])) is None
    assert watch.run_id == "daily/d#2"
    assert watch.on_run(record("daily/d#2", "failed", caused_by=["ev-1"])) == Outcome(
        "failed", ok=False, run_id="daily/d#2"
    )


def test_a_cancel_succeeds_when_the_run_ends_cancelled_and_not_otherwise() -> None:
    watch = CancelWatch("daily/d", record("daily/d", "active"))
    assert watch.on_decided() is None
    assert watch.on_run(record("daily/d", "active")) is None
    assert watch.on_run(record("daily/d", "cancelled")) == Outcome(
        "cancelled", ok=True, run_id="daily/d"
    )
    assert watch.on_run(record("daily/d", "succeeded")) == Outcome(
        "succeeded", ok=False, run_id="daily/d"
    )


def test_cancelling_a_finished_run_reports_how_it_had_ended_once_decided() -> None:
    watch = CancelWatch("daily/d", record("daily/d", "succeeded"))
    assert watch.on_decided() == Outcome(
        "succeeded", ok=False, run_id="daily/d", message="the run had already succeeded"
    )


def test_a_retry_is_settled_only_by_a_record_from_after_its_new_attempt() -> None:
    watch = RetryWatch("daily/d", "load", attempts_before=1)
    assert watch.on_decided() is None
    assert watch.on_run(record("daily/d", "failed", attempts={"load": 1})) is None
    assert watch.on_run(record("daily/d", "active", attempts={"load": 2})) is None
    assert watch.on_run(record("daily/d", "succeeded", attempts={"load": 2})) == Outcome(
        "succeeded", ok=True, run_id="daily/d"
    )


def test_a_pipeline_control_is_done_once_decided() -> None:
    assert ControlWatch("paused").on_decided() == Outcome("paused", ok=True)
    assert ControlWatch("paused").on_run(record("daily/d", "succeeded")) is None
