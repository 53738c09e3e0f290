"""Events per second through the pure core, and serialized state bytes per run (not a test).

Run: ``.venv/bin/python bench/core_bench.py``. Events are built before timing: the numbers
are the core's cost (decide + command construction), not decoding.
"""

from __future__ import annotations

import gc
import sys
import time
from datetime import UTC, datetime

from streamcoord.core import Catalog, CoordinatorState, Publish, decide
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.spec.models import Pipeline

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _dag(stages: int) -> Pipeline:
    spec = [{"name": "s0"}] + [
        {"name": f"s{i}", "needs": [f"s{i - 1}"] + ([f"s{i // 2}"] if i // 2 != i - 1 else [])}
        for i in range(1, stages)
    ]
    return Pipeline.model_validate({
        "name": "big", "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}], "stages": spec,
    })


def _run(catalog: Catalog, runs: int) -> tuple[float, int, CoordinatorState]:
    """Drive ``runs`` runs to completion, answering every trigger; returns seconds, events."""
    state = CoordinatorState.empty()
    pending: list[CloudEvent] = [
        ExternalEvent(id=f"e{i}", source="bench", type="go", data={"key": f"k{i}"})
        for i in range(runs)
    ]
    events = 0
    elapsed = 0.0
    n = 0
    while pending:
        batch, pending = pending, []
        start = time.perf_counter()
        steps = [decide(catalog, state, ev, NOW) for ev in batch]
        elapsed += time.perf_counter() - start
        events += len(batch)
        for step in steps:
            for cmd in step.commands:
                if isinstance(cmd, Publish) and isinstance(cmd.event, StageTrigger):
                    d = cmd.event.data
                    ref = {"run_id": d.run_id, "stage": d.stage, "attempt": d.attempt}
                    n += 1
                    pending.append(StageStarted(id=f"a{n}", source="x", data=ref))
                    pending.append(StageSucceeded(id=f"b{n}", source="x", data=ref))
    return elapsed, events, state


def main() -> None:
    # With --no-gc the cyclic collector is off while timing: the many-runs case keeps a whole
    # wave of commands alive, and generation-2 scans then dominate (an artefact of batching
    # every run at once; the runtime's batches are bounded).
    if "--no-gc" in sys.argv:
        gc.disable()
    for label, pipeline, runs in [
        ("50-stage DAG, 200 runs", _dag(50), 200),
        ("3-stage runs, 20000 runs", _dag(3), 20_000),
    ]:
        catalog = Catalog.build([pipeline], [])
        elapsed, events, state = _run(catalog, runs)
        size = sum(len(v) for k, v in state.dump() if k.startswith("run/")) / runs
        print(f"{label}: {events} events in {elapsed:.3f}s = {events / elapsed:,.0f} events/s;"
              f" state {size:,.0f} bytes per finished run")


if __name__ == "__main__":
    main()
