"""Policies at decision time: who may send an event, and the contract its data must meet.

Checked before an event is decided at all, so a rejected event starts, feeds or changes nothing.
The checks run in the core rather than at admission so that the verdict comes from the spec
version the partition decides with, is recorded among the run's decisions, and replays (a
signature check is pure computation over the event). A violated policy with ``enforce: false``
(a dry run) is recorded (``would_reject``) and counted, and the event is then decided as if the
policy allowed it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streamcoord.core._context import Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._matching import event_view
from streamcoord.core._policies import contract_violation, emit_violation
from streamcoord.core._step import Violation

__all__ = ["REJECTED", "WOULD_REJECT", "allows"]

#: Decision actions of a policy's verdict.
REJECTED = "rejected"
WOULD_REJECT = "would_reject"
_OWN_PREFIX = "streamcoord."


def allows(ctx: Context) -> bool:
    """Whether the event may be decided; after rejecting it (with the policy's name) if not."""
    event = ctx.event
    policies = ctx.catalog.policies
    emit, contracts = policies.emit.get(event.type, ()), policies.contracts.get(event.type, ())
    if not emit and not contracts:  # most events: no policy governs their type
        return True
    verdicts = [
        *((p.name, p.enforce, *v) for p in emit for v in emit_violation(p, event)),
        *((c.name, c.enforce, *v) for c in contracts for v in contract_violation(c, event)),
    ]
    for name, enforce, code, reason in verdicts:
        ctx.violations.append(Violation(name, code, reason, enforce))
        action = REJECTED if enforce else WOULD_REJECT
        for run_id in _audited_runs(ctx):
            ctx.note(run_id, None, action, f"policy {name}: {code}: {reason}", [event.id])
        if enforce:
            ctx.reject(code, f"policy {name}: {reason}", policy=name)
            return False
    return True


def _audited_runs(ctx: Context) -> list[str]:
    """The runs whose audit shows the verdict: the run a command names, or for an external
    event the run each pipeline it would start or feed gives it (its run key)."""
    data = ctx.event.data
    if isinstance(data, BaseModel):  # streamcoord's own types arrive typed
        data = data.model_dump()
    if ctx.event.type.startswith(_OWN_PREFIX):  # a command: its data names its run or pipeline
        named = [data.get(a) for a in ("run_id", "pipeline") if isinstance(data, dict)]
        return [next(n for n in (*named, ctx.event.type) if isinstance(n, str))]
    runs: list[str] = []
    view: dict[str, Any] | None = None
    for trigger in ctx.catalog.by_type.get(ctx.event.type, ()):
        pipeline = ctx.catalog.pipelines[trigger.pipeline]
        view = view if view is not None else event_view(ctx)
        try:
            run_id = f"{pipeline.name}/{pipeline.run_key.evaluate({'event': view})}"
        except ExpressionEvaluationError:
            continue  # an event without this pipeline's key names none of its runs
        if run_id not in runs:
            runs.append(run_id)
    return runs
