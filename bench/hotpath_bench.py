"""The coordinator's per-event CPU path without a broker: ``python bench/hotpath_bench.py``.

What the decide and route stages (:meth:`PartitionProcessor._decide`, ``_route``) and the
per-batch changelog dump do for each record of the end-to-end bench workload
(``bench/workload.py``: a 20-stage chain, ``stage.started`` and
``stage.succeeded`` of ``s0`` for many seeded runs, each success triggering ``s1``):
decode(value, headers) -> decide -> encode every published event -> per batch of 500,
``dump_key`` of every changed key. Records are encoded with the codec before timing; state is
restored from the seeded changelog before each round. Time is CPU time of this process
(``time.process_time``), best of ``--repeat`` rounds.

Options: ``--runs N`` (default 20,000), ``--repeat N`` (default 5), ``--profile`` (one round,
for py-spy or pyinstrument to look at), ``--digest`` (a hash of every produced key, value and
header: an optimisation must leave it unchanged), ``--coalesce`` (as the runtime does it:
one run record per run per batch, built and encoded after the batch; its digest differs from
the default's, which builds and encodes every step's run records: ``publish_run_records``),
``--runtime`` (the records go through ``PartitionProcessor.decide_batch`` itself, Kafka records in
and an outbox out: the coordinator's real per-record path, admission and failure isolation
included).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import catalog, completion, run_id, seeded_states
from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    RunChange,
    decide,
    publish_run_records,
    run_record,
)
from streamcoord.core._step import RUNS_TOPIC
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import CloudEvent

BATCH = 500
Record = tuple[bytes, list[tuple[str, bytes]], int]


def records(runs: int) -> list[Record]:
    """Every run's ``s0`` started and succeeded, encoded as the executor would produce them."""
    out: list[Record] = []
    timestamp = int(datetime(2026, 1, 1, 0, 1, tzinfo=UTC).timestamp() * 1000)
    for n in range(runs):
        for event in completion(run_id(n), 0):
            value, headers = encode(event)
            out.append((value, headers, timestamp))
    return out


def one_round(
    cat: Catalog,
    state: CoordinatorState,
    batch: list[Record],
    digest: hashlib._Hash | None = None,
    coalesce: bool = False,
) -> tuple[int, int]:
    """Decide ``batch`` as the runtime does; returns (records produced, bytes produced).

    With ``digest``, every produced key, value and header goes into it (to compare outputs).
    With ``coalesce``, run records are built once per run after the batch, as the runtime does."""
    produced = size = 0
    changed: set[str] = set()
    run_changes: dict[str, RunChange] = {}
    for value, raw_headers, timestamp in batch:
        headers = list(raw_headers)
        event = decode(value, headers)
        now = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
        step = decide(cat, state, event, now)
        if not coalesce:
            step = publish_run_records(step)
        changed.update(step.changed_keys)
        for change in step.changed_runs:
            run_changes[change.run.run_id] = change
        for command in step.commands:
            if isinstance(command, Publish):
                size += _produce(command.topic, command.key, command.event, digest)
                produced += 1
    for run, change in run_changes.items():  # after the batch: one record per run
        size += _produce(RUNS_TOPIC, run, run_record(change), digest)
        produced += 1
    for key in sorted(changed):
        key_bytes = key.encode()
        dumped = state.dump_key(key)
        if digest is not None:
            digest.update(repr((key_bytes, dumped)).encode())
        produced += 1
        size += len(dumped or b"")
    return produced, size


def _produce(topic: str | None, key: str, event: CloudEvent, digest: hashlib._Hash | None) -> int:
    """Encode ``event`` as the runtime sends it; returns its size."""
    out, out_headers = encode(event)
    key_bytes = key.encode()
    if digest is not None:
        digest.update(repr((topic, key_bytes, out, out_headers)).encode())
    return len(out)


def timed_round(
    cat: Catalog, seeded: list[tuple[str, bytes]], recs: list[Record], coalesce: bool
) -> float:
    state = CoordinatorState.load(0, 1, seeded)
    state.runs()  # every restored run decoded before the clock: the steady state's per-event path
    started = time.process_time()
    for start in range(0, len(recs), BATCH):
        one_round(cat, state, recs[start : start + BATCH], coalesce=coalesce)
    elapsed = time.process_time() - started
    _check(state)
    return elapsed


def runtime_round(cat: Catalog, seeded: list[tuple[str, bytes]], recs: list[Record]) -> float:
    """The same records through the coordinator's own ``decide_batch`` (no producer): admitted
    from the events topic, then their copies decided from the internal topic, as a partition
    handles every event."""
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from streamcoord.runtime import CoordinatorSettings
    from streamcoord.runtime.partition import PartitionProcessor

    settings = CoordinatorSettings()

    def consumed(topic: str) -> list[ConsumerRecord[bytes, bytes]]:
        return [
            ConsumerRecord(
                topic, 0, offset, timestamp, 0, b"k", value, None, 1, len(value), tuple(headers)
            )
            for offset, (value, headers, timestamp) in enumerate(recs)
        ]

    events, internal = consumed(settings.topics.events), consumed(settings.topics.internal)
    state = CoordinatorState.load(0, 1, seeded)
    worker = PartitionProcessor(TopicPartition(settings.topics.events, 0), state, cat, settings, {})
    started = time.process_time()
    for start in range(0, len(recs), BATCH):
        worker.decide_batch(events[start : start + BATCH])
        worker.decide_batch(internal[start : start + BATCH])
    elapsed = time.process_time() - started
    _check(worker.state)
    return elapsed


def output_digest(
    cat: Catalog, seeded: list[tuple[str, bytes]], recs: list[Record], coalesce: bool
) -> str:
    """A hash of everything the records produce: it must not change when the code gets faster."""
    state = CoordinatorState.load(0, 1, seeded)
    digest = hashlib.sha256()
    for start in range(0, len(recs), BATCH):
        one_round(cat, state, recs[start : start + BATCH], digest, coalesce)
    return digest.hexdigest()


def _check(state: CoordinatorState) -> None:
    wrong = [r.run_id for r in state.runs() if r.stages["s1"].status != "triggered"]
    if wrong:
        raise SystemExit(f"{len(wrong)} runs did not trigger s1 (e.g. {wrong[0]}): bench broken")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--digest", action="store_true", help="print a hash of all outputs")
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help="one run record per run per batch, as the runtime builds them",
    )
    parser.add_argument(
        "--runtime",
        action="store_true",
        help="through PartitionProcessor.decide_batch, as the coordinator decides",
    )
    args = parser.parse_args()
    cat = catalog()
    (seeded,) = seeded_states(args.runs, 1)
    recs = records(args.runs)
    if args.digest:
        print(f"outputs sha256 {output_digest(cat, seeded, recs, args.coalesce)}")
    rounds = 1 if args.profile else args.repeat
    if args.runtime:
        best = min(runtime_round(cat, seeded, recs) for _ in range(rounds))
    else:
        best = min(timed_round(cat, seeded, recs, args.coalesce) for _ in range(rounds))
    per_event = best / len(recs) * 1e6
    print(
        f"{len(recs)} events in {best:.3f}s CPU: {per_event:.1f} us/event, "
        f"{len(recs) / best:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
