"""Transactional producer behaviour aiokafka does not expose as a setting."""

from __future__ import annotations

from aiokafka.producer import sender as _sender

__all__ = ["TRANSACTION_RETRY_BACKOFF_MS", "cap_concurrent_transactions_backoff"]

#: How soon a partition's transactional producer retries (CONCURRENT_TRANSACTIONS right after a
#: commit, KIP-890 verification): the default 100 ms would stall a partition for that long.
TRANSACTION_RETRY_BACKOFF_MS = 3


def cap_concurrent_transactions_backoff(seconds: float) -> None:
    """Retry a transaction's first ``AddPartitionsToTxn`` after at most ``seconds``.

    Right after a commit the broker answers ``CONCURRENT_TRANSACTIONS`` until the previous
    transaction's markers are written (a few milliseconds). aiokafka then waits a fixed 20 ms
    whatever ``retry_backoff_ms`` says; the Java client waits ``min(retry.backoff.ms, 20 ms)``.
    A partition that commits back to back (records arrived during the previous commit) paid the
    20 ms on every transaction. This makes aiokafka behave like the Java client; it applies to
    every transactional producer of the process.
    """
    _sender.BACKOFF_OVERRIDE = min(_sender.BACKOFF_OVERRIDE, seconds)
