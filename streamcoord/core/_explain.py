"""Why a stage is, or is not yet, ready: for ``streamcoord explain RUN STAGE``."""

from __future__ import annotations

from dataclasses import dataclass

from streamcoord.core._catalog import Catalog, CompiledPipeline
from streamcoord.core._guards import GUARD_PREFIX
from streamcoord.core._quotas import held_reason
from streamcoord.core._readiness import need_outcome, verdict
from streamcoord.core._state import CoordinatorState
from streamcoord.core._versions import CatalogSet
from streamcoord.events.partitioning import partition_for, run_base

__all__ = ["Explanation", "NeedStatus", "explain"]


@dataclass(frozen=True, slots=True)
class NeedStatus:
    """One need of a stage: its outcome and the event that settled it, if any."""

    need: str
    status: str
    satisfied: bool
    by_event: str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything known about one stage of one run."""

    run_id: str
    stage: str
    status: str
    attempt: int
    rule: str
    needs: tuple[NeedStatus, ...]
    holds: tuple[str, ...]
    caused_by: tuple[str, ...]
    reason: str


def explain(
    catalog: Catalog | CatalogSet, state: CoordinatorState, run_id: str, stage: str
) -> Explanation | None:
    """None when this state holds no such run or stage (in the spec version the run follows)."""
    run = state.run(run_base(run_id))
    if run is None or run.run_id != run_id:
        return None
    catalogs = catalog if isinstance(catalog, CatalogSet) else CatalogSet.of(catalog)
    own = catalogs.get(run.spec_version) or catalogs.current(state.spec_version)
    cp = own.pipelines.get(run.pipeline)
    if cp is None or stage not in cp.stages or stage not in run.stages:
        return None
    cs = cp.stages[stage]
    st = run.stages[stage]
    needs = []
    outcomes = []
    for need in cs.needs:
        if need.pipeline is None and need.stage not in run.stages:  # added by a newer spec
            outcomes.append("P")
            needs.append(NeedStatus(need.name, "pending", False, None))
            continue
        outcome = need_outcome(run, need, None)
        outcomes.append(outcome)
        if need.pipeline is None:
            status, by = run.stages[need.stage].status, run.stages[need.stage].done_by
        else:
            ext = run.ext.get(need.name)
            status, by = (ext[0], ext[3]) if ext else ("unknown", None)
        needs.append(NeedStatus(need.name, status, outcome == "S", by))
    holds: list[str] = []
    pipe = state.misc(f"pipe/{cp.name}")
    if run.status == "queued":
        holds.append(_queued_hold(own, cp, state, run.run_id))
    if pipe is not None and pipe["paused"]:
        holds.append(f"pipeline {cp.name} is paused")
    if st.status == "pending" and verdict(cs, outcomes) == "wait":
        holds.append(
            f"trigger rule {cs.trigger_rule}: waiting for "
            + ", ".join(n.need for n in needs if n.status not in _ENDED)
        )
    if st.status == "ready" and cs.pool is not None:
        holds.append(f"waiting for a slot in pool {cs.pool}")
    if st.status == "pending" and st.reason.startswith(GUARD_PREFIX):
        holds.append(st.reason)
    if st.status == "skipped" and cs.condition is not None:
        holds.append(f"condition: {cs.condition.source}")
    return Explanation(
        run.run_id,
        stage,
        st.status,
        st.attempt,
        cs.trigger_rule,
        tuple(needs),
        tuple(holds),
        tuple(st.caused_by),
        st.reason,
    )


def _queued_hold(
    catalog: Catalog, cp: CompiledPipeline, state: CoordinatorState, run_id: str
) -> str:
    """What holds a queued run back: on the partition that keeps the pipeline's slots, the quota
    that holds the queue, else max_active_runs; elsewhere, the limits the run waits for."""
    if state.partitions == 1 or partition_for(f"active/{cp.name}", state.partitions) == (
        state.partition
    ):
        held = held_reason(state.misc(f"pipe/{cp.name}"), run_id)
        return held or f"max_active_runs {cp.max_active_runs} of pipeline {cp.name}"
    quotas = [q.name for q in catalog.policies.quotas.get(cp.name, ())]
    what = [f"max_active_runs {cp.max_active_runs}"] if cp.max_active_runs is not None else []
    what += [f"quota {', '.join(quotas)}"] if quotas else []
    return f"{' and '.join(what)} of pipeline {cp.name}"


_ENDED = frozenset({"succeeded", "failed", "timed_out", "skipped", "cancelled", "upstream_failed"})
