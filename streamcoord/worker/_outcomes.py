"""The events a worker reports about one attempt, with ids derived from the trigger.

Ids are ``<idempotency_key>/started``, ``/heartbeat/<n>``, ``/progress/<n>``, ``/succeeded`` and
``/failed``: a redelivered trigger that runs again reports under the same ids, and the core
ignores a second outcome for an attempt that is already over. Pure: the caller passes the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from pydantic import JsonValue

from streamcoord.events.models import (
    StageFailed,
    StageFailedData,
    StageHeartbeat,
    StageLineage,
    StageProgress,
    StageProgressData,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)

__all__ = ["WORKER_SOURCE", "failed", "heartbeat", "progress", "started", "succeeded"]

#: Fixed across worker processes so that (source, id) names one report wherever it ran.
WORKER_SOURCE: Final = "streamcoord/worker"
#: Failure text is capped: the whole event must stay far below Kafka's message size limit.
MAX_ERROR_CHARS: Final = 8192


def _ref(trigger: StageTrigger) -> dict[str, object]:
    data = trigger.data
    return {"run_id": data.run_id, "stage": data.stage, "attempt": data.attempt}


def _id(trigger: StageTrigger, suffix: str) -> str:
    return f"{trigger.data.idempotency_key}/{suffix}"


def started(trigger: StageTrigger, now: datetime) -> StageStarted:
    """The attempt began."""
    return StageStarted(
        id=_id(trigger, "started"),
        source=WORKER_SOURCE,
        subject=trigger.data.run_id,
        traceparent=trigger.traceparent,  # reports continue the attempt's trace
        time=now,
        data=StageRef.model_validate(_ref(trigger)),
    )


def heartbeat(trigger: StageTrigger, sequence: int, now: datetime) -> StageHeartbeat:
    """The attempt is still running (``sequence`` counts from 1)."""
    return StageHeartbeat(
        id=_id(trigger, f"heartbeat/{sequence}"),
        source=WORKER_SOURCE,
        subject=trigger.data.run_id,
        traceparent=trigger.traceparent,  # reports continue the attempt's trace
        time=now,
        data=StageRef.model_validate(_ref(trigger)),
    )


def progress(
    trigger: StageTrigger,
    sequence: int,
    now: datetime,
    *,
    watermark: datetime | None = None,
    offsets: Mapping[str, int] | None = None,
) -> StageProgress:
    """How far a streaming attempt got."""
    data = {**_ref(trigger), "watermark": watermark, "offsets": dict(offsets or {})}
    return StageProgress(
        id=_id(trigger, f"progress/{sequence}"),
        source=WORKER_SOURCE,
        subject=trigger.data.run_id,
        traceparent=trigger.traceparent,  # reports continue the attempt's trace
        time=now,
        data=StageProgressData.model_validate(data),
    )


def succeeded(
    trigger: StageTrigger,
    outputs: Mapping[str, JsonValue],
    now: datetime,
    lineage: StageLineage | None = None,
) -> StageSucceeded:
    """The attempt finished; ``outputs`` feed downstream params, ``lineage`` names the datasets
    it read and wrote."""
    return StageSucceeded(
        id=_id(trigger, "succeeded"),
        source=WORKER_SOURCE,
        subject=trigger.data.run_id,
        traceparent=trigger.traceparent,  # reports continue the attempt's trace
        time=now,
        data=StageSucceededData.model_validate(
            {**_ref(trigger), "outputs": dict(outputs), "lineage": lineage}
        ),
    )


def failed(trigger: StageTrigger, error: str, *, retryable: bool, now: datetime) -> StageFailed:
    """The attempt failed; the text is cut to its last :data:`MAX_ERROR_CHARS` characters."""
    text = error if len(error) <= MAX_ERROR_CHARS else "…" + error[-MAX_ERROR_CHARS:]
    return StageFailed(
        id=_id(trigger, "failed"),
        source=WORKER_SOURCE,
        subject=trigger.data.run_id,
        traceparent=trigger.traceparent,  # reports continue the attempt's trace
        time=now,
        data=StageFailedData.model_validate(
            {**_ref(trigger), "error": text, "retryable": retryable}
        ),
    )
