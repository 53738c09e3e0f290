"""Trigger rules: given the outcomes of a stage's needs, is it ready, still waiting, or done?"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from streamcoord.core._catalog import CompiledNeed, CompiledStage
from streamcoord.core._state import RunState

__all__ = ["OUTCOMES", "Verdict", "need_outcome", "verdict"]

Verdict = Literal["wait", "ready", "skipped", "upstream_failed"]
#: A need's outcome letter by the status of the stage it names (see :func:`need_outcome`).
OUTCOMES: Mapping[str, str] = MappingProxyType({
    "succeeded": "S",
    "failed": "F", "timed_out": "F", "upstream_failed": "F",
    "skipped": "K", "cancelled": "K",
    "expired": "F",  # the upstream run left the state (retention): its outcome is not known
    "pending": "P", "ready": "P", "triggered": "P", "running": "P", "retry_wait": "P",
})  # fmt: skip


def need_outcome(run: RunState, need: CompiledNeed, target: str | None) -> str:
    """'S' succeeded, 'F' failed, 'K' skipped or cancelled, 'P' not known yet.

    ``target`` is the watermark (RFC 3339) a streaming upstream must pass: reaching it counts
    as success even while the upstream keeps running.
    """
    if need.pipeline is None:
        stage = run.stages[need.stage]
        status, watermark = stage.status, stage.watermark
    else:
        ext = run.ext.get(need.name)
        status, watermark = (ext[0], ext[2]) if ext else ("pending", None)
    if target is not None and watermark is not None and watermark >= target:
        return "S"
    return OUTCOMES.get(status, "P")  # an unknown outcome from elsewhere: not known yet


def verdict(stage: CompiledStage, outcomes: list[str]) -> Verdict:  # noqa: PLR0911  # a rule table reads best as early returns
    """Apply ``stage.trigger_rule`` to its needs' outcomes."""
    if not outcomes:
        return "ready"
    rule = stage.trigger_rule
    if rule in {"all_success", "none_failed"}:
        if "F" in outcomes:
            return "upstream_failed"
        if rule == "all_success" and "K" in outcomes:
            return "skipped"
        return "wait" if "P" in outcomes else "ready"
    if rule == "all_done":
        return "wait" if "P" in outcomes else "ready"
    if rule == "all_failed":
        if "S" in outcomes or "K" in outcomes:
            return "skipped"
        return "wait" if "P" in outcomes else "ready"
    if rule == "one_success":
        if "S" in outcomes:
            return "ready"
        if "P" in outcomes:
            return "wait"
        return "upstream_failed" if "F" in outcomes else "skipped"
    # one_failed
    if "F" in outcomes:
        return "ready"
    return "wait" if "P" in outcomes else "skipped"
