"""Pipeline specs: the models people write in YAML and every other part of streamcoord reads.

These models are the single source of truth for the spec format: the JSON Schema in
``topics/schemas/spec.schema.json`` is generated from them. Expressions (conditions, filters,
run keys) are CEL source strings, and templated params use ``${ expr }`` spans; both are
compiled and checked by :mod:`streamcoord.pipelines.expressions`, never executed as Python.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from streamcoord.events import topology
from streamcoord.pipelines._base import Expression, Name, SpecModel
from streamcoord.pipelines.policies import (
    ContractPolicy,
    EmitPolicy,
    GuardPolicy,
    Policy,
    QuotaPolicy,
)
from streamcoord.pipelines.triggers import (
    DataArrivalTrigger,
    EventTrigger,
    ManualTrigger,
    PipelineOutcomeTrigger,
    ScheduleTrigger,
    Trigger,
)

__all__ = [
    "DEFAULT_TRIGGER_TOPIC",
    "Backoff",
    "Concurrency",
    "ContractPolicy",
    "DataArrivalTrigger",
    "EmitPolicy",
    "EventTrigger",
    "Executor",
    "ExecutorKind",
    "GuardPolicy",
    "ManualTrigger",
    "Need",
    "OverLimitPolicy",
    "Pipeline",
    "PipelineOutcomeTrigger",
    "Policy",
    "Pool",
    "QuotaPolicy",
    "RetryPolicy",
    "ScheduleTrigger",
    "SpecFile",
    "Stage",
    "StageDefaults",
    "Trigger",
    "TriggerRule",
]

DEFAULT_TRIGGER_TOPIC = topology.TRIGGERS

TriggerRule = Literal[
    "all_success", "all_done", "all_failed", "one_success", "one_failed", "none_failed"
]
ExecutorKind = Literal["batch", "streaming"]
OverLimitPolicy = Literal["queue", "skip", "cancel_oldest"]


class Backoff(SpecModel):
    """Exponential backoff between attempts: initial * multiplier**(attempt-1), capped at max."""

    initial_seconds: float = Field(10.0, gt=0)
    max_seconds: float = Field(600.0, gt=0)
    multiplier: float = Field(2.0, ge=1.0)
    jitter: float = Field(
        0.1, ge=0.0, le=1.0, description="Fraction of the delay, derived from run id and attempt."
    )


class RetryPolicy(SpecModel):
    max_attempts: int = Field(1, ge=1, le=100, description="Attempts in all, the first included.")
    backoff: Backoff = Backoff()


class Executor(SpecModel):
    """Where a stage's trigger goes and how it runs; ``config`` passes through untouched."""

    topic: str = Field(DEFAULT_TRIGGER_TOPIC, min_length=1)
    kind: ExecutorKind = "batch"
    config: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=(
            "For the executor, copied into every trigger. Never write a secret here: write"
            " `{secret: {env: NAME}}` or `{secret: {file: /path}}` and the worker reads it."
        ),
    )


class Need(SpecModel):
    """An upstream stage: ``stage`` in this pipeline, or ``pipeline.stage`` in another one."""

    stage: str = Field(min_length=1, description="'stage' or 'other_pipeline.stage'.")
    run_key: Expression | None = Field(
        None,
        description=(
            "For a cross-pipeline need: CEL expression over `run_key` giving the upstream run key."
            " Default: the same run key."
        ),
    )
    watermark: Expression | None = Field(
        None,
        description=(
            "For a streaming upstream: CEL expression over `run_key` giving the event-time"
            " watermark (RFC 3339) the upstream must report passing before this need holds."
        ),
    )


class StageDefaults(SpecModel):
    """Settings every stage of a pipeline inherits unless it sets its own."""

    executor: Executor = Executor()
    retries: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = Field(None, gt=0)
    heartbeat_timeout_seconds: float | None = Field(None, gt=0)
    start_timeout_seconds: float | None = Field(None, gt=0)
    priority: int = 0
    pool: Name | None = None


class Stage(SpecModel):
    name: Name
    description: str = ""
    needs: list[str | Need] = Field(default_factory=list)
    trigger_rule: TriggerRule = "all_success"
    condition: Expression | None = Field(
        None, description="CEL; when it is false the stage is skipped."
    )
    executor: Executor | None = None
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Values may hold `${ expr }` templates."
    )
    retries: RetryPolicy | None = None
    timeout_seconds: float | None = Field(
        None, gt=0, description="Execution timeout, from the trigger to the outcome."
    )
    heartbeat_timeout_seconds: float | None = Field(None, gt=0)
    start_timeout_seconds: float | None = Field(
        None,
        gt=0,
        description=(
            "Time from the trigger to the executor's `started` report. Default: the"
            " coordinator's `default_start_timeout_seconds` (600)."
        ),
    )
    priority: int | None = None
    pool: Name | None = None


def _default_triggers() -> list[Trigger]:
    # Without a trigger a pipeline still runs on request (API or CLI).
    return [ManualTrigger()]


class Concurrency(SpecModel):
    """How many runs of the pipeline may be active at once, over every coordinator partition."""

    max_active_runs: int | None = Field(
        None,
        ge=1,
        description="Active runs of this pipeline at once, counted over the whole consumer group;"
        " none: no limit.",
    )
    over_limit: OverLimitPolicy = Field(
        "queue",
        description="A new run over the limit: `queue` (starts when a slot frees, in request"
        " order), `skip` (ends as skipped) or `cancel_oldest` (starts once the oldest active run"
        " is cancelled).",
    )


class Pipeline(SpecModel):
    name: Name
    description: str = ""
    owner: str = ""
    tags: list[str] = Field(default_factory=list)
    run_key: Expression = Field(
        "event.id",
        description=(
            "CEL giving the run key from the trigger (`event`, and `schedule` for ticks);"
            " inputs with the same key fold into one run."
        ),
    )
    concurrency: Concurrency = Concurrency()
    defaults: StageDefaults = StageDefaults()
    triggers: list[Trigger] = Field(default_factory=_default_triggers)
    stages: list[Stage] = Field(min_length=1)


class Pool(SpecModel):
    """A named concurrency limit that stages of any pipeline can share."""

    name: Name
    slots: int = Field(ge=1)
    description: str = ""


class SpecFile(SpecModel):
    """One YAML document: any number of pipelines, pools and policies."""

    pipelines: list[Pipeline] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)
    policies: list[Policy] = Field(
        default_factory=list,
        description="Rules the core enforces (streamcoord.pipelines.policies).",
    )
