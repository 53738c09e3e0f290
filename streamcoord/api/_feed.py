"""Run and stage changes for Server-Sent Events, read from the store.

One task per server polls the store's most recently updated runs (twice a second, only while
someone listens) and fans each change out to the listeners' queues; a listener too slow to keep
up with ``queue_size`` changes is dropped (its stream ends; the client reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from streamcoord.api._schemas import StreamEvent
from streamcoord.readmodel import RunDetail, RunQuery, Store

__all__ = ["ChangeFeed", "Listener"]

log = logging.getLogger(__name__)

_PAGES = 10  # at most this many pages of changed runs per poll
_PAGE = 200


@dataclass(eq=False)
class Listener:
    pipeline: str | None
    run_id: str | None
    queue: asyncio.Queue[StreamEvent | None] = field(default_factory=lambda: asyncio.Queue(1000))

    def wants(self, event: StreamEvent) -> bool:
        return (self.pipeline is None or event.pipeline == self.pipeline) and (
            self.run_id is None or event.run_id == self.run_id
        )


@dataclass(frozen=True)
class _Seen:
    status: str
    updated_at: object
    stages: dict[str, tuple[str, int]]  # stage -> (status, attempts)


class ChangeFeed:
    """``async with feed.listen(pipeline, run_id) as queue``; ``run(stop)`` drives it."""

    def __init__(self, store: Store, *, interval_s: float = 0.5, capacity: int = 50_000) -> None:
        self.store = store
        self.interval_s = interval_s
        self._capacity = capacity
        self._listeners: set[Listener] = set()
        self._seen: OrderedDict[str, _Seen] | None = None  # None: take a baseline first
        self._closed = False

    @contextlib.asynccontextmanager
    async def listen(
        self, pipeline: str | None, run_id: str | None
    ) -> AsyncIterator[asyncio.Queue[StreamEvent | None]]:
        listener = Listener(pipeline, run_id)
        self._listeners.add(listener)
        try:
            yield listener.queue
        finally:
            self._listeners.discard(listener)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed = True
        for listener in self._listeners:
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._listeners:
                try:
                    events = await asyncio.to_thread(self._poll)
                except Exception:  # a store error must not end the feed; say so and go on
                    log.exception("change feed: reading the store failed")
                    events = []
                self._publish(events)
            else:
                self._seen = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    def _publish(self, events: list[StreamEvent]) -> None:
        for listener in list(self._listeners):
            for event in events:
                if not listener.wants(event):
                    continue
                try:
                    listener.queue.put_nowait(event)
                except asyncio.QueueFull:
                    self._listeners.discard(listener)  # too slow: end its stream
                    with contextlib.suppress(asyncio.QueueEmpty):
                        listener.queue.get_nowait()
                    listener.queue.put_nowait(None)
                    break

    def _poll(self) -> list[StreamEvent]:
        baseline = self._seen is None
        seen = self._seen if self._seen is not None else OrderedDict()
        events: list[StreamEvent] = []
        cursor = None
        for _ in range(_PAGES):
            page = self.store.list_runs(
                RunQuery(sort="updated_at", order="desc", limit=_PAGE, cursor=cursor)
            )
            fresh = [r for r in page.items if _key(seen.get(r.run_id)) != (r.status, r.updated_at)]
            for summary in fresh:
                detail = self.store.get_run(summary.run_id)
                if detail is not None:
                    events += self._changes(seen, detail, emit=not baseline)
            if baseline or len(fresh) < len(page.items) or page.next_cursor is None:
                break
            cursor = page.next_cursor
        while len(seen) > self._capacity:
            seen.popitem(last=False)
        self._seen = seen
        return events

    def _changes(
        self, seen: OrderedDict[str, _Seen], run: RunDetail, *, emit: bool
    ) -> list[StreamEvent]:
        before = seen.pop(run.run_id, None)
        stages = {s.name: (s.status, len(s.attempts)) for s in run.stages}
        seen[run.run_id] = _Seen(run.status, run.updated_at, stages)
        if not emit:
            return []
        events = []  # stages first: a run ends after its stages
        for name, (status, attempts) in stages.items():
            if before is not None and before.stages.get(name) == (status, attempts):
                continue
            events.append(StreamEvent(
                kind="stage", run_id=run.run_id, pipeline=run.pipeline, status=status,
                stage=name, attempt=attempts or None, at=run.updated_at,
            ))  # fmt: skip
        if before is None or before.status != run.status:
            events.append(StreamEvent(kind="run", run_id=run.run_id, pipeline=run.pipeline,
                                      status=run.status, at=run.updated_at))  # fmt: skip
        return events


def _key(seen: _Seen | None) -> tuple[str, object] | None:
    return None if seen is None else (seen.status, seen.updated_at)
