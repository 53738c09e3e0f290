"""Write a changelog golden: the records the current code writes for ``log.jsonl``.

Run once per released state format, into a NEW folder (an existing one is never overwritten: it
is what older coordinators left on the changelog topic, which newer code must keep restoring)::

    python tests/golden/changelog/generate.py tests/golden/changelog/v<VERSION>

The folder must already hold ``spec.yaml`` and ``log.jsonl`` (external events only). Each event is
decided as one batch, with the events it routes back (matches, pool and need traffic), and its
changed keys are written as the runtime writes them: sorted, ``None`` for a tombstone, then the
``~position`` record. Timers do not fire: the ones still pending are part of the golden.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from streamcoord.core import Catalog, CoordinatorState, Publish, decide
from streamcoord.core._state import VERSION
from streamcoord.core.replay import parse_log
from streamcoord.events.models import CloudEvent
from streamcoord.pipelines.loader import load_specs
from streamcoord.runtime.changelog import POSITION_KEY, position_value


def changelog(catalog: Catalog, folder: Path) -> list[tuple[str, bytes | None]]:
    state = CoordinatorState.empty()
    records: list[tuple[str, bytes | None]] = []
    lines = (folder / "log.jsonl").read_text().splitlines()
    for offset, (timestamp, event) in enumerate(parse_log(lines)):
        changed: set[str] = set()
        queue: deque[CloudEvent] = deque([event])
        while queue:
            step = decide(catalog, state, queue.popleft(), timestamp)
            assert step.rejection is None, step.rejection
            changed.update(step.changed_keys)
            queue.extend(
                c.event for c in step.commands if isinstance(c, Publish) and c.topic is None
            )
        records += [(key, state.dump_key(key)) for key in sorted(changed)]
        records.append((POSITION_KEY, position_value(offset + 1)))
    return records


def summary(state: CoordinatorState) -> dict[str, Any]:
    """What a restore must give back: every run's status, stages and pending timers."""
    return {
        "runs": {
            run.run_id: {
                "status": run.status,
                "stages": {name: [s.status, s.attempt] for name, s in run.stages.items()},
                "timers": dict(run.timers),
            }
            for run in state.runs()
        },
        "keys": state.keys(),
    }


def main(folder: Path) -> None:
    if (folder / "changelog.jsonl").exists():
        sys.exit(f"{folder} already holds a golden: released formats are never regenerated")
    loaded = load_specs([folder / "spec.yaml"])
    assert not loaded.problems, loaded.problems
    records = changelog(
        Catalog.build(loaded.pipelines, loaded.pools, policies=loaded.policies), folder
    )
    with (folder / "changelog.jsonl").open("wb") as out:
        for key, value in records:
            text = None if value is None else value.decode()
            out.write(orjson.dumps({"key": key, "value": text}) + b"\n")
    state = CoordinatorState.load(0, 1, [(k, v) for k, v in records if k != POSITION_KEY])
    expected = {"version": VERSION, **summary(state)}
    (folder / "expected.json").write_bytes(orjson.dumps(expected, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
