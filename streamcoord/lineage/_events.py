"""From run records to OpenLineage RunEvents: one tracker follows every run's records in order."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet, parent_run

from streamcoord.events.models import (
    DatasetRef,
    RunRecord,
    RunRecordData,
    StageLineage,
    StageSucceeded,
)
from streamcoord.pipelines.models import Pipeline

__all__ = ["PRODUCER", "LineageTracker", "StreamcoordRunFacet", "attempt_uuid", "run_uuid"]

PRODUCER = f"urn:streamcoord:coordinator:{version('streamcoord')}"
_IDS = uuid.UUID("5c0a1d3e-2b7f-4e61-9a8d-0f3c5b6e7d21")  # the namespace of derived run ids
_RUN_END = {
    "succeeded": RunState.COMPLETE,
    "skipped": RunState.COMPLETE,
    "failed": RunState.FAIL,
    "cancelled": RunState.ABORT,
}
_ATTEMPT_END = {
    "succeeded": RunState.COMPLETE,
    "failed": RunState.FAIL,
    "timed_out": RunState.FAIL,
    "retry_wait": RunState.FAIL,
    "cancelled": RunState.ABORT,
}
_LIVE = frozenset({"triggered", "running"})
_FINISHED_SUFFIX = "|finished"  # id of the run.finished event of a run: "<run id>|finished"


def run_uuid(run_id: str) -> str:
    """The OpenLineage run id of the streamcoord run ``run_id``."""
    return str(uuid.uuid5(_IDS, f"run:{run_id}"))


def attempt_uuid(run_id: str, stage: str, attempt: int) -> str:
    """The OpenLineage run id of one attempt of a stage."""
    return str(uuid.uuid5(_IDS, f"attempt:{run_id}/{stage}/{attempt}"))


@attr.define
class StreamcoordRunFacet(RunFacet):
    """streamcoord's ids of the run: its id, key, trace (W3C trace id) and who started it."""

    runId: str  # noqa: N815  # OpenLineage facets are camelCase
    runKey: str  # noqa: N815
    traceId: str | None = None  # noqa: N815
    principal: str | None = None


