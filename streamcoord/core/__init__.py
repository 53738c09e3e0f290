"""The pure coordination core: one event and the partition's state in, new state and commands out.

Public surface::

    catalog = Catalog.build(pipelines, pools)            # compile expressions once, index triggers
    state = CoordinatorState.empty(partition=0, partitions=1)
    step = decide(catalog, state, event, now)            # now = the event's Kafka timestamp
    step.state, step.commands, step.rejection, step.changed_keys

    # every loaded spec version (Catalog.version is a content hash, see spec_version()):
    step = decide(CatalogSet.of(default, *others), state, event, now)

    # run records: one per changed run per batch, built when the batch ends
    latest = {change.run.run_id: change for change in step.changed_runs}  # over the batch
    records = [run_record(change) for change in latest.values()]          # after the batch
    step = publish_run_records(decide(catalog, state, event, now))        # a batch of one

Expressions (run keys, filters, conditions, params) are compiled and evaluated by
:mod:`streamcoord.pipelines.expressions`, the one implementation of the spec language's rules.

Determinism rules (a written contract, checked by the replay and property tests):

- No clock: time enters only as ``now`` (the recorded timestamp of the event) and as event data;
  timers are ``SetTimer`` commands whose ``TimerFired`` events come back through the log.
- No randomness: retry jitter is a hash of (run id, stage, attempt); ids of everything the core
  emits are derived from the causing event and the run.
- No dependence on set or hash iteration order: state lives in insertion-ordered dicts and lists,
  stages are evaluated in a topological order with ties broken by declaration order, pool
  waiters are granted by (priority descending, request order), queued runs by request order.
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

Timeouts. A triggered attempt must report ``started`` (or a heartbeat) within its start timeout
(the stage's ``start_timeout_seconds``, else ``Catalog.build(default_start_timeout_seconds=)``),
then heartbeat within ``heartbeat_timeout_seconds``, and end within ``timeout_seconds`` of its
trigger (also carried by the trigger as ``timeout_seconds``/``deadline``). A timeout ends the
attempt ``timed_out`` and the retry policy applies. Whenever the core ends a live attempt
(a timeout, a run cancel) it first publishes a ``StageCancel`` on the attempt's trigger topic
and key; any later report of that attempt becomes an ``ignored`` decision
(``attempt_timed_out``/``attempt_cancelled``), never a transition.
Spec versions. ``decide`` takes one :class:`Catalog` (a set of one version) or a
:class:`CatalogSet`. A partition's current version is the one its last
``streamcoord.specs.activate`` named (``state.spec_version``, in the changelog under ``spec``),
else the set's default. An accepted activation is forwarded once to every other partition
(extension ``scbroadcast``, as for pause); one of a version the set lacks is rejected
(``unknown_spec_version``) and goes nowhere.

- New runs (trigger matches, requests, ticks, admissions of held matches) use the current
  version and record it as ``RunState.spec_version`` (None while the partition has activated
  none: such runs follow the current version, and an activation first pins the unfinished ones
  to the outgoing version). A run keeps its version until it ends: every event about it (stage
  reports, timers, cancel, retry, grants, outcomes) is decided with that version's pipeline, a
  queued run starts on it, and its run record names it.
- A run whose version is not in the set (a restart with changed spec files) follows the
  current version. The first accepted event naming it, while it is active or queued, aligns
  its stages: stages the spec added start ``pending`` (subscribed to their cross-pipeline
  needs, run when their needs allow);
  unfinished stages it removed end ``cancelled`` with reason ``spec_removed``, giving back their
  pool slot and timers and telling cross-pipeline subscribers (finished ones keep their
  outcome). The remaining stages follow the current spec's needs, in which a removed stage no
  longer appears; ``explain`` reads a need the run lacks as pending. A manual retry of a
  finished run aligns it the same way (retrying a removed stage is rejected, ``unknown_stage``).
- If the current version has no such pipeline, that first event ends the run ``cancelled``
  (every unfinished stage ``spec_removed``): pool slots released, timers cancelled, the
  max-active slot freed (no queued run is admitted for a pipeline that is gone), subscribers
  told; a ``run.cancel`` does the same. Later events about the finished run are rejected
  (``unknown_pipeline``). A match folding into a run does not look at its spec.
- Routed matches and arrivals are decided with the receiving partition's current version (an
  arrival for a data trigger that version lacks is rejected, ``unknown_trigger``): activate the
  same version on every partition, which the forwarding does.

Routing between partitions (all through the events topic, never shared memory):

- pools: owned by the partition of ``pool/<name>``; ``streamcoord.pool.acquire`` / ``grant`` /
  ``release`` events; grants by priority then request order.
- ``max_active_runs``: a pipeline's slots are kept by the partition of ``active/<pipeline>``, so
  the limit holds over all partitions. A new run is ``queued`` until it holds a slot
  (``streamcoord.limit.acquire`` / ``grant``; ``deny`` for ``skip``; for ``cancel_oldest`` the
  oldest holder gets a ``streamcoord.run.cancel`` and the new run its slot once given back);
  grants in request order; a run gives its slot back (``release``) when it ends, queued or not.
  Where the owner is the partition at hand this happens in the same step, without routing.
- quota policies (runs per sliding window): kept by the same owner with the same events; it
  counts the starts it grants by the times it decides at, queues a run over a quota (a
  ``quota`` timer keyed to ``active/<pipeline>`` moves the queue when the window frees) or
  denies it (``deny`` naming the policy: the run is skipped, the event dead-lettered).
- cross-pipeline needs: the downstream run routes ``streamcoord.need.subscribe`` to the upstream
  run's key; the upstream partition answers with ``StageOutcome`` (extension attributes
  ``sctarget``/``scneed``/``scwatermark``) when the stage ends or its watermark advances.
- pause/resume: every partition keeps its own flag; a command is forwarded once to every other
  partition (extension ``scbroadcast``).
- routed events carry their Kafka key in the ``sckey`` extension; :func:`partition_key_for`
  returns it.
- :func:`home_partition` names the one partition an event must be decided on (None: any); the
  runtime forwards an event that a producer's partitioner put elsewhere (kcat, librdkafka).

Limitation, documented: the data-trigger watermark is kept per partition that first sees the
arrivals (producers keying arrivals consistently share one watermark).
"""

from streamcoord.core._catalog import DEFAULT_RETENTION, Catalog
from streamcoord.core._decide import decide
from streamcoord.core._explain import Explanation, NeedStatus, explain
from streamcoord.core._records import RunChange, publish_run_records, run_record
from streamcoord.core._state import CoordinatorState, RunState, StageState
from streamcoord.core._step import CancelTimer, Command, Publish, Rejection, SetTimer, Step
from streamcoord.core._tracing import SpanRecord
from streamcoord.core._versions import CatalogSet, spec_version
from streamcoord.events.partitioning import (
    home_partition,
    murmur2,
    partition_for,
    partition_key_for,
)

__all__ = [
    "DEFAULT_RETENTION",
    "CancelTimer",
    "Catalog",
    "CatalogSet",
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
    "home_partition",
    "murmur2",
    "partition_for",
    "partition_key_for",
    "publish_run_records",
    "run_record",
    "spec_version",
]
