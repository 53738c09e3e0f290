"""Retention: a finished run leaves the state ``catalog.retention`` after it finished.

Its ``run/`` key is deleted (the runtime writes a tombstone to the changelog); its last run
record stays in the runs topic, so ``streamcoord runs`` still lists it. What stays is a
``gen/<pipeline>/<run_key>`` marker with the expired run's generation (its key and 13 bytes),
so that:

- a late event for the expired run (a duplicate ``succeeded``, a timer, an outcome) is ignored
  with the reason, not rejected as an unknown run;
- a trigger match for its run key is ignored as for a finished run, and a manual request starts
  the next generation: a run id already in the runs topic is never reused;
- a cross-pipeline subscription to it is answered at once with the outcome ``expired`` (counted
  as failed: what the stage did is no longer known);
- late data arrivals for its run key are ignored.

The run's dedup window leaves with it: a ``run.requested`` redelivered after the retention
starts another generation (within the retention it is a no-op, as before).

Time comes only from events. A finishing run gets ``finished_at`` (the event's time) and goes
into the state's finish-time index; the partition keeps a single sweep timer (``SWEEP_KEY``),
set when the first run finishes, due ``retention`` after it. When it fires it expires, oldest
first, every run that finished ``retention`` or more before the sweep event's time (at most
``SWEEP_LIMIT`` per event, then it fires again at once), and sets itself for the oldest run
left, at least ``min(retention, SWEEP_EVERY)`` later. So a run expires between ``retention``
and ``retention + min(retention, 1 h)`` after it finished, and a partition holds one timer
instead of one per finished run. A run retried or rerun after it finished is no longer finished
(or no longer the same generation): its index entry is stale and skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streamcoord.core._context import Context
from streamcoord.core._state import SWEEP_KEY, RunState, run_id_of, sweep_event
from streamcoord.core._step import SetTimer
from streamcoord.events.models import TimerFiredData

__all__ = ["SWEEP_EVERY", "SWEEP_LIMIT", "expired_reason", "on_finished", "on_sweep"]

#: Runs expired per sweep event: bounds the size of one transaction (a tombstone and a marker
#: per run, and a decision record).
SWEEP_LIMIT = 1000
#: Sweeps are at least this far apart (or ``retention`` when that is shorter).
SWEEP_EVERY = timedelta(hours=1)


def on_finished(ctx: Context, run: RunState) -> None:
    """``run`` just finished: count its retention from now, and make sure a sweep is due."""
    run.finished_at = ctx.now_iso()
    ctx.state.index_finished(run, ctx.now)
    if ctx.state.misc(SWEEP_KEY) is None:
        _arm(ctx, ctx.now + ctx.catalog.retention)


def on_sweep(ctx: Context, data: TimerFiredData) -> None:
    """Expire the runs whose retention has passed, then set the next sweep (or none)."""
    sweep = ctx.state.misc(SWEEP_KEY)
    if sweep is None or sweep["due"] != data.due.isoformat():
        return  # a refire of a sweep that has run already: the one that replaced it will come
    retention = ctx.catalog.retention
    cutoff = ctx.now - retention
    state = ctx.state
    expired = 0
    oldest = state.oldest_finished()
    while oldest is not None and oldest[0] <= cutoff and expired < SWEEP_LIMIT:
        _expire(ctx, oldest[1])
        expired += 1
        oldest = state.oldest_finished()
    if oldest is None:
        state.drop_misc(SWEEP_KEY)
    elif expired == SWEEP_LIMIT:
        _arm(ctx, ctx.now)  # more are due: go on in the next event (its own transaction)
    else:
        _arm(ctx, max(oldest[0] + retention, ctx.now + min(retention, SWEEP_EVERY)))


def expired_reason(ctx: Context, base: str, gen: int) -> str:
    """Why an event about generation ``gen`` of the expired run ``base`` changes nothing."""
    return (
        f"run {run_id_of(base, gen)} finished and left the state"
        f" (retention {ctx.catalog.retention.total_seconds():g} s)"
    )


def _expire(ctx: Context, run: RunState) -> None:
    state = ctx.state
    state.expire_run(run)
    # its subscribers were answered when its stages ended; its arrivals were counted
    state.drop_misc(f"subs/{run.base}")
    state.drop_misc(f"arr/{run.base}")
    ctx.note(
        run.run_id,
        None,
        "expired",
        f"{run.status} at {run.finished_at}; kept"
        f" {ctx.catalog.retention.total_seconds():g} s after it finished",
        [],
    )


def _arm(ctx: Context, due: datetime) -> None:
    state = ctx.state
    event = sweep_event(state.partition, state.partitions, due)
    state.misc_for_update(SWEEP_KEY, {"v": 1, "due": ""})["due"] = event.data.due.isoformat()
    ctx.commands.append(SetTimer(event.data.timer_id, event.data.due, event))
