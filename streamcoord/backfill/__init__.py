"""Backfills: one run per partition key of a range, at most N at once, driven from the edge.

:func:`partition_keys` lists a range's keys (daily ``YYYY-MM-DD``, hourly ``YYYY-MM-DDTHH``);
:class:`BackfillPlan` decides, from the run records it is shown, which keys to request next so
that at most ``max_active`` of the backfill's runs are unfinished; :func:`run_backfill` does the
I/O: it requests runs with ``streamcoord.run.requested`` and follows ``streamcoord.runs``;
:class:`BackfillManager` hosts backfills in a server (pause, resume, cancel, progress by id).

Run ids are ``<pipeline>/<key>``, so a repeated backfill requests nothing whose run exists: it
waits for the unfinished ones and counts the finished ones as done.
"""

from streamcoord.backfill._keys import MAX_KEYS, Grain, order_keys, partition_keys
from streamcoord.backfill._manager import (
    Backfill,
    BackfillManager,
    BackfillState,
    UnknownBackfillError,
    backfill_id,
)
from streamcoord.backfill._plan import BackfillPlan, Progress
from streamcoord.backfill._runner import (
    backfill_progress,
    cancel_backfill,
    request_event,
    run_backfill,
)

__all__ = [
    "MAX_KEYS",
    "Backfill",
    "BackfillManager",
    "BackfillPlan",
    "BackfillState",
    "Grain",
    "Progress",
    "UnknownBackfillError",
    "backfill_id",
    "backfill_progress",
    "cancel_backfill",
    "order_keys",
    "partition_keys",
    "request_event",
    "run_backfill",
]
