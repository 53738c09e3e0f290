"""Quotas: at most N runs of a pipeline start in any sliding window.

A pipeline with a quota is limited like one with ``max_active_runs``: its new runs start
``queued`` and ask the owner of ``active/<pipeline>`` for a slot (see :mod:`._limits`, which
calls in here). The owner keeps the start times of the pipeline's runs in its books
(``pipe/<pipeline>``: ``starts``, microseconds since the epoch, the latest ``max_runs`` within
the longest window) and
answers a request by the quotas first:

- an enforced quota whose window holds ``max_runs`` starts is *full*: with ``over_quota: reject``
  the run is denied (skipped, and the event that asked for it dead-lettered with the policy's
  name); with ``queue`` it waits in the books' queue, behind any run already waiting for a quota;
- the queue moves, in order, when the window frees: a ``quota`` timer, owned by the owner's
  books (``quota_due``), fires when the oldest start counted leaves the window;
- a quota with ``enforce: false`` never holds a run back; a start it would have refused is
  recorded (``would_queue`` / ``would_reject``) and counted.

Windows are measured with the times ``decide`` is given (the events' own times), never a clock,
so a replay reaches the same verdicts. A forced slot (a manual retry re-activating a run, a
hand-over) is no new start and is not counted.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._context import Context
from streamcoord.core._policies import CompiledQuota
from streamcoord.core._state import QUOTA_TIMER, quota_timer_event
from streamcoord.core._step import CancelTimer, SetTimer, Violation
from streamcoord.events.partitioning import run_base

__all__ = [
    "QUEUED_CODE",
    "REJECTED_CODE",
    "count",
    "full",
    "held_reason",
    "iso",
    "limited",
    "queue",
    "quotas",
    "rearm",
    "reason",
    "room",
    "timer_pipeline",
]

#: Violation codes (metrics, dead letters) of a run a quota held back or refused.
QUEUED_CODE = "quota_queued"
REJECTED_CODE = "quota_exceeded"
_WOULD = {"queue": "would_queue", "reject": "would_reject"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def quotas(ctx: Context, cp: CompiledPipeline) -> tuple[CompiledQuota, ...]:
    """The quotas of ``cp`` in the partition's spec version."""
    return ctx.catalog.policies.quotas.get(cp.name, ())


def limited(ctx: Context, cp: CompiledPipeline) -> bool:
    """Whether runs of ``cp`` ask the owner of ``active/<pipeline>`` for a slot."""
    return cp.max_active_runs is not None or cp.name in ctx.catalog.policies.quotas


def reason(cp: CompiledPipeline, quota: CompiledQuota) -> str:
    runs = "1 run" if quota.max_runs == 1 else f"{quota.max_runs} runs"
    return f"quota {quota.name}: {runs} of {cp.name} per {quota.window_text} reached"


def _starts(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any]) -> list[int]:
    """The starts the windows still count (older ones dropped from the books)."""
    starts: list[int] = pipe.setdefault("starts", [])
    found = quotas(ctx, cp)
    longest = max((q.window for q in found), default=timedelta(0))
    cut = bisect.bisect_right(starts, _micros(ctx.now - longest))
    if cut:
        del starts[:cut]
    return starts


def _in_window(ctx: Context, starts: list[int], quota: CompiledQuota) -> list[int]:
    """The starts within ``quota``'s window ending now (a start counts for one window)."""
    return starts[bisect.bisect_right(starts, _micros(ctx.now - quota.window)) :]


def _micros(when: datetime) -> int:
    """A time as the books keep it: microseconds since the epoch (exact, compact, ordered)."""
    return (when - _EPOCH) // _MICROSECOND


def iso(when: datetime) -> str:
    """A timer's due time as the books name it: ISO in UTC."""
    return when.astimezone(UTC).isoformat()


def full(
    ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any], *, enforced: bool = True
) -> list[CompiledQuota]:
    """The quotas (enforced ones, or dry runs) whose window has no room for another start."""
    found = quotas(ctx, cp)
    if not found:  # the books of a pipeline without quotas stay as they were
        return []
    starts = _starts(ctx, cp, pipe)
    return [
        q for q in found if q.enforce == enforced and len(_in_window(ctx, starts, q)) >= q.max_runs
    ]


def room(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any]) -> bool:
    """Whether every enforced quota lets one more run start now."""
    return not full(ctx, cp, pipe)


def count(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any], run_id: str) -> None:
    """Count a run starting now; a dry-run quota it exceeds records what it would have done."""
    if not quotas(ctx, cp):
        return
    for quota in full(ctx, cp, pipe, enforced=False):
        why = reason(cp, quota)
        code = REJECTED_CODE if quota.over_quota == "reject" else QUEUED_CODE
        ctx.violations.append(Violation(quota.name, code, why, False))
        ctx.note(run_id, None, _WOULD[quota.over_quota], why, [ctx.event.id])
    starts = pipe["starts"]
    bisect.insort(starts, _micros(ctx.now))
    # whether a window holds max_runs starts is told by the latest max_runs starts alone
    del starts[: -max(q.max_runs for q in quotas(ctx, cp))]


def held_reason(pipe: dict[str, Any] | None, run_id: str) -> str | None:
    """Why the owner's queue holds ``run_id`` back when a quota does (for explain)."""
    books = pipe or {}
    held = books.get("quota_held")
    return held if isinstance(held, str) and run_id in books.get("waiting", ()) else None


def rearm(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any]) -> CompiledQuota | None:
    """After the queue moved: when runs still wait and an enforced quota is full, note it as
    the queue's hold and set the timer for when every full quota has room again; else clear
    both. Returns the quota holding the queue."""
    blocking = full(ctx, cp, pipe) if pipe["waiting"] and quotas(ctx, cp) else []
    due: datetime | None = None
    if blocking:
        starts = pipe["starts"]
        due = max(
            _EPOCH + _in_window(ctx, starts, q)[0] * _MICROSECOND + q.window for q in blocking
        )
    text = None if due is None else iso(due)
    before = pipe.get("quota_due")
    if before != text:
        if before is not None:
            ctx.commands.append(CancelTimer(quota_timer_event(cp.name, before).data.timer_id))
        if text is not None:
            event = quota_timer_event(cp.name, text)
            ctx.commands.append(SetTimer(event.data.timer_id, event.data.due, event))
        pipe["quota_due"] = text
    pipe["quota_held"] = (
        None if not blocking else f"{reason(cp, blocking[0])}; the next start frees at {text}"
    )
    return blocking[0] if blocking else None


def queue(
    ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any], run_id: str, quota: CompiledQuota
) -> None:
    """Queue ``run_id`` behind the runs ``quota`` (full) holds back; recorded on the run."""
    pipe["waiting"].append(run_id)
    rearm(ctx, cp, pipe)
    why = pipe["quota_held"]
    ctx.violations.append(Violation(quota.name, QUEUED_CODE, why, True))
    if not ctx.owns(run_base(run_id)):  # else the run's own queued decision names the quota
        ctx.note(run_id, None, "queued", why, [ctx.event.id])


def timer_pipeline(timer_id: str) -> str:
    """The pipeline a ``quota`` timer's id names."""
    return timer_id.removeprefix(f"{QUOTA_TIMER}|").rsplit("@", 1)[0]
