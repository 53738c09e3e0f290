"""Fold a recorded event log into state and commands: for debugging a real log and for tests.

A log is JSON lines ``{"timestamp": "<RFC3339>", "event": {<CloudEvent JSON>}}``. Events the core
routes back onto the events topic (``Publish(topic=None)``) are fed back right after the event
that produced them, and timers fire (in due order) before the first record at or after their due
time, so a log of only external inputs replays a whole coordination. Routed events and fired
timers that also appear in the log are harmless: their ids are deterministic and deduplicated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from streamcoord.core._catalog import Catalog
from streamcoord.core._decide import decide
from streamcoord.core._records import publish_run_records
from streamcoord.core._state import CoordinatorState
from streamcoord.core._step import CancelTimer, Command, Publish, SetTimer, Step
from streamcoord.core._tracing import SpanRecord
from streamcoord.core._versions import CatalogSet
from streamcoord.errors import EventError
from streamcoord.events.codec import validate_event
from streamcoord.events.models import CloudEvent
from streamcoord.events.partitioning import partition_for, partition_key_for

__all__ = ["Record", "ReplayResult", "command_json", "parse_log", "replay", "step_json"]


@dataclass(frozen=True, slots=True)
class Record:
    """One decided event: when, what, and the step it produced."""

    timestamp: datetime
    event: CloudEvent
    step: Step
    fed_back: bool


@dataclass
class ReplayResult:
    """The final state of every partition and every step in order."""

    states: list[CoordinatorState]
    records: list[Record] = field(default_factory=list)


def parse_log(lines: Iterable[str]) -> Iterator[tuple[datetime, CloudEvent]]:
    """Parse log lines; blank lines are skipped, a bad line is an :class:`EventError`."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
            yield datetime.fromisoformat(raw["timestamp"]), validate_event(raw["event"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, EventError) as exc:
            raise EventError(
                f"log line {number} is not a recorded event: {exc}",
                hint='each line must be {"timestamp": "<RFC3339>", "event": {...}}',
            ) from exc


def replay(
    catalog: Catalog | CatalogSet,
    log: Iterable[tuple[datetime, CloudEvent]],
    *,
    partitions: int = 1,
    fire_timers: bool = True,
    max_timer_firings: int = 100_000,
) -> ReplayResult:
    """Decide every event of ``log`` (and what it routes back) across ``partitions`` states.

    ``catalog`` is one spec version, or every version the log's ``streamcoord.specs.activate``
    commands may name (see :func:`~streamcoord.core.decide`).

    With ``fire_timers``, timers fire in due order between records and after the last one, at
    most ``max_timer_firings`` times in all (an :class:`EventError` beyond: timers that keep
    re-arming themselves would otherwise never let the replay end).
    """
    result = ReplayResult([CoordinatorState.empty(p, partitions) for p in range(partitions)])
    timers: dict[str, SetTimer] = {}
    budget = [max_timer_firings] if fire_timers else None
    for timestamp, event in log:
        _fire_due(catalog, result, timers, timestamp, budget)
        _decide_chain(catalog, result, timers, timestamp, event, fed_back=False)
    _fire_due(catalog, result, timers, None, budget)
    return result


def _fire_due(
    catalog: Catalog | CatalogSet,
    result: ReplayResult,
    timers: dict[str, SetTimer],
    until: datetime | None,
    budget: list[int] | None,
) -> None:
    """Fire the timers due by ``until`` (all of them when None), earliest first."""
    if budget is None:
        return
    while timers:
        timer = min(timers.values(), key=lambda t: (t.due, t.timer_id))
        if until is not None and timer.due > until:
            return
        if budget[0] == 0:
            raise EventError(
                "timers kept firing past the replay's limit",
                hint="raise max_timer_firings, or look for a timer that re-arms itself",
            )
        budget[0] -= 1
        del timers[timer.timer_id]
        _decide_chain(catalog, result, timers, timer.due, timer.event, fed_back=True)


def _decide_chain(
    catalog: Catalog | CatalogSet,
    result: ReplayResult,
    timers: dict[str, SetTimer],
    timestamp: datetime,
    event: CloudEvent,
    *,
    fed_back: bool,
) -> None:
    queue: deque[tuple[CloudEvent, bool]] = deque([(event, fed_back)])
    while queue:
        current, back = queue.popleft()
        partitions = len(result.states)
        state = result.states[partition_for(partition_key_for(current), partitions)]
        step = publish_run_records(decide(catalog, state, current, timestamp))  # batches of one
        result.records.append(Record(timestamp, current, step, back))
        for command in step.commands:
            if isinstance(command, Publish) and command.topic is None:
                queue.append((command.event, True))
            elif isinstance(command, SetTimer):
                timers[command.timer_id] = command
            elif isinstance(command, CancelTimer):
                timers.pop(command.timer_id, None)


def command_json(command: Command) -> dict[str, Any]:
    """A JSON-ready form of a command, stable across runs."""
    if isinstance(command, Publish):
        return {
            "publish": command.topic,
            "key": command.key,
            "event": command.event.model_dump(mode="json", exclude_none=True),
        }
    if isinstance(command, SetTimer):
        return {"set_timer": command.timer_id, "due": command.due.isoformat()}
    return {"cancel_timer": command.timer_id}


def step_json(record: Record) -> bytes:
    """One line of replay output for ``record``."""
    step = record.step
    body = {
        "at": record.timestamp.isoformat(),
        "event": {"type": record.event.type, "source": record.event.source, "id": record.event.id},
        "fed_back": record.fed_back,
        "rejection": None
        if step.rejection is None
        else {
            "code": step.rejection.code,
            "reason": step.rejection.reason,
            **({"policy": step.rejection.policy} if step.rejection.policy else {}),
        },
        "commands": [command_json(c) for c in step.commands],
        "changed_keys": list(step.changed_keys),
    }
    if step.spans:
        body["spans"] = [span_json(s) for s in step.spans]
    if step.violations:
        body["violations"] = [
            {"policy": v.policy, "code": v.code, "reason": v.reason, "enforced": v.enforced}
            for v in step.violations
        ]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def span_json(span: SpanRecord) -> dict[str, Any]:
    """A JSON-ready form of a span record, stable across runs."""
    return {
        "kind": span.kind,
        "name": span.name,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "status": span.status,
        "attributes": dict(span.attributes),
        "links": list(span.links),
    }
