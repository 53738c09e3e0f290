"""Process-wide settings a coordinator process wants, applied by whoever owns the process."""

from __future__ import annotations

import gc

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "tune_garbage_collector"]

#: Allocations between two collections of the youngest generation (CPython's default is 700).
YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect cyclic garbage far less often than CPython's defaults.

    Deciding an event allocates hundreds of short-lived objects (models, dicts) that reference
    counting frees on its own, while the restored state keeps hundreds of thousands of long-lived
    ones. With the default thresholds the collector runs every 700 allocations and keeps walking
    that state: measured on the benchmark's drain, 5.6-5.8k -> 7.5-8.5k events/s.
    """
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 100)
