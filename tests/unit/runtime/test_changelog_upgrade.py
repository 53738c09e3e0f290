"""State upgrades: a changelog written by a released format is restored by the current code.

``tests/golden/changelog/v<N>/`` holds the records a coordinator of format ``N`` wrote for
``log.jsonl`` (see ``generate.py`` there; released folders are never regenerated). Restoring
them must give back the same runs, statuses and timers, and deciding must carry on from there:
this is what a rolling restart onto a new release does (deploy/README.md, "Upgrading").
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide
from streamcoord.core._state import VERSION
from streamcoord.core.replay import parse_log
from streamcoord.events.models import CloudEvent, StageTrigger
from streamcoord.pipelines.loader import load_specs
from streamcoord.runtime.changelog import POSITION_KEY, state_items

GOLDEN = Path(__file__).parents[2] / "golden" / "changelog"
FORMATS = sorted(p for p in GOLDEN.iterdir() if (p / "changelog.jsonl").exists())


def _records(folder: Path) -> list[tuple[str, bytes | None]]:
    lines = (folder / "changelog.jsonl").read_bytes().splitlines()
    rows = [orjson.loads(line) for line in lines]
    return [(r["key"], None if r["value"] is None else r["value"].encode()) for r in rows]


def _catalog(folder: Path) -> Catalog:
    loaded = load_specs([folder / "spec.yaml"])
    assert not loaded.problems
    return Catalog.build(loaded.pipelines, loaded.pools, policies=loaded.policies)


def _restore(folder: Path) -> CoordinatorState:
    return CoordinatorState.load(0, 1, state_items(_records(folder)))


def _summary(state: CoordinatorState) -> dict[str, Any]:
    runs = {
        run.run_id: {
            "status": run.status,
            "stages": {name: [s.status, s.attempt] for name, s in run.stages.items()},
            "timers": {tid: list(t) for tid, t in run.timers.items()},
        }
        for run in state.runs()
    }
    return {"runs": runs, "keys": state.keys()}


@pytest.mark.parametrize("folder", FORMATS, ids=[f.name for f in FORMATS])
def test_an_older_changelog_restores_the_runs_it_recorded(folder: Path) -> None:
    records = _records(folder)
    assert any(key == POSITION_KEY for key, _ in records)  # written as the runtime writes it
    expected = orjson.loads((folder / "expected.json").read_bytes())
    assert _summary(_restore(folder)) == {"runs": expected["runs"], "keys": expected["keys"]}


@pytest.mark.parametrize("folder", FORMATS, ids=[f.name for f in FORMATS])
def test_a_restored_state_dumps_what_it_restores(folder: Path) -> None:
    # The first batch after an upgrade rewrites touched keys in the new format; loading those
    # back must not change a thing.
    state = _restore(folder)
    assert _summary(CoordinatorState.load(0, 1, state.dump())) == _summary(state)


def test_the_current_format_has_a_golden() -> None:
    # A format change must leave the previous golden in place and add its own, so the next
    # release's code is tested against what this one writes.
    assert (GOLDEN / f"v{VERSION}" / "changelog.jsonl").exists(), (
        f"state format {VERSION} has no golden: run tests/golden/changelog/generate.py "
        f"tests/golden/changelog/v{VERSION} (copy spec.yaml and log.jsonl from the last one)"
    )


def _chain(catalog: Catalog, state: CoordinatorState, event: CloudEvent, now: datetime) -> Step:
    """Decide ``event`` and what it routes back (one partition); every command in one Step."""
    commands = []
    queue: deque[CloudEvent] = deque([event])
    first: Step | None = None
    while queue:
        step = decide(catalog, state, queue.popleft(), now)
        first = first or step
        commands += step.commands
        queue.extend(c.event for c in step.commands if isinstance(c, Publish) and c.topic is None)
    assert first is not None
    return Step(first.state, tuple(commands), first.rejection, first.changed_keys)


def _triggered(step: Step) -> list[tuple[str, str, int]]:
    return [
        (c.event.data.run_id, c.event.data.stage, c.event.data.attempt)
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _event(line: dict[str, Any]) -> tuple[datetime, CloudEvent]:
    return next(parse_log([orjson.dumps(line).decode()]))


V3 = GOLDEN / "v3"


def test_decisions_carry_on_from_a_v3_changelog() -> None:
    catalog, state = _catalog(V3), _restore(V3)
    at = "2026-03-01T00:00:30+00:00"
    # what the runtime re-arms after the restore: the one pending retry timer
    ((due, timer_id, fired),) = state.timers()
    assert timer_id == "ingest/d2|extract|1|retry"

    # the dedup windows survived: a redelivered match changes neither the queued run nor the
    # matches the paused pipeline holds
    held = state.dump_key("pipe/archive")
    ((now, again),) = [
        e for e in parse_log((V3 / "log.jsonl").read_text().splitlines()) if e[1].id == "e15"
    ]
    redelivered = decide(catalog, state, again, now)
    assert redelivered.commands == ()
    assert "run/ingest/d5" not in redelivered.changed_keys
    assert state.dump_key("pipe/archive") == held

    # the running load ends: its run succeeds, the pool slot goes to the waiter, the
    # cross-pipeline subscriber is told, and the queued run is admitted
    now, done = _event(
        {
            "timestamp": at,
            "event": {
                "specversion": "1.0",
                "id": "c1",
                "source": "exec",
                "type": "streamcoord.stage.succeeded",
                "data": {"run_id": "ingest/d3", "stage": "load", "attempt": 1},
            },
        }
    )
    step = _chain(catalog, state, done, now)
    assert step.rejection is None
    assert sorted(_triggered(step)) == [
        ("ingest/d4", "load", 1),
        ("ingest/d5", "extract", 1),
        ("report/d3", "publish", 1),
    ]
    finished = state.run("ingest/d3")
    assert finished is not None
    assert finished.status == "succeeded"

    # the retry timer restored from the changelog fires: the second attempt starts
    assert _triggered(_chain(catalog, state, fired, due)) == [("ingest/d2", "extract", 2)]

    # the paused pipeline's held matches start on resume, in arrival order
    now, resume = _event(
        {
            "timestamp": at,
            "event": {
                "specversion": "1.0",
                "id": "c2",
                "source": "cli",
                "type": "streamcoord.pipeline.resume",
                "data": {"pipeline": "archive"},
            },
        }
    )
    assert _triggered(_chain(catalog, state, resume, now)) == [
        (f"archive/d{n}", "copy", 1) for n in range(1, 6)
    ]


V7 = GOLDEN / "v7"


def test_a_quota_queue_moves_on_from_a_v7_changelog() -> None:
    """The quota's books survive the restore: its timer is re-armed, and when it fires the runs
    it queued start in order, one per start leaving the window."""
    catalog, state = _catalog(V7), _restore(V7)
    quota = [
        (due, event) for due, timer_id, event in state.timers() if timer_id.startswith("quota|")
    ]
    ((due, fired),) = quota
    assert due == datetime.fromisoformat("2026-03-01T01:00:21+00:00")
    assert _triggered(_chain(catalog, state, fired, due)) == [("digest/d3", "mail", 1)]
    ((due, fired),) = [
        (due, event) for due, timer_id, event in state.timers() if timer_id.startswith("quota|")
    ]
    assert due == datetime.fromisoformat("2026-03-01T01:00:22+00:00")
    assert _triggered(_chain(catalog, state, fired, due)) == [("digest/d4", "mail", 1)]
    assert [t for _, t, _ in state.timers() if t.startswith("quota|")] == []
