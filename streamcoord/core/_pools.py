"""Named pools shared by every pipeline, owned by the partition of ``pool/<name>``.

Stages ask for a slot with a routed ``acquire``; the owner grants slots in a deterministic order
(priority descending, then request order) with a routed ``grant``, and frees them on ``release``.
"""

from __future__ import annotations

from typing import Any

from streamcoord.core._catalog import CompiledStage
from streamcoord.core._construction import build
from streamcoord.core._context import Context
from streamcoord.core._state import RunState
from streamcoord.events.internal import (
    PoolAcquire,
    PoolAcquireData,
    PoolGrant,
    PoolRelease,
    PoolSlot,
)

__all__ = [
    "ACQUIRE",
    "GRANT",
    "RELEASE",
    "give_back",
    "handle_acquire",
    "handle_release",
    "release",
    "request",
]

ACQUIRE = PoolAcquire.TYPE
GRANT = PoolGrant.TYPE
RELEASE = PoolRelease.TYPE


def _key(pool: str) -> str:
    return f"pool/{pool}"


def request(ctx: Context, run: RunState, cs: CompiledStage, attempt: int) -> None:
    """Ask the pool's owner for a slot for ``attempt`` of ``cs``."""
    assert cs.pool is not None  # only stages with a pool get here
    run.stages[cs.name].pool = cs.pool
    ident = f"acquire|{run.run_id}|{cs.name}|{attempt}"
    data = build(
        PoolAcquireData,
        None,
        pool=cs.pool,
        run_id=run.run_id,
        stage=cs.name,
        attempt=attempt,
        priority=cs.priority,
        reply=run.base,
    )
    ctx.route(_key(cs.pool), ACQUIRE, ident, data)


def release(ctx: Context, run: RunState, cs: CompiledStage, attempt: int) -> None:
    """Give back the slot of ``attempt`` (or withdraw its request)."""
    assert cs.pool is not None  # only stages with a pool get here
    give_back(ctx, cs.pool, run.run_id, cs.name, attempt)


def give_back(ctx: Context, pool: str, run_id: str, stage: str, attempt: int) -> None:
    """Release the slot (or request) of ``attempt`` of ``stage`` in ``pool``."""
    ident = f"release|{run_id}|{stage}|{attempt}"
    data = build(PoolSlot, None, pool=pool, run_id=run_id, stage=stage, attempt=attempt)
    ctx.route(_key(pool), RELEASE, ident, data)


def _state(ctx: Context, pool: str) -> dict[str, Any]:
    return ctx.state.misc_for_update(_key(pool), {"v": 1, "holders": [], "waiting": [], "seq": 0})


def _same(entry: list[Any], data: PoolSlot) -> bool:
    return bool(entry[0] == data.run_id and entry[1] == data.stage and entry[2] == data.attempt)


def handle_acquire(ctx: Context, data: PoolAcquireData, slots: int) -> None:
    state = _state(ctx, data.pool)
    if any(_same(h, data) for h in state["holders"]) or any(
        _same(w[2:], data) for w in state["waiting"]
    ):
        return
    entry = [data.run_id, data.stage, data.attempt, data.reply]
    if len(state["holders"]) < slots:
        state["holders"].append(entry)
        _grant(ctx, data.pool, entry)
        return
    state["waiting"].append([-data.priority, state["seq"], *entry])
    state["waiting"].sort(key=lambda w: (w[0], w[1]))
    state["seq"] += 1


def handle_release(ctx: Context, data: PoolSlot, slots: int) -> None:
    state = _state(ctx, data.pool)
    state["holders"] = [h for h in state["holders"] if not _same(h, data)]
    state["waiting"] = [w for w in state["waiting"] if not _same(w[2:], data)]
    while state["waiting"] and len(state["holders"]) < slots:
        entry = state["waiting"].pop(0)[2:]
        state["holders"].append(entry)
        _grant(ctx, data.pool, entry)


def _grant(ctx: Context, pool: str, entry: list[Any]) -> None:
    run_id, stage, attempt, reply = entry
    ident = f"grant|{pool}|{run_id}|{stage}|{attempt}"
    ctx.route(
        reply,
        GRANT,
        ident,
        build(PoolSlot, None, pool=pool, run_id=run_id, stage=stage, attempt=attempt),
    )