class LineageTracker:
    """Turns each run record, in the order of the runs topic, into the RunEvents it implies.

    ``pipelines`` (optional) are the stage declarations: a stage's ``params.inputs`` and
    ``params.outputs`` (lists of dataset names, ``${ run_key }`` replaced) become its datasets.
    Datasets an executor reports with its success (``data.lineage`` of
    ``streamcoord.stage.succeeded``, shown with :meth:`reported` before the run record that ends
    the attempt) are added to the attempt's COMPLETE event.
    """

    def __init__(self, namespace: str = "streamcoord", pipelines: Sequence[Pipeline] = ()) -> None:
        self.namespace = namespace
        self._params = {(p.name, s.name): s.params for p in pipelines for s in p.stages}
        self._seen: dict[str, RunRecordData] = {}
        self._open: dict[tuple[str, str], int] = {}  # (run, stage) -> attempt started, not ended
        self._closed: set[tuple[str, str, int]] = set()
        self._reported: dict[tuple[str, str, int], StageLineage] = {}

    def reported(self, event: StageSucceeded) -> None:
        """An executor's success report: the datasets it names join its attempt's COMPLETE."""
        data = event.data
        if data.lineage is not None and (data.run_id, data.stage, data.attempt) not in self._closed:
            self._reported[(data.run_id, data.stage, data.attempt)] = data.lineage

    def events(self, record: RunRecord) -> list[RunEvent]:
        data, when = record.data, (record.time.isoformat() if record.time else "")
        before = self._seen.get(data.run_id)
        self._seen[data.run_id] = data
        out: list[RunEvent] = []
        if before is None:
            out.append(self._run_event(RunState.START, data, when))
        for stage, status in data.stages.items():
            out += self._stage_events(data, stage, status, data.attempts.get(stage, 0), when)
        ended = _RUN_END.get(data.status)
        if ended is not None and (before is None or before.status != data.status):
            out.append(self._run_event(ended, data, when))
        return out

    def _stage_events(
        self, data: RunRecordData, stage: str, status: str, attempt: int, when: str
    ) -> list[RunEvent]:
        key = (data.run_id, stage)
        out: list[RunEvent] = []
        if attempt < 1 or (data.run_id, stage, attempt) in self._closed:
            return out
        if self._open.get(key) != attempt and (status in _LIVE or status in _ATTEMPT_END):
            self._open[key] = attempt
            out.append(self._attempt_event(RunState.START, data, stage, attempt, when))
        end = _ATTEMPT_END.get(status)
        if end is not None:
            del self._open[key]
            self._closed.add((data.run_id, stage, attempt))
            out.append(self._attempt_event(end, data, stage, attempt, when))
        return out

    def _run_event(self, state: RunState, data: RunRecordData, when: str) -> RunEvent:
        facets: dict[str, Any] = {
            "streamcoord": StreamcoordRunFacet(
                runId=data.run_id,
                runKey=data.run_key,
                traceId=data.trace_id,
                principal=data.principal,
            )
        }
        upstream = _upstream(data)
        if upstream is not None:
            facets["parent"] = self._parent(upstream.split("/", 1)[0], upstream)
        return RunEvent(
            eventType=state,
            eventTime=when,
            producer=PRODUCER,
            run=Run(runId=run_uuid(data.run_id), facets=facets),
            job=Job(namespace=self.namespace, name=data.pipeline),
        )

    def _attempt_event(
        self, state: RunState, data: RunRecordData, stage: str, attempt: int, when: str
    ) -> RunEvent:
        facets: dict[str, Any] = {
            "parent": self._parent(data.pipeline, data.run_id),
            "streamcoord": StreamcoordRunFacet(
                runId=f"{data.run_id}/{stage}/{attempt}",
                runKey=data.run_key,
                traceId=data.trace_id,
                principal=data.principal,
            ),
        }
        inputs, outputs = self._datasets(data, stage)
        if state == RunState.COMPLETE:
            reported = self._reported.pop((data.run_id, stage, attempt), None)
            if reported is not None:
                inputs = _union(inputs, self._refs(reported.inputs))
                outputs = _union(outputs, self._refs(reported.outputs))
        elif state != RunState.START:  # a failed or aborted attempt: its report is no use
            self._reported.pop((data.run_id, stage, attempt), None)
        return RunEvent(
            eventType=state,
            eventTime=when,
            producer=PRODUCER,
            run=Run(runId=attempt_uuid(data.run_id, stage, attempt), facets=facets),
            job=Job(namespace=self.namespace, name=f"{data.pipeline}.{stage}"),
            inputs=[InputDataset(namespace=ns, name=n) for ns, n in inputs],
            outputs=[OutputDataset(namespace=ns, name=n) for ns, n in outputs],
        )

    def _parent(self, pipeline: str, run_id: str) -> parent_run.ParentRunFacet:
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_uuid(run_id)),
            job=parent_run.Job(namespace=self.namespace, name=pipeline),
        )

    def _datasets(
        self, data: RunRecordData, stage: str
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The declared datasets as (namespace, name)."""
        params = self._params.get((data.pipeline, stage), {})
        return (
            [(self.namespace, n) for n in _names(params.get("inputs"), data.run_key)],
            [(self.namespace, n) for n in _names(params.get("outputs"), data.run_key)],
        )

    def _refs(self, refs: list[DatasetRef]) -> list[tuple[str, str]]:
        return [(r.namespace or self.namespace, r.name) for r in refs]


def _names(value: object, run_key: str) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v).replace("${ run_key }", run_key) for v in value if isinstance(v, str)]


def _union(first: list[tuple[str, str]], more: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``first`` then what ``more`` adds, each dataset once, in order."""
    return list(dict.fromkeys([*first, *more]))


def _upstream(data: RunRecordData) -> str | None:
    """The run whose end caused this one (a ``pipeline`` trigger), if one did."""
    for cause in data.caused_by:
        if cause.endswith(_FINISHED_SUFFIX):
            return cause[: -len(_FINISHED_SUFFIX)]
    return None
