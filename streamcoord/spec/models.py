"""Pipeline specs: the models people write in YAML and every other part of streamcoord reads.

These models are the single source of truth for the spec format: the JSON Schema in
``topics/schemas/spec.schema.json`` is generated from them. Expressions (conditions, filters,
run keys) are CEL source strings, and templated params use ``${ expr }`` spans; both are
compiled and checked by :mod:`streamcoord.spec.expressions`, never executed as Python.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "DEFAULT_TRIGGER_TOPIC",
    "Backoff",
    "Concurrency",
    "DataArrivalTrigger",
    "EventTrigger",
    "Executor",
    "ExecutorKind",
    "ManualTrigger",
    "Need",
    "OverLimitPolicy",
    "Pipeline",
    "PipelineOutcomeTrigger",
    "Pool",
    "RetryPolicy",
    "ScheduleTrigger",
    "SpecFile",
    "Stage",
    "StageDefaults",
    "Trigger",
    "TriggerRule",
]

DEFAULT_TRIGGER_TOPIC = "streamcoord.triggers"

Name = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="Lower-case letters, digits, '_' and '-'; starts with a letter.",
    ),
]
Expression = Annotated[str, Field(min_length=1, description="A CEL expression.")]

TriggerRule = Literal[
    "all_success", "all_done", "all_failed", "one_success", "one_failed", "none_failed"
]
ExecutorKind = Literal["batch", "streaming"]
OverLimitPolicy = Literal["queue", "skip", "cancel_oldest"]
RunOutcome = Literal["succeeded", "failed", "cancelled"]


class _Spec(BaseModel):
    # Unknown fields are errors (with a did-you-mean hint from the validator), and parsed specs
    # are values: nothing downstream may mutate them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backoff(_Spec):
    """Exponential backoff between attempts: initial * multiplier**(attempt-1), capped at max."""

    initial_seconds: float = Field(10.0, gt=0)
    max_seconds: float = Field(600.0, gt=0)
    multiplier: float = Field(2.0, ge=1.0)
    jitter: float = Field(
        0.1, ge=0.0, le=1.0, description="Fraction of the delay, derived from run id and attempt."
    )


class RetryPolicy(_Spec):
    max_attempts: int = Field(1, ge=1, le=100, description="Attempts in all, the first included.")
    backoff: Backoff = Backoff()


class Executor(_Spec):
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


class Need(_Spec):
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


class StageDefaults(_Spec):
    """Settings every stage of a pipeline inherits unless it sets its own."""

    executor: Executor = Executor()
    retries: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = Field(None, gt=0)
    heartbeat_timeout_seconds: float | None = Field(None, gt=0)
    start_timeout_seconds: float | None = Field(None, gt=0)
    priority: int = 0
    pool: Name | None = None


class Stage(_Spec):
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


class EventTrigger(_Spec):
    """Start or feed a run when a CloudEvent matches."""

    kind: Literal["event"] = "event"
    type: str = Field(min_length=1, description="CloudEvents `type` to match exactly.")
    source: str | None = Field(None, description="Exact `source`, or a prefix ending in '*'.")
    subject: str | None = Field(None, description="Exact `subject`, or a prefix ending in '*'.")
    filter: Expression | None = Field(None, description="CEL over `event`; must be true.")


class DataArrivalTrigger(_Spec):
    """Start a run when every expected partition of every dataset has landed for its run key."""

    kind: Literal["data"] = "data"
    type: str = Field("dataset.landed", min_length=1, description="CloudEvents type of arrivals.")
    datasets: list[str] = Field(min_length=1)
    dataset: Expression = Field("event.data.dataset", description="CEL: the dataset name.")
    partition: Expression = Field("event.data.partition", description="CEL: the partition id.")
    partitions_per_run: int = Field(
        1, ge=1, description="Distinct partitions of each dataset that make a run key complete."
    )
    event_time: Expression | None = Field(
        None, description="CEL: the arrival's event time (RFC 3339), for the watermark."
    )
    allowed_lateness_seconds: float = Field(
        0.0,
        ge=0,
        description="Arrivals older than the watermark minus this are late and not counted.",
    )


class ScheduleTrigger(_Spec):
    kind: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=1, description="Five-field cron expression.")
    timezone: str = "UTC"


def _default_outcomes() -> list[RunOutcome]:
    # A named function, not a lambda, so the element type is RunOutcome and not str.
    return ["succeeded"]


class PipelineOutcomeTrigger(_Spec):
    """Start a run when another pipeline's run ends with one of ``outcomes``."""

    kind: Literal["pipeline"] = "pipeline"
    pipeline: Name
    outcomes: list[RunOutcome] = Field(default_factory=_default_outcomes)


class ManualTrigger(_Spec):
    """Runs requested through the API or CLI (``streamcoord.run.requested``)."""

    kind: Literal["manual"] = "manual"


Trigger = Annotated[
    EventTrigger | DataArrivalTrigger | ScheduleTrigger | PipelineOutcomeTrigger | ManualTrigger,
    Field(discriminator="kind"),
]


def _default_triggers() -> list[Trigger]:
    # Without a trigger a pipeline still runs on request (API or CLI).
    return [ManualTrigger()]


class Concurrency(_Spec):
    """How many runs of the pipeline may be active at once, over every coordinator partition."""

    max_active_runs: int | None = Field(
        None, ge=1,
        description="Active runs of this pipeline at once, counted over the whole consumer group;"
        " none: no limit.",
    )
    over_limit: OverLimitPolicy = Field(
        "queue",
        description="A new run over the limit: `queue` (starts when a slot frees, in request"
        " order), `skip` (ends as skipped) or `cancel_oldest` (starts once the oldest active run"
        " is cancelled).",
    )


class Pipeline(_Spec):
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


class Pool(_Spec):
    """A named concurrency limit that stages of any pipeline can share."""

    name: Name
    slots: int = Field(ge=1)
    description: str = ""


class SpecFile(_Spec):
    """One YAML document: any number of pipelines and pools."""

    pipelines: list[Pipeline] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)
