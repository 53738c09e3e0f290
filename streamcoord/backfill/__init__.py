"""Backfills: one run per partition key of a range, at most N at once, driven from the edge.

:func:`partition_keys` lists a range's keys (daily ``YYYY-MM-DD``, hourly ``YYYY-MM-DDTHH``);
:class:`BackfillPlan` decides, from the run records it is shown, which keys to request next so
that at most ``max_active`` of the backfill's runs are unfinished; :func:`run_backfill` does the
I/O: it requests runs with ``streamcoord.run.requested`` and follows ``streamcoord.runs``.

Run ids are ``<pipeline>/<key>``, so a repeated backfill requests nothing whose run exists: it
waits for the unfinished ones and counts the finished ones as done.
"""

from streamcoord.backfill._keys import Grain, order_keys, partition_keys
from streamcoord.backfill._plan import BackfillPlan, Progress
from streamcoord.backfill._runner import cancel_backfill, request_event, run_backfill

__all__ = [
    "BackfillPlan",
    "Grain",
    "Progress",
    "cancel_backfill",
    "order_keys",
    "partition_keys",
    "request_event",
    "run_backfill",
]
