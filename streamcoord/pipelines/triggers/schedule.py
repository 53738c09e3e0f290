"""The schedule trigger: a run per cron occurrence, in a time zone.

Its source of events is pure and here too: when a schedule is due and the tick event that says
so, with the clock an argument (as in arq's ``next_cron``). The runtime owns the clock: the
coordinator that owns a pipeline's partition produces its ticks (``runtime/schedule.py``). Tick
ids are ``schedule/<pipeline>/<time>``, so a tick produced twice (a restart, a rebalance) is one
CloudEvent to the core and folds into one run.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from cronsim import CronSim, CronSimError
from pydantic import Field

from streamcoord.events.models import ScheduleTick, ScheduleTickData
from streamcoord.pipelines._base import SpecModel
from streamcoord.pipelines.triggers.kind import (
    Finding,
    Handler,
    TriggerContext,
    TriggerKind,
    did_you_mean,
    new_match,
)

__all__ = [
    "KIND",
    "Schedule",
    "ScheduleTrigger",
    "latest_due",
    "next_due",
    "tick_event",
]

# Any fixed instant does: cronsim needs a start to parse against, and checks use no clock.
_CRON_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class ScheduleTrigger(SpecModel):
    kind: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=1, description="Five-field cron expression.")
    timezone: str = "UTC"


class _ScheduleKind(TriggerKind[ScheduleTrigger]):
    name = "schedule"
    model = ScheduleTrigger

    def findings(self, trigger: ScheduleTrigger, pipelines: Collection[str]) -> Iterator[Finding]:
        try:
            CronSim(trigger.cron, _CRON_EPOCH)
        except CronSimError as error:
            hint = "five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"
            yield Finding(("cron",), f"invalid cron {trigger.cron!r}: {error}", hint)
        try:
            zoneinfo.ZoneInfo(trigger.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(trigger.timezone, zoneinfo.available_timezones())
            hint = hint or "e.g. Europe/Paris"
            yield Finding(("timezone",), f"unknown time zone {trigger.timezone!r}", hint)

    def handlers(self) -> Mapping[str, Handler]:
        return {ScheduleTick.TYPE: _on_tick}


def _on_tick(ctx: TriggerContext) -> None:
    data = ctx.data(ScheduleTickData)
    if data is None or not ctx.has_pipeline(data.pipeline):
        return
    if not ctx.triggers(KIND.name, data.pipeline):
        ctx.reject("not_scheduled", f"pipeline {data.pipeline!r} has no schedule trigger")
        return
    env = {
        "event": ctx.view,
        "schedule": {"pipeline": data.pipeline, "scheduled_time": data.scheduled_time.isoformat()},
    }
    run_key = ctx.run_key(data.pipeline, env)
    if run_key is not None:
        ctx.match(new_match(ctx, data.pipeline, run_key))


# ---- the source of ticks (pure: the runtime passes the clock) --------------------------------


@dataclass(frozen=True)
class Schedule:
    pipeline: str
    cron: str
    timezone: str


def next_due(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first occurrence strictly after ``after`` (UTC in, UTC out)."""
    local = after.astimezone(zoneinfo.ZoneInfo(schedule.timezone))
    return next(iter(CronSim(schedule.cron, local))).astimezone(dt.UTC)


def latest_due(schedule: Schedule, now: dt.datetime) -> dt.datetime:
    """The last occurrence at or before ``now``."""
    # Reverse iteration starts strictly before its argument; cron has minute resolution, so a
    # second later includes ``now`` itself when it is an occurrence.
    local = now.astimezone(zoneinfo.ZoneInfo(schedule.timezone)) + dt.timedelta(seconds=1)
    return next(iter(CronSim(schedule.cron, local, reverse=True))).astimezone(dt.UTC)


def tick_event(schedule: Schedule, scheduled_time: dt.datetime) -> ScheduleTick:
    stamp = scheduled_time.astimezone(dt.UTC).isoformat()
    return ScheduleTick(
        id=f"schedule/{schedule.pipeline}/{stamp}",
        source="streamcoord/scheduler",
        time=scheduled_time,
        data=ScheduleTickData(pipeline=schedule.pipeline, scheduled_time=scheduled_time),
    )


KIND = _ScheduleKind()
