"""Retry delays: exponential backoff with jitter derived from the run, stage and attempt."""

from __future__ import annotations

import hashlib

from streamcoord.pipelines.models import Backoff

__all__ = ["retry_delay"]


def retry_delay(backoff: Backoff, run_id: str, stage: str, attempt: int) -> float:
    """Seconds to wait before the attempt after ``attempt``; the same inputs give the same delay.

    The jitter spreads retries of many runs apart without randomness: a hash of
    ``(run_id, stage, attempt)`` picks a point in ``delay * [1 - jitter, 1 + jitter]``.
    """
    delay = min(backoff.max_seconds, backoff.initial_seconds * backoff.multiplier ** (attempt - 1))
    digest = hashlib.blake2b(f"{run_id}|{stage}|{attempt}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2**64
    return min(backoff.max_seconds, delay * (1 + backoff.jitter * (2 * unit - 1)))
