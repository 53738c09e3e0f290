"""What became of an operator's command: pure rules over what the coordinator wrote back.

A command is *decided* once the coordinator's changelog position has passed the command's
admitted copy on the internal topic (that position is committed in the same transaction as the
decision's outputs: dead letters, run records). It was *rejected* if a dead letter names it as
its origin. A run command then waits for the run record that settles it; a pipeline control is
done once decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from streamcoord.core._state import RUN_TERMINAL
from streamcoord.events.models import RunRecordData

__all__ = [
    "EXIT_NOT_SUCCEEDED",
    "EXIT_REJECTED",
    "EXIT_TIMEOUT",
    "CancelWatch",
    "ControlWatch",
    "Outcome",
    "RequestWatch",
    "RetryWatch",
    "Watch",
]

#: Exit codes of ``--wait`` (0 is success; 1 is also any ``StreamcoordError``, 2 a usage error).
EXIT_NOT_SUCCEEDED: Final = 1
EXIT_REJECTED: Final = 3
EXIT_TIMEOUT: Final = 4


@dataclass(frozen=True)
class Outcome:
    """How a command ended: ``status`` is a run status, ``rejected``, ``timeout``, or the
    pipeline control's ``paused``/``resumed``."""

    status: str
    ok: bool
    run_id: str | None = None
    reason: str | None = None  # a dead letter's stable code, e.g. "unknown_run"
    message: str = ""

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        return {"rejected": EXIT_REJECTED, "timeout": EXIT_TIMEOUT}.get(
            self.status, EXIT_NOT_SUCCEEDED
        )


class Watch:
    """Waits for the run record that settles a command; the base settles on the decision."""

    def on_decided(self) -> Outcome | None:
        """The coordinator took the command (no dead letter): done, or wait for a run record."""
        return None

    def on_run(self, record: RunRecordData) -> Outcome | None:
        """A run record written after the command was sent."""
        return None


@dataclass
class ControlWatch(Watch):
    """``pause``/``resume``: done when the coordinator has taken the command."""

    done: str

    def on_decided(self) -> Outcome | None:
        return Outcome(self.done, ok=True)


@dataclass
class RequestWatch(Watch):
    """``trigger``: the run the request created (or joined) of ``pipeline/key``, to its end."""

    base: str
    event_id: str
    run_id: str | None = field(default=None, init=False)

    def on_run(self, record: RunRecordData) -> Outcome | None:
        if record.run_id.split("#", 1)[0] != self.base or self.event_id not in record.caused_by:
            return None
        self.run_id = record.run_id
        return _finished(record)


@dataclass
class CancelWatch(Watch):
    """``cancel``: the run's end, which should be ``cancelled``."""

    run_id: str
    before: RunRecordData | None  # the newest record when the command was sent

    def on_decided(self) -> Outcome | None:
        # A run that had already ended is left as it was: the coordinator writes no record.
        if self.before is not None and self.before.status in RUN_TERMINAL:
            return _settled(self.before, "cancelled", f"the run had already {self.before.status}")
        return None

    def on_run(self, record: RunRecordData) -> Outcome | None:
        if record.run_id != self.run_id or record.status not in RUN_TERMINAL:
            return None
        return _settled(record, "cancelled", "")


@dataclass
class RetryWatch(Watch):
    """``retry``: the run's end after the retried stage's next attempt."""

    run_id: str
    stage: str
    attempts_before: int

    def on_run(self, record: RunRecordData) -> Outcome | None:
        if record.run_id != self.run_id:
            return None
        if record.attempts.get(self.stage, 0) <= self.attempts_before:
            return None  # from before the retry was decided
        return _finished(record)


def _finished(record: RunRecordData) -> Outcome | None:
    if record.status not in RUN_TERMINAL:
        return None
    return _settled(record, "succeeded", "")


def _settled(record: RunRecordData, wanted: str, message: str) -> Outcome:
    return Outcome(record.status, record.status == wanted, record.run_id, message=message)
