"""Backfills hosted by a long-running process (``streamcoord serve``): started, paused, resumed
and cancelled as a group, with their progress, by id.

Each backfill has one task at a time: while ``running`` it requests runs (at most
``max_active`` unfinished); while ``paused`` or ``cancelled`` it only follows the runs already
started until they end, so the progress stays true. The throttle is this process's, as in the
CLI: if the process stops, requested runs go on and starting the same backfill again (same id)
requests only the keys whose run does not exist yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from streamcoord.backfill._plan import BackfillPlan, Progress
from streamcoord.backfill._runner import cancel_backfill, run_backfill
from streamcoord.errors import StreamcoordError
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["Backfill", "BackfillManager", "BackfillState", "UnknownBackfillError", "backfill_id"]

#: ``running`` requests runs; ``paused`` and ``cancelled`` request none; ``succeeded``: every
#: run finished (``failed``: some did not succeed); ``stalled``: nothing moved for too long.
BackfillState = Literal["running", "paused", "cancelled", "succeeded", "failed", "stalled"]


class UnknownBackfillError(StreamcoordError):
    """No backfill with this id is hosted here."""


def backfill_id(pipeline: str, keys: list[str]) -> str:
    """The same pipeline and set of keys: the same backfill, whatever the order or the limit."""
    digest = hashlib.sha256("\n".join([pipeline, *sorted(set(keys))]).encode()).hexdigest()
    return f"{pipeline}-{digest[:12]}"


@dataclass
class Backfill:
    """One backfill as it is now."""

    id: str
    pipeline: str
    keys: list[str]  # in the order they are requested
    max_active: int
    params: dict[str, Any]
    principal: str | None
    created_at: datetime
    state: BackfillState = "running"
    progress: Progress = field(default_factory=lambda: Progress(0, 0, 0, 0, 0, 0))
    message: str = ""
    cancelled_runs: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)


class BackfillManager:
    """The backfills of this process; :meth:`close` stops following them (their runs go on)."""

    def __init__(
        self,
        settings: KafkaSettings,
        events_topic: str,
        runs_topic: str,
        *,
        idle_timeout_s: float = 3600.0,
    ) -> None:
        """``idle_timeout_s``: a backfill none of whose runs moved for this long is ``stalled``
        (requests the coordinator refused, or stages that run longer: resume it)."""
        self._settings = settings
        self._events = events_topic
        self._runs = runs_topic
        self._idle_timeout_s = idle_timeout_s
        self._backfills: dict[str, Backfill] = {}
        self._changed = asyncio.Event()  # set and replaced on every change

    def all(self) -> list[Backfill]:
        return sorted(self._backfills.values(), key=lambda b: (b.created_at, b.id))

    def get(self, backfill_id_: str) -> Backfill:
        try:
            return self._backfills[backfill_id_]
        except KeyError:
            raise UnknownBackfillError(
                f"no backfill {backfill_id_!r} is hosted here",
                hint="list them with GET /api/v1/backfills; a restarted server forgets them: "
                "start the same backfill again (nothing runs twice)",
            ) from None

    def start(
        self,
        pipeline: str,
        keys: list[str],
        max_active: int,
        *,
        params: Mapping[str, Any],
        principal: str | None,
        now: datetime,
    ) -> Backfill:
        """Start (or, when it exists and is not running, restart) the backfill of these keys."""
        ident = backfill_id(pipeline, keys)
        backfill = self._backfills.get(ident)
        if backfill is not None and backfill.state == "running":
            return backfill
        if backfill is None:
            backfill = Backfill(
                ident, pipeline, keys, max_active, dict(params), principal, created_at=now
            )
            self._backfills[ident] = backfill
        else:
            backfill.keys, backfill.max_active, backfill.params = keys, max_active, dict(params)
            backfill.principal = principal
        self._follow(backfill, "running")
        return backfill

    def pause(self, ident: str) -> Backfill:
        """Request no more runs; those started go on (and are followed)."""
        backfill = self.get(ident)
        if backfill.state == "running":
            self._follow(backfill, "paused")
        return backfill

    def resume(self, ident: str) -> Backfill:
        """Request runs again where the backfill was (a cancelled one too: its cancelled runs
        stay cancelled, keys never started are requested)."""
        backfill = self.get(ident)
        if backfill.state != "running":
            self._follow(backfill, "running")
        return backfill

    async def cancel(self, ident: str) -> Backfill:
        """Request no more runs and cancel those of the backfill that have not finished."""
        backfill = self.get(ident)
        await self._stop(backfill)
        plan = self._plan(backfill, requesting=False)
        backfill.cancelled_runs = await cancel_backfill(
            self._settings, self._events, self._runs, plan, backfill.principal
        )
        self._follow(backfill, "cancelled")
        return backfill

    async def wait(self, ident: str, *states: BackfillState, timeout_s: float) -> Backfill:
        """The backfill once it is in one of ``states`` and its runs settled (for tests and
        scripts); raises ``TimeoutError``."""
        backfill = self.get(ident)

        def reached() -> bool:
            return backfill.state in states and (backfill._task is None or backfill._task.done())

        async with asyncio.timeout(timeout_s):
            while not reached():
                await self._changed.wait()
        return backfill

    async def close(self) -> None:
        for backfill in self._backfills.values():
            await self._stop(backfill)

    def _plan(self, backfill: Backfill, *, requesting: bool) -> BackfillPlan:
        return BackfillPlan(
            backfill.pipeline, backfill.keys, backfill.max_active, requesting=requesting
        )

    def _follow(self, backfill: Backfill, state: BackfillState) -> None:
        previous = backfill._task
        if previous is not None:
            previous.cancel()
        backfill.state, backfill.message = state, ""
        plan = self._plan(backfill, requesting=state == "running")
        task = asyncio.create_task(
            self._drive(backfill, plan, previous), name=f"backfill {backfill.id}"
        )
        task.add_done_callback(lambda _: self._notify())
        backfill._task = task
        self._notify()

    async def _drive(
        self, backfill: Backfill, plan: BackfillPlan, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:  # one task at a time requests for a backfill
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        running = plan.requesting

        def show(progress: Progress) -> None:
            backfill.progress = progress
            self._notify()

        try:
            final = await run_backfill(
                self._settings, self._events, self._runs, plan, params=backfill.params,
                principal=backfill.principal, on_progress=show,
                idle_timeout_s=self._idle_timeout_s,
            )  # fmt: skip
        except StreamcoordError as error:  # nothing moved for too long, a topic missing
            backfill.state, backfill.message = "stalled", str(error)
        except Exception as error:  # kept on the backfill for its caller to see
            backfill.state, backfill.message = "stalled", f"{type(error).__name__}: {error}"
        else:
            if running:
                backfill.state = "succeeded" if final.succeeded == final.total else "failed"

    async def _stop(self, backfill: Backfill) -> None:
        task = backfill._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
