"""Which keys of a backfill to request next: at most ``max_active`` unfinished runs at a time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BackfillPlan", "Progress"]

FINISHED = frozenset({"succeeded", "failed", "cancelled", "skipped"})


@dataclass(frozen=True)
class Progress:
    total: int  # planned: the backfill's keys
    requested: int  # by this backfill (runs that existed before are not requested again)
    active: int  # started and not finished
    succeeded: int
    failed: int  # failed or skipped
    peak_active: int
    started: int = 0  # keys whose run exists (requested by this backfill or before)
    cancelled: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        return self.finished == self.total


class BackfillPlan:
    """The state of one backfill as the run records show it; no I/O and no clock.

    ``keys`` in the order to request them. Show it every run record of the pipeline
    (:meth:`observe`); :meth:`take_next` names the keys to request now.
    """

    def __init__(
        self, pipeline: str, keys: list[str], max_active: int, *, requesting: bool = True
    ) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.pipeline = pipeline
        self.keys = keys
        self.max_active = max_active
        self._waiting = list(reversed(keys))  # popped from the end: the first key first
        self._status: dict[str, str] = {}  # key -> newest status of its run
        self._requested: set[str] = set()
        self._peak = 0
        self._mine = set(keys)
        #: False: a paused or cancelled backfill, only watched until its started runs end.
        self.requesting = requesting

    def run_id(self, key: str) -> str:
        return f"{self.pipeline}/{key}"

    def observe(self, run_id: str, status: str) -> None:
        """A run record: runs of this backfill's keys (their first generation) count."""
        pipeline, _, key = run_id.partition("/")
        if pipeline == self.pipeline and key in self._mine:
            self._status[key] = status
            self._peak = max(self._peak, self._active())

    def take_next(self) -> list[str]:
        """The keys to request now (and count as requested): while fewer than ``max_active``
        runs are unfinished, the next keys whose run does not exist yet."""
        out: list[str] = []
        while self.requesting and self._waiting and self._active() + len(out) < self.max_active:
            key = self._waiting.pop()
            if key in self._status:  # the run exists: wait for it, request nothing
                continue
            out.append(key)
        for key in out:
            self._requested.add(key)
            self._status[key] = "requested"
        self._peak = max(self._peak, self._active())
        return out

    def unfinished(self) -> list[str]:
        """Run ids of this backfill's runs that exist and have not finished."""
        return [self.run_id(k) for k, s in self._status.items() if s not in FINISHED]

    def settled(self) -> bool:
        """Nothing more will happen: every key finished, or (not requesting) no run is active."""
        return self.progress().done or (not self.requesting and self._active() == 0)

    def progress(self) -> Progress:
        statuses = list(self._status.values())
        return Progress(
            total=len(self.keys),
            requested=len(self._requested),
            active=self._active(),
            succeeded=statuses.count("succeeded"),
            failed=statuses.count("failed") + statuses.count("skipped"),
            peak_active=self._peak,
            started=len(statuses),
            cancelled=statuses.count("cancelled"),
        )

    def _active(self) -> int:
        return sum(s not in FINISHED for s in self._status.values())
