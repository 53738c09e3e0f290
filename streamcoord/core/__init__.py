"""The pure coordination core: one event and the partition's state in, new state and commands out.

Public surface::

    catalog = Catalog.build(pipelines, pools)            # compile expressions once, index triggers
    state = CoordinatorState.empty(partition=0, partitions=1)
    step = decide(catalog, state, event, now)            # now = the event's Kafka timestamp
    step.state, step.commands, step.rejection, step.changed_keys

    # a runtime that keeps one run record per run per batch builds only those:
    step = decide(catalog, state, event, now, run_records=False)
    latest = {change.run.run_id: change for change in step.changed_runs}  # over the batch
    records = [run_record(change) for change in latest.values()]          # after the batch

Expressions (run keys, filters, conditions, params) are compiled and evaluated by
:mod:`streamcoord.spec.expressions`, the one implementation of the spec language's rules.

Determinism rules (a written contract, checked by the replay and property tests):

- No clock: time enters only as ``now`` (the recorded timestamp of the event) and as event data;
  timers are ``SetTimer`` commands whose ``TimerFired`` events come back through the log.
- No randomness: retry jitter is a hash of (run id, stage, attempt); ids of everything the core
  emits are derived from the causing event and the run.
- No dependence on set or hash iteration order: state lives in insertion-ordered dicts and lists,
  stages are evaluated in a topological order with ties broken by declaration order, pool
  waiters are granted by (priority descending, request order).
- No I/O, no asyncio, no logging: errors in input become a ``Rejection`` with a code and reason
  (the runtime dead-letters the event); benign disorder (a heartbeat after completion, a timer
  no longer set, a superseded attempt) becomes an ``ignored`` decision record.

Runs. A run's id is ``<pipeline>/<run_key>``, with ``#<n>`` appended for generation n > 1. A
trigger match for an active or queued run folds into it; a match for a finished run is ignored
unless it is a manual ``run.requested``, which starts the next generation. Every generation of a
run lives on the partition of ``<pipeline>/<run_key>``; the core routes matches it makes for runs
on other partitions as ``streamcoord.run.match`` events (``Publish(topic=None, key=...)``).

Retention. A finished run leaves the state ``catalog.retention`` after it finished (one sweep
timer per partition, see ``_retention``); a ``gen/`` marker keeps its generation, so late events
for it are ignored, matches for its key stay ignored and a manual request starts the next
generation.

Idempotency. Each run remembers an 8-byte digest of the (source, id) of the last 128 events
applied to it, so a redelivered event changes nothing; beyond that window the transitions are
idempotent (a second ``succeeded`` for a finished attempt is rejected, not applied). One
StageTrigger per (run, stage, attempt); its ``idempotency_key`` and id are
``<run_id>/<stage>/<attempt>``.

Stages move pending -> ready -> triggered -> running -> succeeded | failed | retry_wait |
timed_out, or pending -> skipped | upstream_failed, or anything unfinished -> cancelled. A
``succeeded`` before ``started`` is accepted; ``started`` or a heartbeat after the end is ignored.

Routing between partitions (all through the events topic, never shared memory):

- pools: owned by the partition of ``pool/<name>``; ``streamcoord.pool.acquire`` / ``grant`` /
  ``release`` events; grants by priority then request order.
- cross-pipeline needs: the downstream run routes ``streamcoord.need.subscribe`` to the upstream
  run's key; the upstream partition answers with ``StageOutcome`` (extension attributes
  ``sctarget``/``scneed``/``scwatermark``) when the stage ends or its watermark advances.
- pause/resume: every partition keeps its own flag; a command is forwarded once to every other
  partition (extension ``scbroadcast``).
- routed events carry their Kafka key in the ``sckey`` extension; :func:`partition_key_for`
  returns it.

Limitations, documented: ``max_active_runs`` is counted per partition (exact with one partition
or when a pipeline's runs share a partition); the data-trigger watermark is kept per partition
that first sees the arrivals (producers keying arrivals consistently share one watermark).
"""

from streamcoord.core._catalog import Catalog
from streamcoord.core._commands import CancelTimer, Command, Publish, Rejection, SetTimer, Step
from streamcoord.core._decide import decide
from streamcoord.core._explain import Explanation, NeedStatus, explain
from streamcoord.core._partitioning import murmur2, partition_for, partition_key_for
from streamcoord.core._records import RunChange, run_record
from streamcoord.core._state import CoordinatorState, RunState, StageState
from streamcoord.core._tracing import SpanRecord

__all__ = [
    "CancelTimer",
    "Catalog",
    "Command",
    "CoordinatorState",
    "Explanation",
    "NeedStatus",
    "Publish",
    "Rejection",
    "RunChange",
    "RunState",
    "SetTimer",
    "SpanRecord",
    "StageState",
    "Step",
    "decide",
    "explain",
    "murmur2",
    "partition_for",
    "partition_key_for",
    "run_record",
]
