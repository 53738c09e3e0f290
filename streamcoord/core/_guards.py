"""Guards: policies' CEL conditions that must hold before a stage is triggered.

A stage whose trigger rule and condition let it run is held (it stays ``pending``) while one of
its guards is not true, or cannot be evaluated (a guard fails closed). The hold is recorded once
as a ``held`` decision naming the guard, and the stage's reason names it for ``explain``. It is
checked again whenever its run is settled again, and every ``recheck_seconds`` when the guard
sets them (a ``wakeup`` timer). A guard with ``enforce: false`` records ``would_hold`` and lets the
stage run. Guards see the time of the event being decided (``now``), never a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from streamcoord.core._catalog import CompiledPipeline, CompiledStage
from streamcoord.core._context import Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._state import RunState, timer_event
from streamcoord.core._step import SetTimer, Violation

__all__ = ["GUARD_PREFIX", "GUARD_TIMER", "held"]

#: How the reason of a held stage starts (``explain`` shows it among the holds).
GUARD_PREFIX = "guard "
#: The purpose of the timer that checks a held stage's guards again.
GUARD_TIMER = "wakeup"
HELD = "held"
WOULD_HOLD = "would_hold"
HELD_CODE = "guard_held"


def held(
    ctx: Context,
    cp: CompiledPipeline,
    run: RunState,
    cs: CompiledStage,
    *,
    env: Callable[[], dict[str, Any]],
    caused: list[str],
) -> bool:
    """Whether a guard holds ``cs`` back now (recorded once per reason); False lets it run."""
    guards = ctx.catalog_of(run).policies.guards.get((cp.name, cs.name), ())
    if not guards:
        return False
    stage = run.stages[cs.name]
    values = {**env(), "now": ctx.now_iso(), "run": _run_view(run), "stage": cs.name}
    for guard in guards:
        try:
            holds = guard.condition.evaluate(values) is True
            why = "is not true"
        except ExpressionEvaluationError as exc:
            holds, why = False, f"could not be evaluated: {exc}"
        if holds:
            continue
        reason = f"{GUARD_PREFIX}{guard.name}: {guard.condition.source} {why}"
        if not guard.enforce:
            ctx.violations.append(Violation(guard.name, HELD_CODE, reason, False))
            ctx.decision(run, cs.name, WOULD_HOLD, reason, caused)
            continue
        if stage.reason != reason:  # a hold is news once, not at every re-check
            stage.reason = reason
            ctx.violations.append(Violation(guard.name, HELD_CODE, reason, True))
            ctx.decision(run, cs.name, HELD, reason, caused)
        if guard.recheck_seconds is not None:
            _recheck(ctx, run, cs.name, guard.recheck_seconds)
        return True
    if stage.reason.startswith(GUARD_PREFIX):  # held before, free now
        stage.reason = ""
        ctx.cancel_timers(run, cs.name)  # a pending stage has no timers but re-checks
    return False


def _recheck(ctx: Context, run: RunState, stage: str, seconds: float) -> None:
    """One ``wakeup`` timer at a time; its id names when it was set, so that each firing is a
    new event (a run ignores an event it has seen)."""
    ctx.cancel_timers(run, stage)
    attempt = run.stages[stage].attempt
    timer_id = f"{run.run_id}|{stage}|{attempt}|{GUARD_TIMER}@{ctx.now_iso()}"
    due = ctx.now + timedelta(seconds=seconds)
    timer = [due.isoformat(), GUARD_TIMER, stage, attempt]
    run.timers[timer_id] = timer
    ctx.commands.append(SetTimer(timer_id, due, timer_event(timer_id, run.run_id, timer)))


def _run_view(run: RunState) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "run_key": run.run_key,
        "status": run.status,
        "stages": {
            name: {"status": s.status, "attempt": s.attempt, "outputs": s.outputs}
            for name, s in run.stages.items()
        },
    }
