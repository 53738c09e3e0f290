"""The hook through which telemetry observes the batch path, and one that observes nothing.

The coordinator is given a :class:`BatchObserver` and hands it to its partition processors;
they call it at fixed points of a batch's walk, and nothing else of telemetry is in the loop.
The OpenTelemetry implementation (metrics and traces) is
:class:`~streamcoord.runtime.telemetry.CoordinatorTelemetry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from streamcoord.events.models import CloudEvent
from streamcoord.kafka.ports import Record
from streamcoord.runtime.batch import BatchOutcome

__all__ = ["NO_OBSERVER", "BatchObserver", "NoObserver"]

_NOTHING: AbstractContextManager[object] = nullcontext()


class BatchObserver(Protocol):
    """What telemetry sees of the batch path. Calls are cheap and never raise into it."""

    def deciding(self, record: Record, event: CloudEvent) -> AbstractContextManager[object]:
        """Enclose the core's decision of ``event`` (read from ``record``): a span, say."""
        ...

    def committed(self, outcome: BatchOutcome) -> None:
        """A batch's transaction committed; ``outcome`` says what the batch did."""
        ...

    def restored(self, partition: int, seconds: float) -> None:
        """A newly assigned partition was restored from the changelog in ``seconds``."""
        ...

    def sampling_due(self) -> bool:
        """Whether :meth:`sample` wants a fresh look (it needs a scan of the state)."""
        ...

    def sample(self, active_runs: int, lag: Mapping[int, int]) -> None:
        """The member's active and queued runs, and its records behind per owned partition."""
        ...


class NoObserver:
    """Observes nothing (processors built without a coordinator, tests)."""

    def deciding(self, record: Record, event: CloudEvent) -> AbstractContextManager[object]:
        return _NOTHING

    def committed(self, outcome: BatchOutcome) -> None:
        pass

    def restored(self, partition: int, seconds: float) -> None:
        pass

    def sampling_due(self) -> bool:
        return False

    def sample(self, active_runs: int, lag: Mapping[int, int]) -> None:
        pass


NO_OBSERVER = NoObserver()
