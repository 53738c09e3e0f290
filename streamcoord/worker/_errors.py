"""How a handler says that an attempt failed, and whether retrying may help."""

from __future__ import annotations

from streamcoord.errors import StreamcoordError

__all__ = ["NonRetryableError", "StageError", "retryable"]


class StageError(StreamcoordError):
    """A stage attempt failed; ``retryable`` (default True) lets the stage's retry policy apply.

    Any other exception from a handler counts as retryable too.
    """

    retryable = True


class NonRetryableError(StageError):
    """A failure retrying cannot fix (bad input, missing config): the stage fails for good."""

    retryable = False


def retryable(error: BaseException) -> bool:
    """Whether a failed attempt may be retried: False only when the error says so."""
    return bool(getattr(error, "retryable", True))
