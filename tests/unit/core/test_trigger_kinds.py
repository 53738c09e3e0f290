"""The trigger kinds as plug-ins: one registry, one validation path, the schedule's pure source.

What a kind finds wrong is what ``streamcoord validate`` reports (located) and what
``Catalog.build`` refuses (unlocated): the same findings, run once per trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streamcoord.core import Catalog
from streamcoord.errors import SpecError
from streamcoord.pipelines.models import Pipeline
from streamcoord.pipelines.triggers import KINDS, kind_of
from streamcoord.pipelines.triggers.kind import CompiledTrigger, TriggerContext
from streamcoord.pipelines.triggers.schedule import Schedule, latest_due, next_due, tick_event
from streamcoord.pipelines.validation import validate_texts

HOURLY = Schedule("ingest", "0 * * * *", "UTC")
BERLIN_2AM = Schedule("daily", "0 2 * * *", "Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _pipeline(triggers: list[dict[str, Any]], name: str = "p") -> Pipeline:
    return Pipeline.model_validate({"name": name, "triggers": triggers, "stages": [{"name": "a"}]})


def test_every_kind_is_registered_under_the_kind_its_model_declares() -> None:
    assert sorted(KINDS) == ["data", "event", "manual", "pipeline", "schedule"]
    for name, kind in KINDS.items():
        assert kind.model.model_fields["kind"].default == name


@pytest.mark.parametrize(
    ("trigger", "problem", "hint"),
    [
        (
            {"kind": "schedule", "cron": "61 * * * *"},
            "triggers[0].cron: invalid cron '61 * * * *'",
            "five fields",
        ),
        (
            {"kind": "schedule", "cron": "0 * * * *", "timezone": "Europe/Pari"},
            "triggers[0].timezone: unknown time zone 'Europe/Pari'",
            "did you mean 'Europe/Paris'?",
        ),
        (
            {"kind": "schedule", "cron": "0 * * * *", "timezone": "Nowhere/At-All-1234"},
            "triggers[0].timezone: unknown time zone 'Nowhere/At-All-1234'",
            "e.g. Europe/Paris",
        ),
        (
            {"kind": "pipeline", "pipeline": "upstreem"},
            "triggers[0].pipeline: unknown pipeline 'upstreem'",
            "did you mean 'upstream'?",
        ),
    ],
)
def test_validate_and_the_catalog_report_the_same_finding(
    trigger: dict[str, Any], problem: str, hint: str
) -> None:
    upstream = _pipeline([{"kind": "manual"}], name="upstream")
    with pytest.raises(SpecError) as raised:
        Catalog.build([upstream, _pipeline([trigger])])
    assert f"pipeline 'p' {problem}" in raised.value.message
    text = (
        "pipelines:\n  - name: upstream\n    stages: [{name: a}]\n"
        "  - name: p\n    triggers:\n      - " + _flow(trigger) + "\n    stages: [{name: a}]\n"
    )
    report = validate_texts({"specs.yaml": text})
    [located] = report.problems
    assert f"{located.path}: {located.message}".startswith(f"pipelines[1].{problem}")
    assert hint in located.hint
    assert located.line == 6  # the trigger's line


def _flow(mapping: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in mapping.items()) + "}"


def test_the_catalog_indexes_each_trigger_under_its_kinds_key() -> None:
    catalog = Catalog.build(
        [
            _pipeline([{"kind": "manual"}], name="upstream"),
            _pipeline(
                [
                    {"kind": "event", "type": "go"},
                    {"kind": "pipeline", "pipeline": "upstream"},
                    {"kind": "schedule", "cron": "0 * * * *"},
                ]
            ),
        ]
    )
    assert [t.index for t in catalog.by_type["go"]] == [0]
    assert [t.pipeline for t in catalog.triggers("pipeline", "upstream")] == ["p"]
    assert [t.pipeline for t in catalog.triggers("schedule", "p")] == ["p"]
    assert catalog.triggers("manual", "p") == ()
    assert catalog.triggers("no-such-kind", "p") == ()


def test_a_kind_keyed_by_its_own_events_is_never_offered_external_ones() -> None:
    trigger = _pipeline([{"kind": "manual"}]).triggers[0]
    compiled = CompiledTrigger("p", 0, trigger, "p", {})
    context: TriggerContext = object()  # type: ignore[assignment]  # never touched
    with pytest.raises(NotImplementedError, match="'manual' does not match external events"):
        kind_of(trigger).match(context, compiled)


# ---- the schedule kind's source of ticks: the clock is an argument ---------------------------


@pytest.mark.parametrize(
    ("schedule", "now", "expected_next", "expected_latest"),
    [
        (HOURLY, utc(2026, 11, 28, 16, 30), utc(2026, 11, 28, 17), utc(2026, 11, 28, 16)),
        (HOURLY, utc(2026, 11, 28, 16), utc(2026, 11, 28, 17), utc(2026, 11, 28, 16)),
        # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer
        (BERLIN_2AM, utc(2026, 11, 28, 16), utc(2026, 11, 29, 1), utc(2026, 11, 28, 1)),
        (BERLIN_2AM, utc(2026, 7, 1, 12), utc(2026, 7, 2, 0), utc(2026, 7, 1, 0)),
    ],
)
def test_next_and_latest_occurrence(
    schedule: Schedule, now: datetime, expected_next: datetime, expected_latest: datetime
) -> None:
    assert next_due(schedule, now) == expected_next
    assert latest_due(schedule, now) == expected_latest


def test_tick_ids_are_deterministic_so_a_refired_tick_is_one_event() -> None:
    first = tick_event(HOURLY, utc(2026, 11, 28, 16))
    again = tick_event(HOURLY, utc(2026, 11, 28, 16))
    assert first.id == again.id == "schedule/ingest/2026-11-28T16:00:00+00:00"
    assert first.data.pipeline == "ingest"
