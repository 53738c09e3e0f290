"""Events per second through the pure core, and serialized state bytes per run (not a test).

Run: ``.venv/bin/python bench/core_bench.py [--no-gc] [--repeat N] [--coalesced]``.

What is measured: :func:`decide` on every event, in batches of 500 (the runtime's default
``max_batch``); each step's commands are dropped once decided, as the runtime drops them once
produced. Input events are built, outside the timed region, just before their batch, the way
the runtime decodes a batch before deciding it. Runs stay in the state when they finish, so the
many-runs case decides with 20,000 runs resident. Time is this process's CPU time
(``time.process_time``), so other work on a shared machine disturbs the figure less than wall
time would; the best of ``--repeat`` rounds is reported.

Every run is driven to completion: each wave triggers the next stage of every run (the DAG is
a chain with extra edges to ``s{i//2}``, so exactly one stage becomes ready per wave), and the
next wave answers it with ``started`` and ``succeeded``.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from streamcoord.core import Catalog, CoordinatorState, decide, publish_run_records
from streamcoord.events.models import CloudEvent, ExternalEvent, StageStarted, StageSucceeded
from streamcoord.pipelines.models import Pipeline

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 500


def _dag(stages: int) -> Pipeline:
    spec = [{"name": "s0"}] + [
        {"name": f"s{i}", "needs": [f"s{i - 1}"] + ([f"s{i // 2}"] if i // 2 != i - 1 else [])}
        for i in range(1, stages)
    ]
    return Pipeline.model_validate(
        {
            "name": "big",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": spec,
        }
    )


def _batches(runs: int, stages: int) -> Iterator[list[CloudEvent]]:
    """Input events in waves (start every run, then answer stage i of every run), in batches."""
    for start in range(0, runs, BATCH):
        yield [
            ExternalEvent(id=f"e{i}", source="bench", type="go", data={"key": f"k{i}"})
            for i in range(start, min(runs, start + BATCH))
        ]
    for stage in range(stages):
        for start in range(0, runs, BATCH // 2):
            batch: list[CloudEvent] = []
            for i in range(start, min(runs, start + BATCH // 2)):
                ref = {"run_id": f"big/k{i}", "stage": f"s{stage}", "attempt": 1}
                batch.append(StageStarted(id=f"a{i}.{stage}", source="x", data=ref))
                batch.append(StageSucceeded(id=f"b{i}.{stage}", source="x", data=ref))
            yield batch


def _run(
    catalog: Catalog, runs: int, stages: int, run_records: bool = True
) -> tuple[float, int, CoordinatorState]:
    """Drive ``runs`` runs to completion; returns CPU seconds, events decided and the state."""
    state = CoordinatorState.empty()
    events = 0
    elapsed = 0.0
    for batch in _batches(runs, stages):
        start = time.process_time()
        for event in batch:
            step = decide(catalog, state, event, NOW)
            if run_records:
                publish_run_records(step)
        elapsed += time.process_time() - start
        events += len(batch)
    return elapsed, events, state


def _check_finished(state: CoordinatorState, runs: int) -> None:
    finished = sum(1 for run in state.runs() if run.status == "succeeded")
    if finished != runs:
        raise SystemExit(f"only {finished} of {runs} runs succeeded: the bench is broken")


def main() -> None:
    # --no-gc turns the cyclic collector off while timing, to show its share.
    if "--no-gc" in sys.argv:
        gc.disable()
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    # --coalesced: no run record per step, as the runtime does (it builds one run record
    # per run per batch afterwards, outside the core)
    run_records = "--coalesced" not in sys.argv
    for label, stages, runs in [
        ("50-stage DAG, 200 runs", 50, 200),
        ("3-stage runs, 20000 runs", 3, 20_000),
    ]:
        catalog = Catalog.build([_dag(stages)], [])
        best = None
        for _ in range(repeat):
            elapsed, events, state = _run(catalog, runs, stages, run_records)
            _check_finished(state, runs)
            best = elapsed if best is None else min(best, elapsed)
        assert best is not None
        size = sum(len(v) for k, v in state.dump() if k.startswith("run/")) / runs
        print(
            f"{label}: {events} events in {best:.3f}s CPU = {events / best:,.0f} events/s;"
            f" state {size:,.0f} bytes per finished run"
        )


if __name__ == "__main__":
    main()
