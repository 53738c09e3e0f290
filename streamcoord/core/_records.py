"""Run records: the snapshot of a run that progress displays follow, one per changed run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from streamcoord.core._construction import build
from streamcoord.core._state import RunState
from streamcoord.core._step import RUNS_TOPIC, Publish, Step
from streamcoord.events.models import RunRecord, RunRecordData

__all__ = ["COORDINATOR_SOURCE", "RunChange", "publish_run_records", "record_of", "run_record"]

COORDINATOR_SOURCE = "streamcoord/coordinator"


@dataclass(frozen=True, slots=True)
class RunChange:
    """A run whose status or stage statuses changed in a step (``Step.changed_runs``), for the
    caller to build its run record.

    ``run`` is the live :class:`RunState`, not a copy: later steps change it in place, so
    :func:`run_record` shows the run as it stands when it is called, with the ``source``,
    ``event_id`` and ``now`` of this step's event.
    """

    run: RunState
    source: str
    event_id: str
    now: datetime


def run_record(change: RunChange) -> RunRecord:
    """The record of ``change.run`` as it stands now, identified by the change's event.

    Called right after the step, this is the record of a batch of one event
    (:func:`publish_run_records`). The runtime keeps only the last record per run of a batch: it
    calls this once per run after the batch, with the run's last change, so the record shows
    the run as the batch leaves it.
    Status and stage statuses are those of the last change (every change to them is a change),
    and so is the record's id; ``caused_by`` may have grown since (a match folded into the run
    after its last status change), and ``attempts`` would differ only if an attempt began
    without any status change, which the core does not do across steps.
    """
    return record_of(change.run, change.source, change.event_id, change.now)


def publish_run_records(step: Step) -> Step:
    """``step`` as a batch of one event: a ``RunRecord`` publish for each run it changed, after
    its other commands (what the replay shows; the runtime builds one per run per batch)."""
    records = tuple(
        Publish(RUNS_TOPIC, change.run.run_id, run_record(change)) for change in step.changed_runs
    )
    return replace(step, commands=step.commands + records, changed_runs=())


def record_of(run: RunState, source: str, event_id: str, now: datetime) -> RunRecord:
    """The record of ``run`` as it stands, caused by the event ``(source, event_id)`` at ``now``
    (what :func:`run_record` builds, without a :class:`RunChange` in between)."""
    stages = run.stages
    return build(
        RunRecord,
        None,
        id=f"{run.run_id}|{run.status}|{source}|{event_id}",
        source=COORDINATOR_SOURCE,
        time=now,
        subject=run.run_id,
        data=build(
            RunRecordData,
            None,
            run_id=run.run_id,
            pipeline=run.pipeline,
            run_key=run.run_key,
            status=run.status,
            stages={n: s.status for n, s in stages.items()},
            attempts={n: s.attempt for n, s in stages.items()},
            caused_by=list(run.caused_by),
            trace_id=run.trace_id,
            spec_version=run.spec_version,
            principal=run.principal,
        ),
    )
