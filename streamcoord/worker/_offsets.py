"""Which offset of a partition may be committed while triggers finish out of order."""

from __future__ import annotations

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Offsets of one partition: committable up to (not including) the oldest unfinished one.

    A trigger's offset is finished only once its outcome event was acknowledged, so a commit
    never passes a trigger whose outcome could still be lost.
    """

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._next = -1  # one past the highest offset seen; -1 until the first record

    def begin(self, offset: int) -> None:
        """A record was taken for processing."""
        self._pending.add(offset)
        self._next = max(self._next, offset + 1)

    def finish(self, offset: int) -> None:
        """The record's outcome is durable (or it needed no work)."""
        self._pending.discard(offset)

    @property
    def in_flight(self) -> int:
        """How many records of this partition are still being worked on."""
        return len(self._pending)

    def committable(self) -> int | None:
        """The offset to commit (the next to read after a restart), or None when nothing is."""
        if self._pending:
            return min(self._pending)
        return self._next if self._next >= 0 else None
