"""Which handler runs a trigger: by ``pipeline.stage``, by stage name, or a catch-all.

Handlers are async or sync callables taking a :class:`StageContext` and returning the stage's
outputs (a JSON object), ``None`` (no outputs) or :data:`DEFERRED` (a callback decides later).
The class API is the same thing with a name: subclass :class:`StageHandler`.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Final, TypeAlias

from pydantic import JsonValue

from streamcoord.errors import ConfigError
from streamcoord.events.models import StageTrigger
from streamcoord.worker._context import StageContext

__all__ = [
    "DEFERRED",
    "AsyncHandler",
    "Deferred",
    "Handler",
    "HandlerRegistry",
    "Outputs",
    "StageHandler",
    "SyncHandler",
    "is_async_handler",
]


class Deferred(enum.Enum):
    """Marker type of :data:`DEFERRED`."""

    DEFERRED = "deferred"


#: Returned by a handler whose outcome arrives later (e.g. a webhook answered 202 and will post
#: ``streamcoord.stage.succeeded`` or ``failed`` to the ingest endpoint itself).
DEFERRED: Final = Deferred.DEFERRED

Outputs: TypeAlias = Mapping[str, JsonValue] | Deferred | None
AsyncHandler: TypeAlias = Callable[[StageContext], Awaitable[Outputs]]
SyncHandler: TypeAlias = Callable[[StageContext], Outputs]
Handler: TypeAlias = AsyncHandler | SyncHandler


class StageHandler:
    """Class API: set ``stage`` (``"pipeline.stage"`` or ``"stage"``; None for every trigger
    this worker receives) and implement :meth:`run` (async or sync)."""

    stage: ClassVar[str | None] = None

    def run(self, ctx: StageContext) -> Outputs | Awaitable[Outputs]:
        """Do the work of one attempt; raise to fail it (:class:`NonRetryableError` for good)."""
        raise NotImplementedError


def is_async_handler(handler: Handler | StageHandler) -> bool:
    """Whether calling the handler gives a coroutine (run on the loop, not in a thread)."""
    target: Any = handler.run if isinstance(handler, StageHandler) else handler
    call = getattr(target, "__call__", None)  # noqa: B004  # callable objects count too
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call)


class HandlerRegistry:
    """Handlers keyed by ``pipeline.stage`` or ``stage``, plus an optional catch-all."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._fallback: Handler | None = None

    def add(self, stage: str | None, handler: Handler) -> None:
        """Register ``handler`` for ``stage`` (None: every trigger nothing else claims)."""
        if stage is None:
            if self._fallback is not None:
                raise ConfigError("a catch-all handler is already registered on this worker")
            self._fallback = handler
            return
        if stage in self._handlers:
            raise ConfigError(
                f"stage {stage!r} already has a handler on this worker",
                hint="register one handler per stage",
            )
        self._handlers[stage] = handler

    def add_class(self, handler: StageHandler) -> None:
        """Register an instance of a :class:`StageHandler` subclass under its ``stage``."""
        self.add(handler.stage, handler.run)  # type: ignore[arg-type]  # run is async or sync

    def resolve(self, trigger: StageTrigger) -> Handler | None:
        """The handler for this trigger: ``pipeline.stage`` first, then ``stage``, then the
        catch-all; None when this worker has none."""
        data = trigger.data
        return (
            self._handlers.get(f"{data.pipeline}.{data.stage}")
            or self._handlers.get(data.stage)
            or self._fallback
        )

    def __len__(self) -> int:
        return len(self._handlers) + (self._fallback is not None)
