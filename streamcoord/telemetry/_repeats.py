"""Retry noise, bounded: a failure that repeats is logged when it starts, then summarised.

While the broker is down every Kafka client retries, and aiokafka logs each failed connection
and metadata attempt (one coordinator wrote 125,000 ERROR lines in an outage, 10,500 a second at
peak). :class:`RepeatSummary` is a filter on the log handler that keeps, per *kind* (logger and
message template, whatever the arguments):

- the first record, as is, noting that repeats are summarised ("down");
- at most one line per ``every_s`` after that: the latest message with the number of repeats
  since the previous line and since the first (``repeats`` and ``repeats_total`` in JSON);
- one INFO line once the kind has been quiet for ``quiet_s``: it stopped, after how many
  failures over how long ("up").

It applies to records of the ``aiokafka`` loggers at WARNING or above, and to any record logged
with ``extra={"retrying": True}`` (streamcoord's own retry loops). Everything else passes
untouched. The "up" line comes from a short-lived daemon thread that runs only while some kind is
failing; pass ``ticker=False`` and call :meth:`RepeatSummary.tick` to drive it yourself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RepeatSummary"]

Kind = tuple[str, str]
_DONE = "_streamcoord_summarised"  # set on records this filter already let through


@dataclass
class _Episode:
    """One kind of failure from its first record until it has been quiet for a while."""

    level: int
    first_at: float
    last_at: float
    summarised_at: float
    total: int = 1
    unsummarised: int = 0
    latest: str = ""


class RepeatSummary(logging.Filter):
    """A handler filter that collapses repeated retry failures; see the module docstring."""

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        *,
        every_s: float = 30.0,
        quiet_s: float | None = None,
        loggers: tuple[str, ...] = ("aiokafka",),
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
    ) -> None:
        super().__init__()
        self._emit = emit
        self.every_s = every_s
        self.quiet_s = every_s if quiet_s is None else quiet_s
        self._prefixes = tuple(name + "." for name in loggers)
        self._loggers = loggers
        self._clock = clock
        self._ticker = ticker
        self._episodes: dict[Kind, _Episode] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def applies_to(self, record: logging.LogRecord) -> bool:
        if getattr(record, "retrying", False):
            return True
        name = record.name
        from_client = name in self._loggers or name.startswith(self._prefixes)
        return from_client and record.levelno >= logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False) or not self.applies_to(record):
            return True
        now = self._clock()
        kind = (record.name, str(record.msg))
        ended = None
        with self._lock:
            episode = self._episodes.get(kind)
            started = episode is None or now - episode.last_at >= self.quiet_s
            if started:  # a new episode (the previous one of this kind, if any, was over)
                ended = self._episodes.pop(kind, None)
                self._episodes[kind] = _Episode(record.levelno, now, now, now)
                keep = self._started(record)
            else:
                assert episode is not None
                keep = self._repeated(record, episode, now)
        if ended is not None:
            self._emit(self._recovery(kind, ended))
        if started and self._ticker:
            self._ensure_ticker()
        return keep

    def _started(self, record: logging.LogRecord) -> bool:
        record.msg = f"{record.getMessage()} (repeats summarised every {self.every_s:g}s)"
        record.args = None
        setattr(record, _DONE, True)
        return True

    def _repeated(self, record: logging.LogRecord, episode: _Episode, now: float) -> bool:
        episode.total += 1
        episode.unsummarised += 1
        episode.last_at = now
        if now - episode.summarised_at < self.every_s:
            episode.latest = record.getMessage()
            return False
        record.msg = (
            f"{record.getMessage()} (x{episode.unsummarised} in the last "
            f"{now - episode.summarised_at:.0f}s, {episode.total} since the first "
            f"{now - episode.first_at:.0f}s ago)"
        )
        record.args = None
        record.exc_info = None  # one line: the first record of the episode had the traceback
        record.exc_text = None
        record.repeats = episode.unsummarised
        record.repeats_total = episode.total
        setattr(record, _DONE, True)
        episode.unsummarised = 0
        episode.summarised_at = now
        return True

    def tick(self) -> int:
        """End the episodes quiet for ``quiet_s``, logging each; returns how many still run."""
        now = self._clock()
        with self._lock:
            quiet = [k for k, e in self._episodes.items() if now - e.last_at >= self.quiet_s]
            ended = [(kind, self._episodes.pop(kind)) for kind in quiet]
            running = len(self._episodes)
        for kind, episode in ended:
            self._emit(self._recovery(kind, episode))
        return running

    def close(self) -> None:
        """Stop the ticker thread (the episodes still running end unannounced)."""
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _recovery(self, kind: Kind, episode: _Episode) -> logging.LogRecord:
        name, template = kind
        seconds = episode.last_at - episode.first_at
        record = logging.LogRecord(
            name, logging.INFO, "", 0,
            "recovered: %r stopped after %d failure(s) over %.0fs%s", None, None,
        )  # fmt: skip
        latest = f"; the last: {episode.latest}" if episode.latest else ""
        record.args = (template, episode.total, seconds, latest)
        record.repeats_total = episode.total
        setattr(record, _DONE, True)
        return record

    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(
                    target=self._tick_while_failing, name="log repeat summary", daemon=True
                )
                self._thread.start()

    def _tick_while_failing(self) -> None:
        while not self._stopped.wait(max(self.quiet_s / 2, 0.05)):
            self.tick()
            with self._lock:  # decided under the lock, so a new episode restarts the thread
                if not self._episodes:
                    self._thread = None
                    return
