"""What the endpoints use: the read model, the specs, the command path and the tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from streamcoord.api._specs import SpecViews
from streamcoord.auth import Principal, TokenRegistry
from streamcoord.backfill import BackfillManager
from streamcoord.control import CommandTracker, TrackedCommand
from streamcoord.core import Explanation
from streamcoord.emit import Emitter
from streamcoord.events.models import CloudEvent
from streamcoord.readmodel import Store

__all__ = ["DEFAULT_MAX_BODY_BYTES", "SOURCE", "ApiServices", "CommandSender", "Explainer"]

#: The CloudEvents source of every command the API sends.
SOURCE: Final = "streamcoord/api"
#: Request bodies larger than this are refused with 413 (actions carry small JSON bodies).
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024

#: ``explainer(run_id, stage)``: the coordinator's explanation, None when its state lacks them.
Explainer = Callable[[str, str], Awaitable[Explanation | None]]


class CommandSender:
    """Puts command events on the events topic and tracks the coordinator's answer."""

    def __init__(self, emitter: Emitter, tracker: CommandTracker) -> None:
        self.emitter = emitter
        self.tracker = tracker

    async def send(self, event: CloudEvent, principal: Principal, subject: str) -> TrackedCommand:
        """Once Kafka acknowledged it; raises ``EmitError`` when it did not."""
        delivery = await self.emitter.deliver(event)
        return self.tracker.track(delivery, principal=principal.name, subject=subject)

    def get(self, command_id: str) -> TrackedCommand | None:
        return self.tracker.get(command_id)

    def paused(self, pipeline: str) -> bool | None:
        return self.tracker.paused(pipeline)


@dataclass
class ApiServices:
    """Everything :func:`~streamcoord.api.create_app` needs, built by ``streamcoord serve``
    (or a test)."""

    store: Store
    specs: SpecViews
    commands: CommandSender
    explainer: Explainer
    tokens: TokenRegistry
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ready: Callable[[], bool] = field(default=lambda: True)
    #: Hosts the backfills started through the API; None: the backfill endpoints answer 503.
    backfills: BackfillManager | None = None
