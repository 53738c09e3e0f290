"""What a trigger kind is, and what it may ask of the core while it matches.

A kind is one module holding its spec model, its checks, its compiled form and its matching
(see ``docs/contributing.md``, "Adding a trigger kind"). Kinds import neither the core nor the
runtime: the core compiles the expressions a kind declares and hands it a
:class:`TriggerContext`, the narrow view of one decision that matching needs. So the spec models
can list every kind's model while the core, which reads those models, drives the kinds.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from streamcoord.events.internal import InternalData, RunMatchData
from streamcoord.events.models import CloudEvent
from streamcoord.pipelines.problem import FieldPath

__all__ = [
    "CompiledTrigger",
    "Evaluator",
    "Finding",
    "Handler",
    "Match",
    "TriggerContext",
    "TriggerExpression",
    "TriggerKind",
    "TriggerState",
    "did_you_mean",
    "new_match",
]

S = TypeVar("S", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)

#: A request to start (or feed) a run: a routed ``streamcoord.run.match``'s data.
Match = RunMatchData


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem of one trigger; ``path`` is relative to the trigger (``("cron",)``)."""

    path: FieldPath
    message: str
    hint: str = ""


#: An expression field of a trigger: (field, CEL source, variables it may use).
TriggerExpression = tuple[str, str, frozenset[str]]


class Evaluator(Protocol):
    """A compiled expression; evaluating raises ``ExpressionEvaluationError``."""

    def evaluate(self, variables: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class CompiledTrigger(Generic[S]):
    """Trigger ``index`` of ``pipeline``, indexed under ``key``, its expressions compiled."""

    pipeline: str
    index: int
    spec: S
    key: str
    expressions: Mapping[str, Evaluator]


class TriggerState(Protocol):
    """The coordinator state a kind may keep its own entries in (JSON-like dicts by key)."""

    def misc(self, key: str) -> dict[str, Any] | None: ...

    def misc_for_update(self, key: str, default: dict[str, Any]) -> dict[str, Any]: ...


class TriggerContext(Protocol):
    """One decision as a trigger kind sees it; the core implements it.

    Everything a kind does goes through here: rejecting the event, noting a decision, starting
    runs (:meth:`match` routes to the partition that owns the run, :meth:`admit` when it is
    known to be here), routing its own internal events, and keeping state.
    """

    @property
    def event(self) -> CloudEvent: ...

    @property
    def view(self) -> dict[str, Any]:
        """The event as CEL and templates see it (its JSON form)."""
        ...

    @property
    def dedup(self) -> str:
        """The event's identity for deduplication (source and id)."""
        ...

    @property
    def state(self) -> TriggerState: ...

    def data(self, model: type[D]) -> D | None:
        """The event's data as ``model``, or None after rejecting it as ``invalid_data``."""
        ...

    def has_pipeline(self, name: str) -> bool:
        """Whether ``name`` is loaded; rejects the event as ``unknown_pipeline`` when not."""
        ...

    def triggers(self, kind: str, key: str) -> tuple[CompiledTrigger[Any], ...]:
        """The compiled triggers of ``kind`` indexed under ``key``, in spec order."""
        ...

    def run_key(self, pipeline: str, env: dict[str, Any]) -> str | None:
        """``pipeline``'s run key in ``env``, or None after rejecting as ``run_key_error``."""
        ...

    def match(self, m: Match) -> None: ...

    def admit(self, m: Match) -> None: ...

    def owns(self, key: str) -> bool: ...

    def route(self, key: str, type_: str, ident: str, data: InternalData) -> None: ...

    def reject(self, code: str, reason: str) -> None: ...

    def note(
        self, run_id: str, stage: str | None, kind: str, reason: str, caused: list[str]
    ) -> None: ...

    def expired(self, base: str, caused: list[str]) -> bool:
        """Whether the runs of ``base`` expired (then noted as ignored: nothing may revive it)."""
        ...


Handler = Callable[[TriggerContext], None]


def did_you_mean(name: str, options: Collection[str]) -> str:
    """A hint naming the option closest to ``name``, or "" when none is close."""
    close = difflib.get_close_matches(name, sorted(options), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def new_match(
    ctx: TriggerContext,
    pipeline: str,
    run_key: str,
    *,
    params: dict[str, Any] | None = None,
    rerun: bool = False,
) -> Match:
    """A match caused by the event being decided, whose view becomes the run's trigger."""
    # Made by the core from a decoded event: trusted, so constructed without validation.
    return RunMatchData.model_construct(
        pipeline=pipeline,
        run_key=run_key,
        trigger=ctx.view,
        caused=[ctx.event.id],
        params={} if params is None else params,
        rerun=rerun,
        dedup=ctx.dedup,
    )


class TriggerKind(Generic[S]):
    """One kind of trigger; subclass it once per kind and register the instance.

    ``name`` is the value of ``kind:`` in the spec. A kind with ``matches_events`` is keyed by
    a CloudEvents type (:meth:`key`): the core offers it every external event of that type
    (:meth:`match`). A kind that consumes streamcoord's own events instead lists them in
    :meth:`handlers` and finds its triggers with :meth:`TriggerContext.triggers`.
    """

    name: ClassVar[str]
    model: type[S]
    matches_events: ClassVar[bool] = False

    def findings(self, trigger: S, pipelines: Collection[str]) -> Iterator[Finding]:
        """What the schema cannot see; ``pipelines`` are the names that exist. The only
        validation of the kind: ``streamcoord validate`` locates these, the catalog raises them.
        """
        return iter(())

    def expressions(self, trigger: S) -> Iterator[TriggerExpression]:
        """The trigger's CEL fields: checked by validation, compiled into the catalog."""
        return iter(())

    def key(self, pipeline: str, trigger: S) -> str:
        """Where the catalog indexes the trigger: by default the pipeline's name."""
        return pipeline

    def match(self, ctx: TriggerContext, trigger: CompiledTrigger[S]) -> None:
        """Offer the event being decided to ``trigger`` (``matches_events`` kinds only)."""
        raise NotImplementedError(f"trigger kind {self.name!r} does not match external events")

    def handlers(self) -> Mapping[str, Handler]:
        """The event types this kind decides, and how."""
        return {}
